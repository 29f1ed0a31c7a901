/**
 * Test-only: a minimal SPDY/3.1 client in the shape of moby/spdystream's client side (odd
 * stream ids, one zlib context per direction, waits for SYN_REPLY), used by the streaming
 * half's unit tests. `splitWrites` writes every frame in 4-byte pieces, as spdystream's
 * unbuffered binary.Write calls do over the port-forward WebSocket tunnel.
 */
import type { Duplex } from 'node:stream';
import {
  encodeData,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSynStream,
  FLAG_FIN,
  GoAwayStatus,
  RstStatus,
  type SpdyFrame,
  SpdyFrameParser,
} from '../../../src/demo/fake-apiserver/streaming/spdy-framer.js';
import {
  HeaderCompressor,
  HeaderDecompressor,
} from '../../../src/demo/fake-apiserver/streaming/spdy-headers.js';

export class ClientStream {
  readonly chunks: Buffer[] = [];
  receivedBytes = 0;
  /** Count incoming bytes without keeping them (bulk transfers). */
  discard = false;
  finished = false;
  reset = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly client: SpdyTestClient,
    readonly id: number,
  ) {}

  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  write(data: Buffer | string): void {
    this.client.send(encodeData(this.id, Buffer.from(data)));
  }

  end(data: Buffer | string = ''): void {
    this.client.send(encodeData(this.id, Buffer.from(data), true));
  }

  resetStream(): void {
    this.client.send(encodeRstStream(this.id, RstStatus.Cancel));
  }

  /** Resolves once the server FINed (or reset) the stream. */
  whenFinished(timeoutMs = 10_000): Promise<void> {
    return this.until(() => this.finished || this.reset, timeoutMs, 'FIN');
  }

  /** Resolves once at least `bytes` arrived. */
  whenReceived(bytes: number, timeoutMs = 10_000): Promise<void> {
    return this.until(() => this.receivedBytes >= bytes, timeoutMs, `${bytes} bytes`);
  }

  /** @internal */
  notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done()) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`stream ${this.id}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }
}

export class SpdyTestClient {
  readonly frames: SpdyFrame[] = [];
  readonly pings: number[] = [];
  goAway: { lastGoodStreamId: number; status: number } | null = null;
  private readonly parser = new SpdyFrameParser();
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private readonly streams = new Map<number, ClientStream>();
  private readonly replyWaiters = new Map<number, () => void>();
  private nextStreamId = 1;
  private processing: Promise<void> = Promise.resolve();

  constructor(
    readonly transport: Duplex,
    private readonly options: { readonly splitWrites?: boolean } = {},
  ) {
    transport.on('data', (chunk: Buffer) => {
      for (const frame of this.parser.push(chunk)) {
        this.processing = this.processing.then(() => this.handle(frame));
      }
    });
    transport.on('error', () => undefined);
    transport.resume();
  }

  /** Opens a stream and waits for the server's SYN_REPLY. */
  async open(headers: Record<string, string>, fin = false): Promise<ClientStream> {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new ClientStream(this, id);
    this.streams.set(id, stream);
    const replied = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SYN_REPLY for stream ${id}`)), 10_000);
      this.replyWaiters.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const block = await this.compressor.compress(
      new Map(Object.entries(headers).map(([name, value]) => [name, [value]])),
    );
    this.send(encodeSynStream(id, block, fin ? FLAG_FIN : 0));
    await replied;
    return stream;
  }

  ping(id: number): void {
    this.send(encodePing(id));
  }

  sendGoAway(): void {
    this.send(encodeGoAway(0, GoAwayStatus.Ok));
  }

  /** @internal */
  send(frame: Buffer): void {
    if (!this.options.splitWrites) {
      this.transport.write(frame);
      return;
    }
    for (let offset = 0; offset < frame.length; offset += 4) {
      this.transport.write(frame.subarray(offset, offset + 4));
    }
  }

  close(): void {
    this.compressor.close();
    this.decompressor.close();
    this.transport.destroy();
  }

  private async handle(frame: SpdyFrame): Promise<void> {
    this.frames.push(frame);
    switch (frame.kind) {
      case 'syn_reply': {
        await this.decompressor.decompress(frame.headerBlock);
        this.replyWaiters.get(frame.streamId)?.();
        this.replyWaiters.delete(frame.streamId);
        return;
      }
      case 'data': {
        const stream = this.streams.get(frame.streamId);
        if (!stream) return;
        stream.receivedBytes += frame.payload.length;
        if (frame.payload.length > 0 && !stream.discard) stream.chunks.push(frame.payload);
        if ((frame.flags & FLAG_FIN) !== 0) stream.finished = true;
        stream.notify();
        return;
      }
      case 'rst_stream': {
        const stream = this.streams.get(frame.streamId);
        if (!stream) return;
        stream.reset = true;
        stream.notify();
        return;
      }
      case 'ping':
        this.pings.push(frame.id);
        return;
      case 'goaway':
        this.goAway = { lastGoodStreamId: frame.lastGoodStreamId, status: frame.status };
        return;
      default:
        return;
    }
  }
}
