/**
 * The server side of a SPDY/3.1 session, playing the kubelet's moby/spdystream: the client
 * opens every stream (odd ids), the server answers each SYN_STREAM with a SYN_REPLY carrying
 * an empty (but compressed) header block, echoes the client's PINGs and ends with GOAWAY.
 *
 * Flow control is deliberately absent, as in spdystream: it never sends WINDOW_UPDATE and
 * ignores the peer's, so honouring 64 KiB windows would stall (the spdy-transport trap).
 * Backpressure is still end to end: a stream whose reader is slow pauses the transport, and
 * a stream's writes complete only when the transport has drained.
 *
 * The transport is any byte Duplex: the upgraded TLS socket, or the WebSocket tunnel of
 * port-forward (websocket-duplex.ts).
 */
import { Duplex } from 'node:stream';
import { SpdyProtocolError } from './errors.js';
import {
  encodeData,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSynReply,
  FLAG_FIN,
  GoAwayStatus,
  MAX_FRAME_PAYLOAD,
  RstStatus,
  type SpdyFrame,
  SpdyFrameParser,
} from './spdy-framer.js';
import {
  HeaderCompressor,
  HeaderDecompressor,
  headerValue,
  type SpdyHeaders,
} from './spdy-headers.js';

export type EndedBy = 'client' | 'server';

export interface SpdySessionOptions {
  /**
   * Called for each new client stream before the session replies to it (the kubelet's
   * newStreamHandler). Resetting the stream here refuses it.
   */
  readonly onStream: (stream: SpdyStream) => void;
  /** Called once, at the first sign the session is over, with who ended it. */
  readonly onEnd?: (endedBy: EndedBy) => void;
  /** Payload bytes of DATA frames, for the session's bytesIn/bytesOut. */
  readonly onPayload?: (direction: 'in' | 'out', bytes: number) => void;
  /** How long the peer gets to close the connection after our GOAWAY. */
  readonly closeGraceMs?: number;
}

/** Frames parsed but not handled yet before the transport is paused. */
const MAX_QUEUED_FRAMES = 256;
const DEFAULT_CLOSE_GRACE_MS = 5_000;
const EMPTY = Buffer.alloc(0);
const NO_HEADERS: SpdyHeaders = new Map();

export class SpdySession {
  private readonly parser = new SpdyFrameParser();
  private readonly decompressor = new HeaderDecompressor();
  private readonly compressor = new HeaderCompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly blocked = new Set<SpdyStream>();
  private readonly queue: SpdyFrame[] = [];
  private drainWaiters: Array<() => void> = [];
  private readonly pendingReplies = new Set<Promise<void>>();
  private pumping = false;
  private paused = false;
  private lastClientStreamId = 0;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private endedBy: EndedBy | null = null;
  private graceTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly transport: Duplex,
    private readonly options: SpdySessionOptions,
  ) {
    transport.on('data', (chunk: Buffer) => this.receive(chunk));
    transport.on('drain', () => this.flushDrainWaiters());
    transport.on('end', () => {
      this.markEnded('client');
      // Upgraded sockets are half-open capable: finish our side too, or it lingers.
      if (transport.writable) transport.end();
    });
    transport.on('error', () => this.markEnded('client'));
    transport.on('close', () => this.finish());
  }

  /**
   * Graceful end by the server: GOAWAY once every stream has its SYN_REPLY (spdystream
   * ignores replies that come after GOAWAY, and the client would time out waiting), then the
   * client gets a grace period to close.
   */
  shutdown(): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.markEnded('server');
    void Promise.allSettled(this.pendingReplies).then(() => {
      this.writeFrame(encodeGoAway(this.lastClientStreamId, GoAwayStatus.Ok));
      this.graceTimer = setTimeout(() => {
        this.transport.end();
        this.graceTimer = setTimeout(() => this.transport.destroy(), 1_000);
      }, this.options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS);
    });
  }

  /** Immediate end by the server (fake shutting down, protocol error). */
  destroy(): void {
    this.markEnded('server');
    this.transport.destroy();
    // 'close' follows asynchronously; streams must stop now.
    this.finish();
  }

  /** @internal Writes one frame; false once the transport wants a drain. */
  writeFrame(frame: Buffer): boolean {
    if (this.state === 'closed' || !this.transport.writable) return false;
    return this.transport.write(frame);
  }

  /** @internal Calls back once the transport has room (at once if it has now). */
  whenWritable(callback: () => void): void {
    if (this.state === 'closed' || !this.transport.writableNeedDrain) callback();
    else this.drainWaiters.push(callback);
  }

  /** @internal A stream's reader is full: stop reading the transport until it asks again. */
  block(stream: SpdyStream): void {
    this.blocked.add(stream);
    this.updateFlow();
  }

  /** @internal A stream's reader wants more. */
  unblock(stream: SpdyStream): void {
    if (this.blocked.delete(stream)) this.updateFlow();
  }

  /** @internal */
  forget(stream: SpdyStream): void {
    this.streams.delete(stream.id);
    this.unblock(stream);
  }

  /** @internal */
  countPayload(direction: 'in' | 'out', bytes: number): void {
    if (bytes > 0) this.options.onPayload?.(direction, bytes);
  }

  /** @internal Replies to a stream; serialised through the one compression context. */
  reply(stream: SpdyStream): Promise<void> {
    const sent = this.compressor.compress(NO_HEADERS).then((block) => {
      this.writeFrame(encodeSynReply(stream.id, block));
    });
    this.pendingReplies.add(sent);
    const forget = (): void => {
      this.pendingReplies.delete(sent);
    };
    sent.then(forget, forget);
    return sent;
  }

  private receive(chunk: Buffer): void {
    if (this.state === 'closed') return;
    try {
      this.queue.push(...this.parser.push(chunk));
    } catch (error) {
      this.protocolError(error as Error);
      return;
    }
    this.pump();
    this.updateFlow();
  }

  /** Handles queued frames strictly in order; only header blocks make it wait. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.queue.length > 0 && this.state !== 'closed') {
          const pending = this.handle(this.queue.shift() as SpdyFrame);
          if (pending) await pending;
        }
      } catch (error) {
        this.protocolError(error as Error);
      } finally {
        this.pumping = false;
        this.updateFlow();
      }
    })();
  }

  private handle(frame: SpdyFrame): Promise<void> | undefined {
    switch (frame.kind) {
      case 'data':
        this.receiveData(frame.streamId, frame.payload, (frame.flags & FLAG_FIN) !== 0);
        return undefined;
      case 'syn_stream':
        return this.openStream(frame.streamId, frame.headerBlock, (frame.flags & FLAG_FIN) !== 0);
      case 'syn_reply':
      case 'headers':
        // Nothing to act on, but the block must still go through the inflater: the zlib
        // stream is shared by every block of the session.
        return this.decompressor.decompress(frame.headerBlock).then(() => undefined);
      case 'rst_stream':
        this.streams.get(frame.streamId)?.resetByPeer();
        return undefined;
      case 'ping':
        // Odd ids are the client's; a server echoes them unchanged. Even ones would be
        // replies to our pings, and we send none.
        if (frame.id % 2 === 1) this.writeFrame(encodePing(frame.id));
        return undefined;
      case 'goaway':
        this.markEnded('client');
        return undefined;
      case 'window_update':
      case 'ignored':
        return undefined;
    }
  }

  private receiveData(streamId: number, payload: Buffer, fin: boolean): void {
    const stream = this.streams.get(streamId);
    if (!stream) {
      // Late data for a stream we already finished or reset is normal; data for a stream
      // that never existed is the peer's bug.
      if (streamId > this.lastClientStreamId) {
        this.writeFrame(encodeRstStream(streamId, RstStatus.InvalidStream));
      }
      return;
    }
    this.countPayload('in', payload.length);
    stream.receive(payload, fin);
  }

  private async openStream(streamId: number, headerBlock: Buffer, fin: boolean): Promise<void> {
    const headers = await this.decompressor.decompress(headerBlock);
    if (streamId % 2 === 0 || streamId <= this.lastClientStreamId) {
      throw new SpdyProtocolError(`invalid client stream id ${streamId}`);
    }
    this.lastClientStreamId = streamId;
    if (this.state !== 'open') {
      this.writeFrame(encodeRstStream(streamId, RstStatus.RefusedStream));
      return;
    }
    const stream = new SpdyStream(this, streamId, headers);
    this.streams.set(streamId, stream);
    if (fin) stream.receive(EMPTY, true);
    this.options.onStream(stream);
    if (!stream.destroyed) stream.sendReply();
  }

  private updateFlow(): void {
    if (this.state === 'closed') return;
    const shouldPause = this.blocked.size > 0 || this.queue.length > MAX_QUEUED_FRAMES;
    if (shouldPause && !this.paused) {
      this.paused = true;
      this.transport.pause();
    } else if (!shouldPause && this.paused) {
      this.paused = false;
      this.transport.resume();
    }
  }

  private flushDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }

  private protocolError(error: Error): void {
    if (this.state === 'closed') return;
    const status =
      error instanceof SpdyProtocolError ? GoAwayStatus.ProtocolError : GoAwayStatus.InternalError;
    this.writeFrame(encodeGoAway(this.lastClientStreamId, status));
    this.markEnded('server');
    this.transport.end();
    setTimeout(() => this.transport.destroy(), 1_000).unref();
  }

  private markEnded(by: EndedBy): void {
    if (this.endedBy !== null) return;
    this.endedBy = by;
    this.options.onEnd?.(by);
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.markEnded('client');
    this.state = 'closed';
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.queue.length = 0;
    for (const stream of [...this.streams.values()]) stream.destroy();
    this.streams.clear();
    this.blocked.clear();
    this.flushDrainWaiters();
    this.decompressor.close();
    this.compressor.close();
  }
}

/**
 * One client-opened SPDY stream as a Node Duplex: readable = the client's DATA, writable =
 * our DATA; end() sends an empty DATA frame with FIN (spdystream's Close), destroy() before
 * both sides finished sends RST_STREAM CANCEL (spdystream's Reset).
 */
export class SpdyStream extends Duplex {
  private replied: Promise<void> | null = null;
  private peerReset = false;
  private remoteFinished = false;
  private localFinished = false;

  constructor(
    private readonly session: SpdySession,
    readonly id: number,
    readonly headers: SpdyHeaders,
  ) {
    super({ highWaterMark: 64 * 1024 });
    // Errors surface through 'close' and the session; an unhandled 'error' must not crash
    // the fake.
    this.on('error', () => undefined);
  }

  /** The first value of a (lowercase) header, e.g. `streamtype`, `port`, `requestid`. */
  header(name: string): string | undefined {
    return headerValue(this.headers, name);
  }

  /** @internal */
  sendReply(): void {
    this.replied ??= this.session.reply(this);
    this.replied.catch((error: Error) => this.destroy(error));
  }

  /** @internal */
  receive(payload: Buffer, fin: boolean): void {
    if (this.destroyed) return;
    if (this.remoteFinished) {
      this.session.writeFrame(encodeRstStream(this.id, RstStatus.StreamAlreadyClosed));
      return;
    }
    if (payload.length > 0 && !this.push(payload)) this.session.block(this);
    if (fin) {
      this.remoteFinished = true;
      this.push(null);
    }
  }

  /** @internal */
  resetByPeer(): void {
    this.peerReset = true;
    this.destroy();
  }

  override _read(): void {
    this.session.unblock(this);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error) => void) {
    this.whenReplied(callback, () => {
      for (let offset = 0; offset < chunk.length; offset += MAX_FRAME_PAYLOAD) {
        const slice = chunk.subarray(offset, offset + MAX_FRAME_PAYLOAD);
        this.session.writeFrame(encodeData(this.id, slice));
        this.session.countPayload('out', slice.length);
      }
      this.session.whenWritable(() => callback());
    });
  }

  override _final(callback: (error?: Error) => void): void {
    this.whenReplied(callback, () => {
      this.session.writeFrame(encodeData(this.id, EMPTY, true));
      this.localFinished = true;
      callback();
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const halfOpen = !this.remoteFinished || !this.localFinished;
    if (halfOpen && !this.peerReset) {
      this.session.writeFrame(encodeRstStream(this.id, RstStatus.Cancel));
    }
    this.session.forget(this);
    callback(error);
  }

  /** DATA before SYN_REPLY is dropped by spdystream ("not replied"), so writes wait. */
  private whenReplied(callback: (error?: Error) => void, write: () => void): void {
    if (!this.replied) this.sendReply();
    (this.replied as Promise<void>).then(write, (error: Error) => callback(error));
  }
}
