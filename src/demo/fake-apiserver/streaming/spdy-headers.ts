/**
 * SPDY/3 header blocks and their compression. Each direction of a session is ONE zlib
 * stream primed with the SPDY/3 dictionary and sync-flushed after every block, so blocks
 * must be (de)compressed strictly in the order they travel: callers await each call before
 * the next frame that carries a block.
 *
 * Node's streaming zlib is asynchronous, so completion is decided from the bytes, not from
 * callback timing: an inflated block is complete when its self-describing layout is; a
 * deflated block is complete when the sync-flush marker (00 00 ff ff) ends the output.
 */
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib';
import { SpdyHeaderError } from './errors.js';
import { SPDY3_DICTIONARY } from './spdy-dictionary.js';

/** Lowercase name → values (SPDY joins repeated values with NUL; they are split here). */
export type SpdyHeaders = ReadonlyMap<string, readonly string[]>;

export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const parts: Buffer[] = [u32(headers.size)];
  for (const [name, values] of headers) {
    const nameBytes = Buffer.from(name.toLowerCase(), 'utf8');
    const valueBytes = Buffer.from(values.join('\0'), 'utf8');
    parts.push(u32(nameBytes.length), nameBytes, u32(valueBytes.length), valueBytes);
  }
  return Buffer.concat(parts);
}

/** Parses one block from the start of `data`; null while it is still incomplete. */
export function decodeHeaderBlock(data: Buffer): { headers: SpdyHeaders; length: number } | null {
  if (data.length < 4) return null;
  const count = data.readUInt32BE(0);
  const headers = new Map<string, string[]>();
  let offset = 4;
  for (let i = 0; i < count; i++) {
    const name = readString(data, offset);
    if (name === null) return null;
    const value = readString(data, name.end);
    if (value === null) return null;
    offset = value.end;
    if (name.text.length === 0) throw new SpdyHeaderError('empty header name');
    const key = name.text.toLowerCase();
    headers.set(key, [...(headers.get(key) ?? []), ...value.text.split('\0')]);
  }
  return { headers, length: offset };
}

function readString(data: Buffer, offset: number): { text: string; end: number } | null {
  if (data.length < offset + 4) return null;
  const length = data.readUInt32BE(offset);
  const end = offset + 4 + length;
  if (data.length < end) return null;
  return { text: data.toString('utf8', offset + 4, end), end };
}

function u32(value: number): Buffer {
  const buffer = Buffer.allocUnsafe(4);
  buffer.writeUInt32BE(value, 0);
  return buffer;
}

const SYNC_FLUSH_MARKER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** Compresses the header blocks this side sends, one at a time. */
export class HeaderCompressor {
  private readonly deflate: Deflate = createDeflate({
    dictionary: SPDY3_DICTIONARY,
    flush: constants.Z_SYNC_FLUSH,
  });
  private output: Buffer[] = [];
  private pending: { resolve(block: Buffer): void; reject(error: Error): void } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: Error | null = null;

  constructor() {
    this.deflate.on('data', (chunk: Buffer) => {
      this.output.push(chunk);
      this.settleIfComplete();
    });
    this.deflate.on('error', (error: Error) => this.fail(error));
  }

  compress(headers: SpdyHeaders): Promise<Buffer> {
    const block = encodeHeaderBlock(headers);
    const next = this.queue.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          if (this.failure) {
            reject(this.failure);
            return;
          }
          this.pending = { resolve, reject };
          this.deflate.write(block);
        }),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.fail(new SpdyHeaderError('header compressor closed'));
    this.deflate.destroy();
  }

  private settleIfComplete(): void {
    const last = this.output[this.output.length - 1];
    if (!this.pending || !last) return;
    const joined = this.output.length === 1 ? last : Buffer.concat(this.output);
    if (joined.length < 4 || !joined.subarray(-4).equals(SYNC_FLUSH_MARKER)) return;
    this.output = [];
    const { resolve } = this.pending;
    this.pending = null;
    resolve(joined);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.pending?.reject(this.failure);
    this.pending = null;
  }
}

/** Inflates the peer's header blocks, one at a time, as one continuing zlib stream. */
export class HeaderDecompressor {
  private readonly inflate: Inflate = createInflate({
    dictionary: SPDY3_DICTIONARY,
    flush: constants.Z_SYNC_FLUSH,
  });
  private output: Buffer = Buffer.alloc(0);
  private pending: { resolve(headers: SpdyHeaders): void; reject(error: Error): void } | null =
    null;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: Error | null = null;

  constructor() {
    this.inflate.on('data', (chunk: Buffer) => {
      this.output = this.output.length === 0 ? chunk : Buffer.concat([this.output, chunk]);
      this.settleIfComplete();
    });
    // "Bad dictionary" here means the peer is not speaking SPDY/3 header compression.
    this.inflate.on('error', (error: Error) =>
      this.fail(new SpdyHeaderError(`cannot inflate the peer's header block: ${error.message}`)),
    );
  }

  decompress(compressed: Buffer): Promise<SpdyHeaders> {
    const next = this.queue.then(
      () =>
        new Promise<SpdyHeaders>((resolve, reject) => {
          if (this.failure) {
            reject(this.failure);
            return;
          }
          // An empty block can never complete; spdystream always sends a compressed one.
          if (compressed.length === 0) {
            reject(new SpdyHeaderError('empty compressed header block'));
            return;
          }
          this.pending = { resolve, reject };
          this.inflate.write(compressed);
        }),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.fail(new SpdyHeaderError('header decompressor closed'));
    this.inflate.destroy();
  }

  private settleIfComplete(): void {
    if (!this.pending) return;
    let decoded: ReturnType<typeof decodeHeaderBlock>;
    try {
      decoded = decodeHeaderBlock(this.output);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    if (!decoded) return;
    this.output = this.output.subarray(decoded.length);
    const { resolve } = this.pending;
    this.pending = null;
    resolve(decoded.headers);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.pending?.reject(this.failure);
    this.pending = null;
  }
}

/** First value of a header, as Go's http.Header.Get returns it. */
export function headerValue(headers: SpdyHeaders, name: string): string | undefined {
  return headers.get(name)?.[0];
}
