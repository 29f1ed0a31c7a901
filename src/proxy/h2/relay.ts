/**
 * HTTP/2 forwarding as a frame relay on the 1:1 connection model: each client connection gets
 * its own upstream connection (from the warm pool) and frames pass between them with their
 * stream ids unchanged. SETTINGS, PING, WINDOW_UPDATE, RST_STREAM and GOAWAY travel end to end,
 * so flow control and cancellation are the two peers' own. The relay keeps the protections
 * nghttp2 gave (malformed requests, frame sizes, flow-control overflow, rapid reset,
 * control-frame floods), pings idle clients, and answers itself only with header blocks that
 * leave the client's HPACK table (which the upstream's encoder owns) alone.
 *
 * `Relay` holds the two connections, their lifecycle and the writes. What each side's frames
 * mean is in client-side.ts (checked by guard.ts, request heads rewritten by rewrite.ts) and
 * upstream-side.ts; both use the stream table (streams.ts), the flow windows (flow.ts) and the
 * SETTINGS mirror (settings.ts). io.ts reads the frames, keepalive.ts pings the client.
 */
import type { Buffer } from 'node:buffer';
import type { TLSSocket } from 'node:tls';
import type { Limits } from '../../config/config.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { upstreamErrors } from '../../metrics/metrics.js';
import type { ClientConnection, Cut } from '../connection.js';
import type { IdentityHeaderRules } from '../headers.js';
import { type StatusResponse, upstreamUnavailable } from '../status.js';
import type { Upstream } from '../upstream.js';
import { ClientSide, type ClientSideHost } from './client-side.js';
import { CutWords, goawayDebug } from './cut.js';
import { FlowWindows } from './flow.js';
import { ErrorCode, goawayFrame, rstStreamFrame } from './frames.js';
import { PrefaceCheck } from './guard.js';
import { HpackError } from './hpack.js';
import { FrameReader, Mode } from './io.js';
import { KeepAlive, type KeepAliveHost } from './keepalive.js';
import { SettingsMirror } from './settings.js';
import { StreamTable } from './streams.js';
import { UpstreamSide, type UpstreamSideHost } from './upstream-side.js';
import { RelayWrites } from './writes.js';

export interface H2Options {
  readonly upstream: Upstream;
  readonly rules: IdentityHeaderRules;
  readonly limits: Limits;
  readonly log: Logger;
}

/** Frames waiting for a frame boundary before the client is read again. */
const MAX_PENDING = 256;
/** How long a connection being closed gracefully may take to flush. */
const CLOSE_GRACE_MS = 5000;

/** Where a relay is in its life; it only moves forward. */
const Phase = {
  /** Streams come and go. */
  Open: 0,
  /** A GOAWAY reached the client (the relay's or the upstream's): no new stream. */
  GoingAway: 1,
  /** Shutting down: no new stream, and watches were ended as complete responses. */
  Draining: 2,
  /**
   * No stream is left, or the upstream is gone: the connections close once the client has
   * everything.
   */
  Finishing: 3,
  /**
   * The certificate is no longer accepted: the client is read no more, each JSON watch gets
   * its ERROR event at its next event boundary, then GOAWAY with the reason (continueCut).
   */
  Cutting: 4,
  /** Both connections are closed or closing: nothing more is read or written. */
  Closed: 5,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

export class H2Forwarder {
  constructor(private readonly options: H2Options) {}

  serve(client: ClientConnection): void {
    new Relay(client, this.options).start();
  }
}

class Relay implements ClientSideHost, UpstreamSideHost, KeepAliveHost {
  private readonly client: TLSSocket;
  private upstream: TLSSocket | null = null;
  private phase: Phase = Phase.Open;
  /** Set when the upstream connection could not be had: every request gets this answer. */
  private answerToAll: StatusResponse | null = null;
  /** What the client is told while the relay is Cutting. */
  private cut: CutWords | null = null;

  private readonly clientReader: FrameReader;
  private readonly upstreamReader: FrameReader;
  private readonly preface = new PrefaceCheck();

  private readonly streams = new StreamTable();
  private readonly flow = new FlowWindows();
  private readonly clientSide: ClientSide;
  private readonly upstreamSide: UpstreamSide;

  private readonly keepAlive: KeepAlive;
  private readonly writes: RelayWrites;
  private readonly onDrain = () => this.updateFlow();

  constructor(
    private readonly connection: ClientConnection,
    private readonly options: H2Options,
  ) {
    this.client = connection.socket;
    this.writes = new RelayWrites(this.client, () => this.flush());
    const { toUpstream, toClient } = this.writes;
    const settings = new SettingsMirror(options.limits);
    const parts = { streams: this.streams, flow: this.flow, settings, connection, options };
    this.clientSide = new ClientSide(this, parts, toUpstream);
    this.upstreamSide = new UpstreamSide(this, parts, toClient);
    this.keepAlive = new KeepAlive(this, options.limits.h2PingIntervalMs);
    this.clientReader = new FrameReader(this.clientSide, toUpstream);
    this.upstreamReader = new FrameReader(this.upstreamSide, toClient);
  }

  start(): void {
    const { connection, client } = this;
    client.setNoDelay(true);
    client.once('close', () => this.onClientClose());
    connection.setTerminator((cut) => this.terminate(cut));
    connection.setDrainer(() => this.drain());
    this.options.upstream.connect('h2', connection.upstreamRole).then(
      (socket) => this.attach(socket),
      (err: unknown) => this.serveLocally(upstreamUnavailable(errorMessage(err))),
    );
  }

  // ------------------------------------------------------ asked by the sides and the keep-alive

  get upstreamAttached(): boolean {
    return this.upstream !== null;
  }

  get unavailable(): StatusResponse | null {
    return this.answerToAll;
  }

  get acceptsStreams(): boolean {
    return this.phase === Phase.Open;
  }

  goAway(): void {
    if (this.phase !== Phase.Open) return;
    this.phase = Phase.GoingAway;
    this.injectToClient(goawayFrame(this.streams.lastOpenedByClient, ErrorCode.NoError));
  }

  upstreamGoingAway(): void {
    if (this.phase === Phase.Open) this.phase = Phase.GoingAway;
  }

  injectToClient(frame: Buffer): void {
    this.upstreamReader.inject(frame);
  }

  injectToUpstream(frame: Buffer): void {
    if (this.upstream !== null) this.clientReader.inject(frame);
  }

  answersOwnPing(buf: Buffer, at: number): boolean {
    return this.keepAlive.answered(buf, at);
  }

  get clientStarted(): boolean {
    return this.upstreamSide.clientStarted;
  }

  get upstreamLastByte(): number {
    return this.upstreamReader.lastByte;
  }

  sendPing(frame: Buffer): void {
    this.injectToClient(frame);
    this.writes.schedule();
  }

  upstreamSilent(): void {
    upstreamErrors.inc({ kind: 'timeout' });
    this.options.log.debug(
      { connection: this.connection.id },
      'the upstream sent no HTTP/2 SETTINGS; closing it',
    );
    this.upstream?.destroy();
  }

  clientSilent(): void {
    this.options.log.info(
      { connection: this.connection.id },
      'closing an HTTP/2 client session that stopped answering pings',
    );
    this.destroy();
  }

  // ---------------------------------------------------------------- connections

  private attach(socket: TLSSocket): void {
    if (this.phase === Phase.Closed) {
      socket.destroy();
      return;
    }
    if (socket.destroyed) {
      this.serveLocally(upstreamUnavailable('the upstream connection closed'));
      return;
    }
    this.upstream = socket;
    this.writes.setUpstream(socket);
    socket.on('error', (err) => {
      upstreamErrors.inc({ kind: 'reset' });
      this.options.log.debug(
        { err: errorMessage(err), connection: this.connection.id },
        'upstream h2 connection error',
      );
    });
    socket.once('close', () => this.onUpstreamClose());
    socket.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    socket.on('drain', this.onDrain);
    socket.resume();
    this.listenToClient();
  }

  /** No upstream connection: answer every request with `status`, then close. */
  private serveLocally(status: StatusResponse): void {
    if (this.phase === Phase.Closed) return;
    this.answerToAll = status;
    this.upstreamSide.sendOwnPreface();
    this.listenToClient();
    this.writes.schedule();
  }

  private listenToClient(): void {
    const { client } = this;
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    client.on('drain', this.onDrain);
    client.resume();
    this.keepAlive.start();
  }

  private onClientClose(): void {
    this.close();
    this.upstream?.destroy();
  }

  private onUpstreamClose(): void {
    if (this.phase === Phase.Closed) return;
    if (this.phase === Phase.Cutting) {
      // What the upstream left unanswered is answered, then the cut's GOAWAY goes.
      if (this.upstreamReader.mayInject) this.upstreamSide.upstreamGone();
      (this.cut as CutWords).expired = true;
      this.continueCut();
      return;
    }
    if (this.finished()) {
      this.closeClient();
      return;
    }
    // The upstream went away: answer what it left unanswered, then GOAWAY and close.
    if (!this.startClientIfNeeded()) {
      this.destroy();
      return;
    }
    this.upstreamSide.upstreamGone();
    this.goAway();
    this.phase = Phase.Finishing;
    this.writes.schedule();
  }

  /**
   * Cut from outside (connection.ts): with a Status, each JSON watch gets its ERROR event
   * (cut.ts) and the GOAWAY carries the reason, then both connections close. Without one
   * (shutdown), or with no upstream to relay from, GOAWAY and both connections closed at once.
   */
  private terminate(cut: Cut): void {
    if (this.phase >= Phase.Cutting) return;
    if (cut.status !== null && this.clientStarted && this.answerToAll === null) {
      this.phase = Phase.Cutting;
      this.cut = new CutWords(cut.status, cut.reason);
      this.clientReader.stop();
      this.cut.startGrace(() => this.continueCut());
      this.continueCut();
      return;
    }
    this.close();
    if (this.upstreamReader.mayInject) {
      const debug = cut.status === null ? undefined : goawayDebug(cut.reason);
      this.writes.toClient.push(
        goawayFrame(this.streams.lastOpenedByClient, ErrorCode.NoError, debug),
      );
    }
    this.writes.writeToClient();
    this.upstream?.destroy();
    if (this.client.writableLength === 0) this.client.destroySoon();
    else this.client.destroy();
  }

  /**
   * A cut under way, at every chance (the cut, each upstream read, the grace's end): each
   * JSON watch at an event boundary gets its event; once none is left waiting (or the grace
   * is over), GOAWAY with the reason, the upstream's streams reset, both connections closed.
   */
  private continueCut(): void {
    const cut = this.cut;
    if (cut === null || this.phase !== Phase.Cutting) return;
    const { upstreamReader, streams } = this;
    if (!upstreamReader.mayInject) {
      // Half a frame is out: nothing can be added to it.
      if (cut.expired) this.destroy();
      return;
    }
    upstreamReader.release();
    this.upstreamSide.settleEvents();
    if (cut.endWatches(streams, this.flow, (frame) => this.injectToClient(frame))) return;
    this.cut = null;
    this.injectToClient(cut.goaway(streams.lastOpenedByClient));
    const clientReader = this.clientReader;
    clientReader.release();
    if (clientReader.mayInject)
      for (const stream of streams.openStreams())
        this.injectToUpstream(rstStreamFrame(stream.id, ErrorCode.Cancel));
    this.writes.write();
    this.closeClient();
  }

  /**
   * Shutdown: GOAWAY (no new stream), watches and logs -f ended as complete responses, the
   * other streams finish, then both connections close.
   */
  private drain(): void {
    if (this.phase >= Phase.Draining) return;
    this.goAway();
    this.phase = Phase.Draining;
    this.clientSide.endStreaming();
    this.writes.schedule();
  }

  /** Whether the connections may close once the client has everything. */
  private finished(): boolean {
    const phase = this.phase;
    if (phase === Phase.Finishing) return true;
    // A cut closes them itself (continueCut).
    if (phase === Phase.Open || phase >= Phase.Cutting || this.streams.size > 0) return false;
    // Going away with no stream left: none can come.
    this.phase = Phase.Finishing;
    return true;
  }

  /** Closes both connections now (a broken peer, an unanswered ping). */
  destroy(): void {
    if (!this.close()) return;
    this.upstream?.destroy();
    this.client.destroy();
  }

  /** Closes the client connection once what was written is flushed (bounded in time). */
  private closeClient(): void {
    if (!this.close()) return;
    this.upstream?.destroySoon();
    this.client.destroySoon();
    const timer = setTimeout(() => {
      this.client.destroy();
      this.upstream?.destroy();
    }, CLOSE_GRACE_MS);
    timer.unref();
    this.client.once('close', () => clearTimeout(timer));
  }

  /** Enters the Closed phase; false when the relay was closed already. */
  private close(): boolean {
    if (this.phase === Phase.Closed) return false;
    this.phase = Phase.Closed;
    this.keepAlive.stop();
    return true;
  }

  /**
   * A connection error caused by the client: GOAWAY with `code`, both connections closed.
   * Returns Skip so a frame callback can return it.
   */
  connectionError(code: number, reason: string): Mode {
    if (this.phase === Phase.Closed) return Mode.Skip;
    this.options.log.debug(
      { connection: this.connection.id, code, reason },
      'HTTP/2 connection error from the client',
    );
    this.clientReader.stop();
    this.upstreamReader.stop();
    this.upstream?.destroy();
    this.upstream = null;
    this.writes.setUpstream(null);
    if (!this.startClientIfNeeded()) {
      this.destroy();
      return Mode.Skip;
    }
    this.upstreamReader.dropWaiting();
    this.writes.toClient.push(goawayFrame(this.streams.lastOpenedByClient, code));
    this.writes.writeToClient();
    this.closeClient();
    return Mode.Skip;
  }

  /** The upstream broke the protocol: nothing sensible can be relayed any more. */
  upstreamProtocolError(reason: string): Mode {
    upstreamErrors.inc({ kind: 'protocol' });
    this.options.log.warn(
      { connection: this.connection.id, reason },
      'upstream HTTP/2 protocol error',
    );
    this.upstreamReader.stop();
    this.destroy();
    return Mode.Skip;
  }

  // ---------------------------------------------------------------- reading and writing

  private onClientData(chunk: Buffer): void {
    if (this.phase >= Phase.Cutting) return;
    const pos = this.preface.read(chunk);
    if (pos < 0) {
      this.options.log.debug({ connection: this.connection.id }, 'not an HTTP/2 client preface');
      this.destroy();
      return;
    }
    if (pos > 0 && this.answerToAll === null) this.writes.toUpstream.pass(chunk, 0, pos);
    try {
      this.clientReader.feed(chunk, pos);
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      this.connectionError(ErrorCode.CompressionError, err.message);
    }
    this.writes.schedule();
  }

  private onUpstreamData(chunk: Buffer): void {
    if (this.phase === Phase.Closed) return;
    this.upstreamReader.feed(chunk, 0);
    if (this.phase === Phase.Cutting) this.continueCut();
    this.writes.schedule();
  }

  /** The end of a turn in which something was read: writes, then closes or reads on. */
  private flush(): void {
    if (this.phase === Phase.Closed) return;
    this.writes.write();
    if (this.upstreamReader.waiting === 0 && this.finished()) {
      this.closeClient();
      return;
    }
    this.updateFlow();
  }

  /**
   * Backpressure: a side is read only while what reading it produces can be written. Reading
   * the client writes upstream (and answers to the client); reading upstream writes to the client.
   */
  private updateFlow(): void {
    if (this.phase === Phase.Closed) return;
    this.writes.updateFlow(this.upstreamReader.waiting >= MAX_PENDING);
  }

  /**
   * Makes sure the client has had a server preface before the relay writes to it: when the
   * upstream's never came (it closed first), the relay sends its own. False when the
   * upstream left the client in the middle of a frame or header block.
   */
  private startClientIfNeeded(): boolean {
    if (!this.clientStarted) {
      if (!this.upstreamReader.atBoundary) return false;
      this.upstreamSide.sendOwnPreface();
    }
    return this.upstreamReader.mayInject;
  }
}
