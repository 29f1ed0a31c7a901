/**
 * A minimal HTTP/2 client connection for load: requests are pre-encoded HPACK blocks made of
 * "literal without indexing" fields only (so no table state on our side), response frames are
 * walked for their headers' :status, DATA and END_STREAM, nothing else is decoded. All frames
 * produced while handling one read go out in one write, as h2load does. Node's own http2
 * client costs several times more CPU per request, which would make the load generator the
 * bottleneck on this 2-core machine.
 */
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import {
  DEFAULT_WINDOW_SIZE,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  PREFACE,
  pingFrame,
  SETTINGS_ACK,
  Setting,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
} from '../../src/proxy/h2/frames.js';
import { hpackInteger, STATIC_STATUS } from '../../test/security/h2-frames.js';
import { openTls } from './tls-client.js';

const STREAM_WINDOW = 1 << 24;
const CONNECTION_WINDOW = 1 << 30;

/** Static-table name index + literal value, not added to the table (RFC 7541 6.2.2). */
function literalField(nameIndex: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'latin1');
  return Buffer.concat([hpackInteger(nameIndex, 4), hpackInteger(bytes.length, 7), bytes]);
}

/** A GET header block as kubectl sends it (method, scheme, path, authority, UA, accept). */
export function getHeaderBlock(path: string, authority: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x82, 0x87]), // :method GET, :scheme https (static indexes 2 and 7)
    literalField(4, path),
    literalField(1, authority),
    literalField(58, 'kubectl/v1.32.4 (linux/amd64) kubernetes/bench'),
    literalField(19, 'application/json, */*'),
  ]);
}

/** The :status from the first field of a response header block; 0 when it cannot tell. */
export function decodeStatus(block: Buffer, offset: number): number {
  const first = block[offset];
  if (first === undefined) return 0;
  if (first & 0x80) return STATIC_STATUS[first & 0x7f] ?? 0;
  const nameIndex = first & 0x40 ? first & 0x3f : first & 0x0f;
  if (STATIC_STATUS[nameIndex] === undefined) return 0;
  const lengthByte = block[offset + 1];
  if (lengthByte === undefined) return 0;
  const huffman = (lengthByte & 0x80) !== 0;
  const length = lengthByte & 0x7f;
  const value = block.subarray(offset + 2, offset + 2 + length);
  return huffman ? decodeHuffmanDigits(value) : Number(value.toString('latin1'));
}

/** Huffman codes of the digits (RFC 7541 appendix B): '0'-'2' on 5 bits, '3'-'9' on 6. */
function decodeHuffmanDigits(bytes: Buffer): number {
  let bits = 0;
  let bitCount = 0;
  let i = 0;
  let digits = '';
  while (digits.length < 3) {
    while (bitCount < 6 && i < bytes.length) {
      bits = (bits << 8) | (bytes[i++] as number);
      bitCount += 8;
    }
    if (bitCount < 5) return 0;
    const five = (bits >> (bitCount - 5)) & 0x1f;
    if (five <= 2) {
      digits += String(five);
      bitCount -= 5;
    } else {
      if (bitCount < 6) return 0;
      const six = (bits >> (bitCount - 6)) & 0x3f;
      if (six < 0x19 || six > 0x1f) return 0;
      digits += String(six - 0x16);
      bitCount -= 6;
    }
    bits &= (1 << bitCount) - 1;
  }
  return Number(digits);
}

export interface H2Handlers {
  /** TLS and the HTTP/2 preface exchange are done: streams may be opened. */
  onReady(connection: H2Connection): void;
  onHeaders(streamId: number, status: number): void;
  onData(streamId: number, payload: Buffer): void;
  /** The stream ended (END_STREAM, RST_STREAM, or the connection went away: ok=false). */
  onEnd(streamId: number, ok: boolean): void;
  /** After every batch of frames read: the place to open new streams. */
  onReadDone(connection: H2Connection): void;
  onClose(connection: H2Connection, error: Error | null): void;
}

export class H2Connection {
  readonly socket: TLSSocket;
  /** The server's Setting.MaxConcurrentStreams (unlimited until it says). */
  maxConcurrentStreams = Number.POSITIVE_INFINITY;
  readonly open = new Set<number>();
  private nextStreamId = 1;
  private pending: Buffer | null = null;
  private readonly out: Buffer[] = [];
  private consumed = 0;
  private readonly streamConsumed = new Map<number, number>();
  private ready = false;
  private goingAway = false;
  private readonly statusSeen = new Set<number>();
  private closeError: Error | null = null;

  constructor(
    options: ConnectionOptions,
    private readonly handlers: H2Handlers,
  ) {
    this.socket = openTls(options);
    this.socket.once('secureConnect', () => {
      if (this.socket.alpnProtocol !== 'h2') {
        this.socket.destroy(new Error(`ALPN gave ${String(this.socket.alpnProtocol)}, not h2`));
        return;
      }
      this.socket.write(
        Buffer.concat([
          PREFACE,
          settingsFrame([
            [Setting.EnablePush, 0],
            [Setting.InitialWindowSize, STREAM_WINDOW],
            [Setting.MaxConcurrentStreams, 0],
          ]),
          windowUpdateFrame(0, CONNECTION_WINDOW - DEFAULT_WINDOW_SIZE),
        ]),
      );
    });
    this.socket.on('data', (chunk: Buffer) => this.onChunk(chunk));
    this.socket.once('close', () => this.onSocketClose());
    this.socket.on('error', (err) => {
      this.closeError ??= err;
    });
  }

  get canOpenStream(): boolean {
    return this.ready && !this.goingAway && this.open.size < this.maxConcurrentStreams;
  }

  /** Queues a HEADERS frame with END_STREAM (a bodiless request); sent at the end of the read. */
  request(headerBlock: Buffer): number {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    this.open.add(id);
    const head = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
    writeFrameHeader(
      head,
      0,
      headerBlock.length,
      FrameType.Headers,
      Flag.EndStream | Flag.EndHeaders,
      id,
    );
    this.out.push(head, headerBlock);
    return id;
  }

  /** Sends what request() queued outside of a read (the first requests). */
  flush(): void {
    if (this.out.length === 0 || this.socket.destroyed) return;
    this.socket.write(this.out.length === 1 ? (this.out[0] as Buffer) : Buffer.concat(this.out));
    this.out.length = 0;
  }

  close(): void {
    this.socket.destroy();
  }

  private onChunk(chunk: Buffer): void {
    let buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    while (buf.length - offset >= 9) {
      const length = buf.readUIntBE(offset, 3);
      if (buf.length - offset < 9 + length) break;
      const type = buf[offset + 3] as number;
      const flags = buf[offset + 4] as number;
      const streamId = buf.readUInt32BE(offset + 5) & 0x7fffffff;
      const start = offset + 9;
      this.onFrame(type, flags, streamId, buf, start, length);
      offset = start + length;
    }
    if (offset < buf.length) {
      buf = buf.subarray(offset);
      this.pending = Buffer.from(buf);
    } else {
      this.pending = null;
    }
    if (this.ready) this.handlers.onReadDone(this);
    this.flush();
  }

  private onFrame(
    type: number,
    flags: number,
    streamId: number,
    buf: Buffer,
    start: number,
    length: number,
  ): void {
    switch (type) {
      case FrameType.Data: {
        this.consumed += length;
        if (this.consumed >= CONNECTION_WINDOW / 2) {
          this.out.push(windowUpdateFrame(0, this.consumed));
          this.consumed = 0;
        }
        if (!this.open.has(streamId)) return;
        const streamConsumed = (this.streamConsumed.get(streamId) ?? 0) + length;
        if (streamConsumed >= STREAM_WINDOW / 2 && !(flags & Flag.EndStream)) {
          this.out.push(windowUpdateFrame(streamId, streamConsumed));
          this.streamConsumed.set(streamId, 0);
        } else {
          this.streamConsumed.set(streamId, streamConsumed);
        }
        const padLength = flags & Flag.Padded ? (buf[start] as number) : 0;
        const dataStart = flags & Flag.Padded ? start + 1 : start;
        this.handlers.onData(streamId, buf.subarray(dataStart, start + length - padLength));
        if (flags & Flag.EndStream) this.endStream(streamId, true);
        return;
      }
      case FrameType.Headers: {
        if (!this.open.has(streamId)) return;
        if (!this.statusSeen.has(streamId)) {
          this.statusSeen.add(streamId);
          let blockStart = start;
          if (flags & Flag.Padded) blockStart += 1;
          if (flags & Flag.Priority) blockStart += 5;
          this.handlers.onHeaders(streamId, decodeStatus(buf, blockStart));
        }
        if (flags & Flag.EndStream) this.endStream(streamId, true);
        return;
      }
      case FrameType.RstStream:
        if (this.open.has(streamId)) this.endStream(streamId, false);
        return;
      case FrameType.Settings:
        if (flags & Flag.Ack) return;
        for (let p = start; p + 6 <= start + length; p += 6) {
          if (buf.readUInt16BE(p) === Setting.MaxConcurrentStreams)
            this.maxConcurrentStreams = buf.readUInt32BE(p + 2);
        }
        this.out.push(SETTINGS_ACK);
        if (!this.ready) {
          this.ready = true;
          this.handlers.onReady(this);
        }
        return;
      case FrameType.Ping:
        if (!(flags & Flag.Ack)) this.out.push(pingFrame(buf.subarray(start, start + 8), true));
        return;
      case FrameType.Goaway: {
        this.goingAway = true;
        const lastStreamId = buf.readUInt32BE(start) & 0x7fffffff;
        for (const id of [...this.open]) if (id > lastStreamId) this.endStream(id, false);
        return;
      }
      default:
        return;
    }
  }

  private endStream(streamId: number, ok: boolean): void {
    this.open.delete(streamId);
    this.statusSeen.delete(streamId);
    this.streamConsumed.delete(streamId);
    this.handlers.onEnd(streamId, ok);
  }

  private onSocketClose(): void {
    for (const id of [...this.open]) this.endStream(id, false);
    this.handlers.onClose(this, this.closeError);
  }
}
