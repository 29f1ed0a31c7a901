/**
 * Just enough HTTP/2 to send what Node's http2 client refuses to send: frames built by hand,
 * header blocks in HPACK "literal without indexing, new name" form (no Huffman, no dynamic
 * table), so any name or value bytes — uppercase, CR/LF, connection-specific headers,
 * misplaced pseudo-headers — reach the proxy exactly as written.
 */
import type { TLSSocket } from 'node:tls';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import {
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  PREFACE,
  settingsFrame,
  writeFrameHeader,
} from '../../src/proxy/h2/frames.js';
import { connectTls } from '../fake-apiserver/testkit.js';
import { Waiters } from '../support/wait.js';

/** One header field; names and values are written as latin1 bytes, untouched. */
export type HeaderField = readonly [name: string, value: string];

/** HPACK integer with an N-bit prefix (RFC 7541 5.1); `first` holds the pattern bits. */
export function hpackInteger(value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([hpackInteger(bytes.length, 7), bytes]);
}

/** A header block of "literal header field without indexing — new name" representations. */
export function headerBlock(fields: readonly HeaderField[]): Buffer {
  return Buffer.concat(
    fields.map(([name, value]) =>
      Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]),
    ),
  );
}

export function frame(type: number, flags: number, streamId: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(FRAME_HEADER_LENGTH);
  writeFrameHeader(head, 0, payload.length, type, flags, streamId);
  return Buffer.concat([head, payload]);
}

export function headersFrame(
  streamId: number,
  fields: readonly HeaderField[],
  options: { endStream?: boolean; endHeaders?: boolean } = {},
): Buffer {
  let flags = 0;
  if (options.endStream ?? true) flags |= Flag.EndStream;
  if (options.endHeaders ?? true) flags |= Flag.EndHeaders;
  return frame(FrameType.Headers, flags, streamId, headerBlock(fields));
}

export function dataFrame(streamId: number, data: string | Uint8Array, endStream = true): Buffer {
  const payload = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  return frame(FrameType.Data, endStream ? Flag.EndStream : 0, streamId, payload);
}

/** The pseudo-headers of a plain request, then `extra`. */
export function requestFields(
  path: string,
  extra: readonly HeaderField[] = [],
  method = 'GET',
): HeaderField[] {
  return [
    [':method', method],
    [':scheme', 'https'],
    [':authority', '127.0.0.1'],
    [':path', path],
    ...extra,
  ];
}

export interface ReceivedFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** `:status` of the static table (RFC 7541 appendix A), by index. */
export const STATIC_STATUS: Readonly<Record<number, number>> = {
  8: 200,
  9: 204,
  10: 206,
  11: 304,
  12: 400,
  13: 404,
  14: 500,
};

/**
 * `:status` of a response HEADERS block when the server wrote it the way nghttp2 does: an
 * indexed static entry (200, 204, 206, 304, 400, 404, 500) or a literal with the static
 * `:status` name and a (possibly Huffman-coded) digit string. null when it is neither.
 */
export function responseStatus(block: Buffer): number | null {
  const first = block[0];
  if (first === undefined) return null;
  if (first & 0x80) return STATIC_STATUS[first & 0x7f] ?? null;
  // Literal with incremental indexing (01xxxxxx), without indexing (0000xxxx) or never indexed (0001xxxx).
  const index = first & 0x40 ? first & 0x3f : first & 0x0f;
  if (index < 8 || index > 14) return null;
  const lengthByte = block[1];
  if (lengthByte === undefined) return null;
  const length = lengthByte & 0x7f;
  const value = block.subarray(2, 2 + length);
  const text = lengthByte & 0x80 ? huffmanDigits(value) : value.toString('latin1');
  return text === null || !/^\d{3}$/.test(text) ? null : Number(text);
}

/** Huffman decoding restricted to the digits (RFC 7541 Appendix B: 5 bits for 0-2, 6 for 3-9). */
function huffmanDigits(bytes: Buffer): string | null {
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  let pos = 0;
  while (bits.length - pos >= 5) {
    const five = Number.parseInt(bits.slice(pos, pos + 5), 2);
    if (five <= 2) {
      out += String(five);
      pos += 5;
      continue;
    }
    if (bits.length - pos < 6) break;
    const six = Number.parseInt(bits.slice(pos, pos + 6), 2);
    if (six >= 0x19 && six <= 0x1f) {
      out += String(six - 0x19 + 3);
      pos += 6;
      continue;
    }
    break;
  }
  // What is left must be EOS padding: fewer than 8 bits, all ones.
  const rest = bits.slice(pos);
  return rest.length < 8 && /^1*$/.test(rest) ? out : null;
}

/**
 * A raw HTTP/2 client connection: sends bytes as given, parses the server's frames, answers
 * the server's SETTINGS (and nothing else) so the session gets going.
 */
export class RawH2Client {
  readonly frames: ReceivedFrame[] = [];
  readonly closed: Promise<void>;
  private buffered: Buffer = Buffer.alloc(0);
  private readonly waiters = new Waiters();
  private ended = false;

  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.waiters.notify();
        resolve();
      }),
    );
  }

  /** Connects with ALPN h2 and sends the preface and an empty SETTINGS frame. */
  static async connect(url: string, ca: string, cert?: IssuedCert): Promise<RawH2Client> {
    const socket = await connectTls(url, ca, cert, ['h2']);
    if (socket.alpnProtocol !== 'h2') {
      socket.destroy();
      throw new Error(`server chose ALPN ${String(socket.alpnProtocol)}, not h2`);
    }
    const client = new RawH2Client(socket);
    socket.write(Buffer.concat([PREFACE, settingsFrame([])]));
    return client;
  }

  get isClosed(): boolean {
    return this.ended;
  }

  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Frames of one stream, in arrival order. */
  framesOf(streamId: number): ReceivedFrame[] {
    return this.frames.filter((f) => f.streamId === streamId);
  }

  /** RST_STREAM error code received for the stream, if any. */
  resetCode(streamId: number): number | null {
    const rst = this.frames.find((f) => f.type === FrameType.RstStream && f.streamId === streamId);
    return rst === undefined ? null : rst.payload.readUInt32BE(0);
  }

  /** GOAWAY error code received, if any. */
  goawayCode(): number | null {
    const goaway = this.frames.find((f) => f.type === FrameType.Goaway);
    return goaway === undefined ? null : goaway.payload.readUInt32BE(4);
  }

  /** Status of the stream's response HEADERS, if one arrived (see responseStatus). */
  status(streamId: number): number | null {
    const headers = this.frames.find(
      (f) => f.type === FrameType.Headers && f.streamId === streamId,
    );
    return headers === undefined ? null : responseStatus(headerFragment(headers));
  }

  /** Whether the stream is finished: a reset, an END_STREAM frame, a GOAWAY or a closed socket. */
  streamDone(streamId: number): boolean {
    if (this.ended || this.goawayCode() !== null) return true;
    return this.framesOf(streamId).some(
      (f) =>
        f.type === FrameType.RstStream ||
        ((f.type === FrameType.Data || f.type === FrameType.Headers) &&
          (f.flags & Flag.EndStream) !== 0),
    );
  }

  /** Resolves once `done()` holds (checked on every frame and on close), or rejects. */
  waitFor(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return this.waiters.waitFor(
      done,
      timeoutMs,
      () => `raw h2 client: ${what} not seen within ${timeoutMs} ms; frames: ${this.describe()}`,
    );
  }

  describe(): string {
    return this.frames
      .map((f) => {
        const name =
          Object.entries(FrameType).find(([, v]) => v === f.type)?.[0] ?? `type${f.type}`;
        const code =
          f.type === FrameType.RstStream
            ? ` code=${f.payload.readUInt32BE(0)}`
            : f.type === FrameType.Goaway
              ? ` code=${f.payload.readUInt32BE(4)}`
              : '';
        return `${name}(stream=${f.streamId} flags=0x${f.flags.toString(16)}${code})`;
      })
      .join(' ');
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffered = splitFrames(Buffer.concat([this.buffered, chunk]), (received) => {
      this.frames.push(received);
      if (received.type === FrameType.Settings && (received.flags & Flag.Ack) === 0) {
        this.send(frame(FrameType.Settings, Flag.Ack, 0, new Uint8Array(0)));
      }
    });
    this.waiters.notify();
  }
}

/**
 * Calls `onFrame` for every whole frame at the start of `buffered`; returns what is left (the
 * start of a frame still arriving).
 */
export function splitFrames(buffered: Buffer, onFrame: (f: ReceivedFrame) => void): Buffer {
  let rest = buffered;
  while (rest.length >= 9) {
    const length = rest.readUIntBE(0, 3);
    if (rest.length < 9 + length) break;
    const received: ReceivedFrame = {
      type: rest[3] as number,
      flags: rest[4] as number,
      streamId: rest.readUInt32BE(5) & 0x7fffffff,
      payload: Buffer.from(rest.subarray(9, 9 + length)),
    };
    rest = rest.subarray(9 + length);
    onFrame(received);
  }
  return rest;
}

/** The header block fragment of a HEADERS frame (padding and priority fields removed). */
export function headerFragment(f: ReceivedFrame): Buffer {
  let start = 0;
  let end = f.payload.length;
  if (f.flags & Flag.Padded) {
    end -= f.payload[0] as number;
    start = 1;
  }
  if (f.flags & Flag.Priority) start += 5;
  return f.payload.subarray(start, end);
}
