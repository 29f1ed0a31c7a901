/**
 * HTTP/2 forwarding as a frame relay on the 1:1 connection model: each client connection gets
 * its own upstream connection (from the warm pool) and frames pass between them with their
 * stream ids unchanged. Upstream→client frames pass byte for byte (response header blocks are
 * only read for `:status`); client→upstream frames pass byte for byte too, except request
 * header blocks, which are decoded, checked as nghttp2 checked them, sanitised, re-encoded and
 * re-framed. SETTINGS, PING, WINDOW_UPDATE, RST_STREAM and GOAWAY travel end to end, so flow
 * control and cancellation are the two peers' own. The relay keeps the protections nghttp2
 * gave (malformed requests, frame sizes, flow-control overflow, rapid reset, control-frame
 * floods), pings idle clients, and answers itself only with header blocks that leave the
 * client's HPACK table (which the upstream's encoder owns) alone.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Limits } from '../../config/config.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { upstreamErrors } from '../../metrics/metrics.js';
import type { ClientConnection, Cut } from '../connection.js';
import { type HeaderList, type IdentityHeaderRules, sanitizeRequestHeaders } from '../headers.js';
import { Output } from '../output.js';
import { recordRequest } from '../record.js';
import { badRequest, type StatusResponse, statusResponse, upstreamUnavailable } from '../status.js';
import { isStreamingRequest, isWatchRequest } from '../streaming.js';
import type { Upstream } from '../upstream.js';
import { fragmentStart, HeaderBlock, padLength } from './block.js';
import { CutWords, EventBoundaries, goawayDebug } from './cut.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW_SIZE,
  ErrorCode,
  endStreamFrame,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  goawayFrame,
  headerFrames,
  MAX_WINDOW_SIZE,
  PREFACE,
  pingFrame,
  rstStreamFrame,
  SETTINGS_ACK,
  Setting,
  type SettingsChange,
  settingsChange,
  settingsError,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
} from './frames.js';
import {
  FieldFlag,
  HpackDecoder,
  HpackEncoder,
  HpackError,
  ResponseStatusReader,
} from './hpack.js';
import { FrameReader, type FrameSink, Mode } from './io.js';
import { TokenBucket } from './rate.js';
import { Check, checkFields, type RequestHead } from './request.js';
import { statusFrames } from './synthesize.js';

export interface H2Options {
  readonly upstream: Upstream;
  readonly rules: IdentityHeaderRules;
  readonly limits: Limits;
  readonly log: Logger;
}

const CONNECT_REFUSED = badRequest(
  'upgrades (exec, attach, port-forward) must use HTTP/1.1; CONNECT over HTTP/2 is not supported',
);

const TOO_MANY_FIELDS = statusResponse(
  431,
  'BadRequest',
  'kube-crl-proxy: the request header list is over --max-header-bytes or --max-header-count',
);

/** Payload of the relay's keep-alive pings: its ACKs are recognised and swallowed. */
const PING_PAYLOAD = randomBytes(8);
/** nghttp2's rapid-reset defaults (CVE-2023-44487): burst of client resets, then per second. */
const RESET_BURST = 1000;
const RESET_RATE = 33;
/** SETTINGS, PING, PRIORITY and empty frames: plenty for any client, not for a flood. */
const CONTROL_BURST = 1000;
const CONTROL_RATE = 100;
/** nghttp2's (Node's maxSettings) bound on entries in one SETTINGS frame. */
const MAX_SETTINGS_ENTRIES = 32;
/** Closed streams remembered for the frames still in flight for them. */
const RECENTLY_CLOSED = 128;
/** Frames waiting for a frame boundary before the client is read again. */
const MAX_PENDING = 256;
/**
 * Output a socket may hold before the side feeding it is paused (reading resumes when it has
 * drained). Above Node's 16 KB so that bursts (watch events to thousands of streams) do not
 * pause and resume reading on every turn.
 */
const HIGH_WATER_MARK = 256 * 1024;
/** A response header block larger than this is not the apiserver's. */
const MAX_RESPONSE_BLOCK = 1 << 20;
/** How long a connection being closed gracefully may take to flush. */
const CLOSE_GRACE_MS = 5000;
/** A cut connection's watches get this long to reach the end of the event under way. */
const CUT_GRACE_MS = 1000;

/** Why the relay closed the client's side of a stream itself. */
const ClosedBy = {
  /** It sent END_STREAM (a watch ended cleanly on shutdown): nothing more may follow. */
  Ended: 1,
  /** It sent RST_STREAM: the client ignores what follows, but must still decode header blocks. */
  Reset: 2,
} as const;
type ClosedBy = (typeof ClosedBy)[keyof typeof ClosedBy];

/** A client-initiated stream forwarded upstream, open (or half-closed) on either side. */
class Stream {
  clientEnded = false;
  upstreamEnded = false;
  contentLength = -1;
  received = 0;
  method = '';
  streaming = false;
  watch = false;
  /** A JSON watch whose 200 response is under way (cut.ts). */
  jsonEvents = false;
  /** Its response so far ends with a whole event. */
  atEvent = true;
  started = 0;
  /** Final (non-1xx) status of the response, once its HEADERS passed. */
  status = 0;
  /** Some response HEADERS reached the client. */
  headersSent = false;

  constructor(
    readonly id: number,
    /** What the client may still send (the upstream's window). */
    public sendWindow: number,
    /** What the upstream may still send (the client's window). */
    public recvWindow: number,
  ) {}
}

/** Relays with output to write at the end of this turn of the event loop. */
let toFlush: Relay[] = [];
let flushScheduled = false;

function flushRelays(): void {
  flushScheduled = false;
  const relays = toFlush;
  toFlush = [];
  for (const relay of relays) relay.flush();
}

export class H2Forwarder {
  constructor(private readonly options: H2Options) {}

  serve(client: ClientConnection): void {
    new Relay(client, this.options).start();
  }
}

class Relay {
  private readonly client: TLSSocket;
  private upstream: TLSSocket | null = null;
  /** Set when the upstream connection could not be had: every request gets this answer. */
  private unavailable: StatusResponse | null = null;
  private closed = false;

  private readonly toUpstream = new Output();
  private readonly toClient = new Output();
  /** Frames of the relay's own waiting for a frame boundary in their direction. */
  private readonly pendingToUpstream: Buffer[] = [];
  private readonly pendingToClient: Buffer[] = [];
  private readonly clientReader: FrameReader;
  private readonly upstreamReader: FrameReader;

  private prefaceLeft = PREFACE.length;
  private clientSettingsSeen = false;
  /** The upstream's first SETTINGS (the server preface) reached the client. */
  private clientStarted = false;
  private upstreamSettingsSeen = false;
  private readonly clientBlock = new HeaderBlock();
  private readonly upstreamBlock = new HeaderBlock();

  private readonly decoder = new HpackDecoder();
  private readonly encoder = new HpackEncoder();
  private readonly statusReader = new ResponseStatusReader();
  private keepFields = new Uint8Array(64);

  /** SETTINGS of the upstream (or the relay's own) sent to the client, awaiting its ACK. */
  private readonly settingsToClient: SettingsChange[] = [];
  /** SETTINGS of the client sent upstream, awaiting the upstream's ACK. */
  private readonly settingsToUpstream: SettingsChange[] = [];
  /** Largest frame the client may send: the upstream's limit, sent or in force. */
  private clientFrameLimit = DEFAULT_MAX_FRAME_SIZE;
  private upstreamFrameSizeInForce = DEFAULT_MAX_FRAME_SIZE;
  /** SETTINGS_INITIAL_WINDOW_SIZE in force: the upstream's (for the client's sending) and the client's. */
  private upstreamInitialWindow = DEFAULT_WINDOW_SIZE;
  private clientInitialWindow = DEFAULT_WINDOW_SIZE;
  /** Connection windows: what the client may still send, what the upstream may still send. */
  private connectionSendWindow = DEFAULT_WINDOW_SIZE;
  private connectionRecvWindow = DEFAULT_WINDOW_SIZE;

  private readonly streams = new Map<number, Stream>();
  private lastClientStreamId = 0;
  private lastForwardedStreamId = 0;
  private lastPromisedStreamId = 0;
  /** Recently closed streams, and whether each went upstream (allocated at the first close). */
  private recentlyClosed: Uint32Array | null = null;
  private recentlyForwarded: Uint8Array | null = null;
  private recentlyClosedNext = 0;
  /** Streams the relay closed at the client while the upstream may still send on them. */
  private readonly closedAtClient = new Map<number, ClosedBy>();

  /** GOAWAY sent to the client (shutdown) or received from upstream: no new stream. */
  private goingAway = false;
  private draining = false;
  private goawaySent = false;
  /** Close both connections once no stream is left and the client has everything. */
  private finishing = false;
  private closeTimer: NodeJS.Timeout | null = null;

  /** A cut under way (the certificate is no longer accepted); the client is read no more. */
  private cutting: CutWords | null = null;
  private readonly events = new EventBoundaries();

  private pingTimer: NodeJS.Timeout | null = null;
  private awaitingPing = false;
  private readonly resets = new TokenBucket(RESET_BURST, RESET_RATE);
  private readonly controlFrames = new TokenBucket(CONTROL_BURST, CONTROL_RATE);

  private clientPaused = false;
  private upstreamPaused = false;
  private flushQueued = false;
  private readonly onDrain = () => this.updateFlow();

  constructor(
    private readonly connection: ClientConnection,
    private readonly options: H2Options,
  ) {
    this.client = connection.socket;
    this.clientReader = new FrameReader(this.clientSink, this.toUpstream);
    this.upstreamReader = new FrameReader(this.upstreamSink, this.toClient);
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

  // ---------------------------------------------------------------- connections

  private attach(socket: TLSSocket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (socket.destroyed) {
      this.serveLocally(upstreamUnavailable('the upstream connection closed'));
      return;
    }
    this.upstream = socket;
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
    if (this.closed) return;
    this.unavailable = status;
    // The relay is the server now: its own (empty) SETTINGS is the server preface.
    this.settingsToClient.push({});
    this.toClient.push(settingsFrame([]));
    this.clientStarted = true;
    this.listenToClient();
    this.scheduleFlush();
  }

  private listenToClient(): void {
    const { client } = this;
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    client.on('drain', this.onDrain);
    client.resume();
    this.startPings();
  }

  private onClientClose(): void {
    this.closed = true;
    this.stopTimers();
    this.upstream?.destroy();
  }

  private onUpstreamClose(): void {
    if (this.closed) return;
    if (this.finishing) {
      this.closeClient();
      return;
    }
    // The upstream went away: answer what it left unanswered, then GOAWAY and close.
    if (!this.startClientIfNeeded()) {
      this.destroy();
      return;
    }
    for (const stream of [...this.streams.values()]) {
      this.streams.delete(stream.id);
      if (this.closedAtClient.has(stream.id)) continue;
      if (!stream.headersSent) {
        const status = upstreamUnavailable('the upstream connection closed');
        this.answer(stream.id, stream.method, status, stream.streaming ? -1 : stream.started);
        if (!stream.clientEnded) this.injectToClient(rstStreamFrame(stream.id, ErrorCode.NoError));
      } else if (stream.upstreamEnded) {
        // The response is complete; the client need not finish its request.
        this.injectToClient(rstStreamFrame(stream.id, ErrorCode.NoError));
      } else if (stream.streaming && stream.status > 0) {
        this.injectToClient(endStreamFrame(stream.id));
      } else {
        this.injectToClient(rstStreamFrame(stream.id, ErrorCode.InternalError));
      }
    }
    this.sendGoaway(ErrorCode.NoError);
    this.finishing = true;
    this.scheduleFlush();
  }

  /**
   * Cut from outside (connection.ts): with a Status, each JSON watch gets its ERROR event
   * (cut.ts) and the GOAWAY carries the reason, then both connections close. Without one
   * (shutdown), or with no upstream to relay from, GOAWAY and both connections closed at once.
   */
  private terminate(cut: Cut): void {
    if (this.closed) return;
    if (cut.status !== null && this.clientStarted && this.unavailable === null) {
      this.cutting = new CutWords(cut.status, cut.reason);
      this.clientReader.stopped = true;
      setTimeout(() => {
        if (this.cutting === null) return;
        this.cutting.expired = true;
        this.continueCut();
      }, CUT_GRACE_MS).unref();
      this.continueCut();
      return;
    }
    if (this.canInjectToClient()) {
      const debug = cut.status === null ? undefined : goawayDebug(cut.reason);
      this.toClient.push(goawayFrame(this.lastClientStreamId, ErrorCode.NoError, debug));
    }
    const out = this.toClient.take();
    if (out !== null) this.client.write(out);
    this.closed = true;
    this.stopTimers();
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
    const cutting = this.cutting;
    if (cutting === null || this.closed) return;
    if (!this.canInjectToClient()) {
      // Half a frame is out: nothing can be added to it.
      if (cutting.expired) this.destroy();
      return;
    }
    this.drainPendingToClient();
    this.events.settle(this.upstreamReader.lastByte);
    let waiting = false;
    for (const stream of this.streams.values()) {
      if (!stream.jsonEvents || stream.upstreamEnded || cutting.done.has(stream.id)) continue;
      if (this.closedAtClient.has(stream.id)) continue;
      if (!stream.atEvent && !cutting.expired) {
        waiting = true;
        continue;
      }
      cutting.done.add(stream.id);
      const frames = stream.atEvent ? cutting.eventFor(stream, this.connectionRecvWindow) : null;
      if (frames === null) continue;
      this.injectToClient(frames);
      stream.recvWindow -= cutting.event.length;
      this.connectionRecvWindow -= cutting.event.length;
      this.rememberClosedAtClient(stream.id, ClosedBy.Ended);
    }
    if (waiting) return;
    this.cutting = null;
    this.goawaySent = true;
    this.injectToClient(cutting.goaway(this.lastClientStreamId));
    this.drainPendingToUpstream();
    if (this.canInjectToUpstream())
      for (const stream of this.streams.values())
        this.injectToUpstream(rstStreamFrame(stream.id, ErrorCode.Cancel));
    const up = this.toUpstream.take();
    if (up !== null && this.upstream !== null && !this.upstream.destroyed) this.upstream.write(up);
    const down = this.toClient.take();
    if (down !== null) this.client.write(down);
    this.closeClient();
  }

  /**
   * Shutdown: GOAWAY (no new stream), watches and logs -f ended as complete responses, the
   * other streams finish, then both connections close.
   */
  private drain(): void {
    if (this.closed || this.draining) return;
    this.draining = true;
    this.goingAway = true;
    this.sendGoaway(ErrorCode.NoError);
    for (const stream of [...this.streams.values()]) {
      if (!stream.streaming || this.closedAtClient.has(stream.id)) continue;
      if (stream.status > 0) {
        this.injectToClient(endStreamFrame(stream.id));
        this.rememberClosedAtClient(stream.id, ClosedBy.Ended);
      } else {
        this.injectToClient(rstStreamFrame(stream.id, ErrorCode.Cancel));
        this.rememberClosedAtClient(stream.id, ClosedBy.Reset);
      }
      this.injectToUpstream(rstStreamFrame(stream.id, ErrorCode.Cancel));
      this.closeStream(stream);
    }
    this.finishIfIdle();
    this.scheduleFlush();
  }

  private finishIfIdle(): void {
    if (this.goingAway && this.streams.size === 0) this.finishing = true;
  }

  /** Closes both connections now (a broken peer, an unanswered ping). */
  private destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    this.upstream?.destroy();
    this.client.destroy();
  }

  /** Closes the client connection once what was written is flushed (bounded in time). */
  private closeClient(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    this.upstream?.destroySoon();
    this.client.destroySoon();
    this.closeTimer = setTimeout(() => {
      this.client.destroy();
      this.upstream?.destroy();
    }, CLOSE_GRACE_MS);
    this.closeTimer.unref();
    this.client.once('close', () => {
      if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    });
  }

  private stopTimers(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  /**
   * Node has no idle timeout for HTTP/2: ping the client, and close a connection whose ping is
   * still unanswered one interval later (the client is gone without a FIN).
   */
  private startPings(): void {
    const interval = this.options.limits.h2PingIntervalMs;
    this.pingTimer = setInterval(() => {
      if (this.closed) return;
      if (!this.clientStarted) {
        // An upstream that has not even sent its SETTINGS in a whole interval is not serving.
        upstreamErrors.inc({ kind: 'timeout' });
        this.options.log.debug(
          { connection: this.connection.id },
          'the upstream sent no HTTP/2 SETTINGS; closing it',
        );
        this.upstream?.destroy();
        return;
      }
      if (this.awaitingPing) {
        this.options.log.info(
          { connection: this.connection.id },
          'closing an HTTP/2 client session that stopped answering pings',
        );
        this.destroy();
        return;
      }
      this.awaitingPing = true;
      this.injectToClient(pingFrame(PING_PAYLOAD, false));
      this.scheduleFlush();
    }, interval);
    this.pingTimer.unref();
  }

  // ---------------------------------------------------------------- reading and writing

  private onClientData(chunk: Buffer): void {
    if (this.closed || this.cutting !== null) return;
    let pos = 0;
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, chunk.length);
      const offset = PREFACE.length - this.prefaceLeft;
      if (chunk.compare(PREFACE, offset, offset + n, 0, n) !== 0) {
        this.options.log.debug({ connection: this.connection.id }, 'not an HTTP/2 client preface');
        this.destroy();
        return;
      }
      if (this.unavailable === null) this.toUpstream.pass(chunk, 0, n);
      this.prefaceLeft -= n;
      pos = n;
    }
    try {
      this.clientReader.feed(chunk, pos);
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      this.connectionError(ErrorCode.CompressionError, err.message);
    }
    this.drainPendingToUpstream();
    this.scheduleFlush();
  }

  private onUpstreamData(chunk: Buffer): void {
    if (this.closed) return;
    this.upstreamReader.feed(chunk, 0);
    this.drainPendingToClient();
    if (this.cutting !== null) this.continueCut();
    this.scheduleFlush();
  }

  /**
   * Writes happen once per turn of the event loop, after every read of the turn: a TLS write
   * completes asynchronously, and a second write before it does would be queued and written
   * again by Node's stream machinery; reads of one turn go out in one write instead.
   */
  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    toFlush.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushRelays);
    }
  }

  flush(): void {
    this.flushQueued = false;
    if (this.closed) return;
    const up = this.toUpstream.take();
    if (up !== null && this.upstream !== null && !this.upstream.destroyed) this.upstream.write(up);
    const down = this.toClient.take();
    if (down !== null) this.client.write(down);
    if (this.finishing && this.pendingToClient.length === 0) {
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
    if (this.closed) return;
    const clientFull =
      this.client.writableLength >= HIGH_WATER_MARK || this.pendingToClient.length >= MAX_PENDING;
    const upstreamFull = (this.upstream?.writableLength ?? 0) >= HIGH_WATER_MARK;
    const readClient = !clientFull && !upstreamFull;
    if (readClient === this.clientPaused) {
      this.clientPaused = !readClient;
      if (readClient) this.client.resume();
      else this.client.pause();
    }
    const upstream = this.upstream;
    if (upstream !== null && clientFull !== this.upstreamPaused) {
      this.upstreamPaused = clientFull;
      if (clientFull) upstream.pause();
      else upstream.resume();
    }
  }

  /** Frames of the relay's own go to the client only between frames and outside header blocks. */
  private canInjectToClient(): boolean {
    return this.clientStarted && !this.upstreamBlock.active && this.upstreamReader.atBoundary;
  }

  private injectToClient(frame: Buffer): void {
    if (this.pendingToClient.length === 0 && this.canInjectToClient()) this.toClient.push(frame);
    else this.pendingToClient.push(frame);
  }

  private drainPendingToClient(): void {
    if (this.pendingToClient.length === 0 || !this.canInjectToClient()) return;
    for (const frame of this.pendingToClient) this.toClient.push(frame);
    this.pendingToClient.length = 0;
  }

  private injectToUpstream(frame: Buffer): void {
    if (this.upstream === null) return;
    if (this.pendingToUpstream.length === 0 && this.canInjectToUpstream())
      this.toUpstream.push(frame);
    else this.pendingToUpstream.push(frame);
  }

  private canInjectToUpstream(): boolean {
    return this.clientSettingsSeen && this.clientReader.atBoundary;
  }

  private drainPendingToUpstream(): void {
    if (this.pendingToUpstream.length === 0 || !this.canInjectToUpstream()) return;
    for (const frame of this.pendingToUpstream) this.toUpstream.push(frame);
    this.pendingToUpstream.length = 0;
  }

  /**
   * Makes sure the client has had a server preface before the relay writes to it: when the
   * upstream's never came (it closed first), the relay sends its own. False when the
   * upstream left the client in the middle of a frame or header block.
   */
  private startClientIfNeeded(): boolean {
    if (!this.clientStarted) {
      if (!this.upstreamReader.atBoundary) return false;
      this.settingsToClient.push({});
      this.toClient.push(settingsFrame([]));
      this.clientStarted = true;
    }
    return !this.upstreamBlock.active && this.upstreamReader.atBoundary;
  }

  private sendGoaway(code: number): void {
    if (this.goawaySent) return;
    this.goawaySent = true;
    this.injectToClient(goawayFrame(this.lastClientStreamId, code));
  }

  /**
   * A connection error caused by the client: GOAWAY with `code`, both connections closed.
   * Returns Skip so a frame callback can return it.
   */
  private connectionError(code: number, reason: string): Mode {
    if (this.closed) return Mode.Skip;
    this.options.log.debug(
      { connection: this.connection.id, code, reason },
      'HTTP/2 connection error from the client',
    );
    this.clientReader.stopped = true;
    this.upstreamReader.stopped = true;
    this.upstream?.destroy();
    this.upstream = null;
    if (!this.startClientIfNeeded()) {
      this.destroy();
      return Mode.Skip;
    }
    this.pendingToClient.length = 0;
    this.goawaySent = true;
    this.toClient.push(goawayFrame(this.lastClientStreamId, code));
    const out = this.toClient.take();
    if (out !== null) this.client.write(out);
    this.closeClient();
    return Mode.Skip;
  }

  /** The upstream broke the protocol: nothing sensible can be relayed any more. */
  private upstreamProtocolError(reason: string): Mode {
    upstreamErrors.inc({ kind: 'protocol' });
    this.options.log.warn(
      { connection: this.connection.id, reason },
      'upstream HTTP/2 protocol error',
    );
    this.upstreamReader.stopped = true;
    this.destroy();
    return Mode.Skip;
  }

  // ---------------------------------------------------------------- streams

  private isIdle(streamId: number): boolean {
    return streamId & 1 ? streamId > this.lastClientStreamId : streamId > this.lastPromisedStreamId;
  }

  private closeStream(stream: Stream): void {
    if (!this.streams.delete(stream.id)) return;
    this.rememberClosed(stream.id, true);
    this.finishIfIdle();
  }

  private rememberClosed(streamId: number, forwarded: boolean): void {
    this.recentlyClosed ??= new Uint32Array(RECENTLY_CLOSED);
    this.recentlyForwarded ??= new Uint8Array(RECENTLY_CLOSED);
    this.recentlyClosed[this.recentlyClosedNext] = streamId;
    this.recentlyForwarded[this.recentlyClosedNext] = forwarded ? 1 : 0;
    this.recentlyClosedNext = (this.recentlyClosedNext + 1) % RECENTLY_CLOSED;
  }

  /** Whether frames for closed stream `streamId` go upstream: 1 yes, 0 no, -1 unknown. */
  private closedWentUpstream(streamId: number): number {
    const i = this.recentlyClosed?.indexOf(streamId) ?? -1;
    return i < 0 ? -1 : ((this.recentlyForwarded as Uint8Array)[i] as number);
  }

  /** Frames on a closed stream go upstream when the upstream saw it (it answers them). */
  private forwardsClosed(streamId: number): boolean {
    if (this.upstream === null) return false;
    // Even: a stream the upstream promised (server push).
    if ((streamId & 1) === 0) return true;
    const known = this.closedWentUpstream(streamId);
    return known === -1 ? streamId <= this.lastForwardedStreamId : known === 1;
  }

  private maybeClose(stream: Stream): void {
    if (stream.clientEnded && stream.upstreamEnded) this.closeStream(stream);
  }

  /** A stream error caused by the client: reset at the client, cancelled upstream. */
  private streamError(stream: Stream, code: number): void {
    this.injectToClient(rstStreamFrame(stream.id, code));
    if (!this.closedAtClient.has(stream.id)) {
      this.injectToUpstream(rstStreamFrame(stream.id, ErrorCode.Cancel));
      this.rememberClosedAtClient(stream.id, ClosedBy.Reset);
    }
    this.closeStream(stream);
  }

  private rememberClosedAtClient(streamId: number, how: ClosedBy): void {
    this.closedAtClient.set(streamId, how);
    if (this.closedAtClient.size > RECENTLY_CLOSED) {
      const oldest = this.closedAtClient.keys().next().value as number;
      this.closedAtClient.delete(oldest);
    }
  }

  /** DATA the client sent that goes nowhere still counts against its connection window. */
  private returnClientCredit(length: number): void {
    if (length === 0) return;
    this.connectionSendWindow += length;
    this.injectToClient(windowUpdateFrame(0, length));
  }

  /** DATA the upstream sent that the client will never see: give the window back. */
  private returnUpstreamCredit(length: number): void {
    if (length === 0) return;
    this.connectionRecvWindow += length;
    this.injectToUpstream(windowUpdateFrame(0, length));
  }

  /**
   * An answer of the relay's own on stream `streamId`, counted like a forwarded one (its
   * duration from `started`, unless that is -1).
   */
  private answer(streamId: number, method: string, status: StatusResponse, started: number): void {
    this.injectToClient(statusFrames(streamId, status));
    recordRequest('h2', method, status.code, started);
  }

  private recordResponse(stream: Stream): void {
    if (stream.status !== 0)
      recordRequest('h2', stream.method, stream.status, stream.streaming ? -1 : stream.started);
  }

  // ---------------------------------------------------------------- client → upstream

  private readonly clientSink: FrameSink = {
    onFrameHeader: (type, flags, streamId, length, padLength) =>
      this.onClientFrameHeader(type, flags, streamId, length, padLength),
    onFrame: (type, flags, streamId, buf, at, end) =>
      this.onClientFrame(type, flags, streamId, buf, at, end),
  };

  private onClientFrameHeader(
    type: number,
    flags: number,
    streamId: number,
    length: number,
    padLength: number,
  ): Mode {
    this.drainPendingToUpstream();
    if (!this.clientSettingsSeen && (type !== FrameType.Settings || flags & Flag.Ack))
      return this.connectionError(ErrorCode.ProtocolError, 'first frame is not SETTINGS');
    if (length > this.clientFrameLimit)
      return this.connectionError(ErrorCode.FrameSizeError, `frame of ${length} octets`);
    if (this.clientBlock.active && type !== FrameType.Continuation)
      return this.connectionError(ErrorCode.ProtocolError, 'frame inside a header block');
    switch (type) {
      case FrameType.Data:
        return this.onClientDataHeader(flags, streamId, length, padLength);
      case FrameType.Headers:
        if (streamId === 0 || (streamId & 1) === 0)
          return this.connectionError(ErrorCode.ProtocolError, `HEADERS on stream ${streamId}`);
        if (length === 0 && !(flags & Flag.EndHeaders) && !this.controlFrames.take())
          return this.connectionError(ErrorCode.EnhanceYourCalm, 'empty frame flood');
        this.clientBlock.begin(streamId, (flags & Flag.EndStream) !== 0);
        return Mode.Hold;
      case FrameType.Continuation:
        if (!this.clientBlock.active || this.clientBlock.streamId !== streamId)
          return this.connectionError(
            ErrorCode.ProtocolError,
            'CONTINUATION out of a header block',
          );
        if (length === 0 && !(flags & Flag.EndHeaders) && !this.controlFrames.take())
          return this.connectionError(ErrorCode.EnhanceYourCalm, 'empty frame flood');
        return Mode.Hold;
      case FrameType.Priority:
        if (streamId === 0) return this.connectionError(ErrorCode.ProtocolError, 'PRIORITY on 0');
        if (length !== 5) return this.connectionError(ErrorCode.FrameSizeError, 'PRIORITY size');
        if (!this.controlFrames.take())
          return this.connectionError(ErrorCode.EnhanceYourCalm, 'PRIORITY flood');
        return Mode.Hold;
      case FrameType.RstStream:
        if (length !== 4) return this.connectionError(ErrorCode.FrameSizeError, 'RST_STREAM size');
        if (streamId === 0 || this.isIdle(streamId))
          return this.connectionError(ErrorCode.ProtocolError, `RST_STREAM on idle ${streamId}`);
        return Mode.Hold;
      case FrameType.Settings:
        if (streamId !== 0) return this.connectionError(ErrorCode.ProtocolError, 'SETTINGS stream');
        if (flags & Flag.Ack) {
          if (length !== 0)
            return this.connectionError(ErrorCode.FrameSizeError, 'SETTINGS ACK with a payload');
        } else {
          if (length % 6 !== 0)
            return this.connectionError(ErrorCode.FrameSizeError, 'SETTINGS size');
          if (length > MAX_SETTINGS_ENTRIES * 6 || !this.controlFrames.take())
            return this.connectionError(ErrorCode.EnhanceYourCalm, 'SETTINGS flood');
        }
        return Mode.Hold;
      case FrameType.PushPromise:
        return this.connectionError(ErrorCode.ProtocolError, 'PUSH_PROMISE from a client');
      case FrameType.Ping:
        if (streamId !== 0) return this.connectionError(ErrorCode.ProtocolError, 'PING stream');
        if (length !== 8) return this.connectionError(ErrorCode.FrameSizeError, 'PING size');
        return Mode.Hold;
      case FrameType.Goaway:
        if (streamId !== 0) return this.connectionError(ErrorCode.ProtocolError, 'GOAWAY stream');
        if (length < 8) return this.connectionError(ErrorCode.FrameSizeError, 'GOAWAY size');
        return this.upstream === null ? Mode.Skip : Mode.Pass;
      case FrameType.WindowUpdate:
        if (length !== 4)
          return this.connectionError(ErrorCode.FrameSizeError, 'WINDOW_UPDATE size');
        return Mode.Hold;
      default:
        // Unknown frame types are ignored (RFC 9113 5.5), and not relayed.
        if (!this.controlFrames.take())
          return this.connectionError(ErrorCode.EnhanceYourCalm, 'unknown frame flood');
        return Mode.Skip;
    }
  }

  private onClientDataHeader(
    flags: number,
    streamId: number,
    length: number,
    padLength: number,
  ): Mode {
    if (streamId === 0) return this.connectionError(ErrorCode.ProtocolError, 'DATA on stream 0');
    if (flags & Flag.Padded && (length === 0 || padLength >= length))
      return this.connectionError(ErrorCode.ProtocolError, 'DATA padding');
    const endStream = (flags & Flag.EndStream) !== 0;
    if (length === 0 && !endStream && !this.controlFrames.take())
      return this.connectionError(ErrorCode.EnhanceYourCalm, 'empty DATA flood');
    this.connectionSendWindow -= length;
    if (this.connectionSendWindow < 0)
      return this.connectionError(ErrorCode.FlowControlError, 'connection window exceeded');
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (this.isIdle(streamId))
        return this.connectionError(ErrorCode.ProtocolError, `DATA on idle stream ${streamId}`);
      if (this.forwardsClosed(streamId)) return Mode.Pass;
      this.returnClientCredit(length);
      return Mode.Skip;
    }
    if (stream.clientEnded) {
      this.streamError(stream, ErrorCode.StreamClosed);
      this.returnClientCredit(length);
      return Mode.Skip;
    }
    stream.sendWindow -= length;
    if (stream.sendWindow < 0) {
      this.streamError(stream, ErrorCode.FlowControlError);
      this.returnClientCredit(length);
      return Mode.Skip;
    }
    stream.received += flags & Flag.Padded ? length - 1 - padLength : length;
    const declared = stream.contentLength;
    if (
      declared >= 0 &&
      (stream.received > declared || (endStream && stream.received !== declared))
    ) {
      this.streamError(stream, ErrorCode.ProtocolError);
      this.returnClientCredit(length);
      return Mode.Skip;
    }
    if (endStream) {
      stream.clientEnded = true;
      this.maybeClose(stream);
    }
    return Mode.Pass;
  }

  /** A held client frame is complete; returns whether it goes upstream as it is. */
  private onClientFrame(
    type: number,
    flags: number,
    streamId: number,
    buf: Buffer,
    at: number,
    end: number,
  ): boolean {
    switch (type) {
      case FrameType.Headers:
      case FrameType.Continuation:
        this.onClientHeaderFragment(type, flags, streamId, buf, at, end);
        return false;
      case FrameType.Settings:
        return this.onClientSettings(flags, buf.subarray(at + FRAME_HEADER_LENGTH, end));
      case FrameType.Ping:
        return this.onClientPing(flags, buf, at + FRAME_HEADER_LENGTH);
      case FrameType.RstStream:
        return this.onClientReset(streamId);
      case FrameType.WindowUpdate:
        return this.onClientWindowUpdate(
          streamId,
          buf.readUInt32BE(at + FRAME_HEADER_LENGTH) & 0x7fff_ffff,
        );
      case FrameType.Priority:
        return this.upstream !== null && this.closedWentUpstream(streamId) !== 0;
      default:
        return false;
    }
  }

  private onClientHeaderFragment(
    type: number,
    flags: number,
    streamId: number,
    buf: Buffer,
    at: number,
    end: number,
  ): void {
    const block = this.clientBlock;
    let start = at + FRAME_HEADER_LENGTH;
    if (type === FrameType.Headers) {
      start = fragmentStart(buf, at, end, flags, flags & Flag.Priority ? 5 : 0);
      if (start < 0) {
        this.connectionError(ErrorCode.ProtocolError, 'HEADERS padding');
        return;
      }
      end -= padLength(buf, at, flags);
      if (flags & Flag.Priority)
        block.selfDependent = (buf.readUInt32BE(start - 5) & 0x7fff_ffff) === streamId;
    }
    block.add(buf, start, end);
    if (block.length > this.options.limits.maxHeaderBytes) {
      this.connectionError(ErrorCode.EnhanceYourCalm, 'header block too large');
      return;
    }
    if (flags & Flag.EndHeaders) {
      block.complete();
      this.onClientHeaderBlock(block);
    }
  }

  private onClientHeaderBlock(block: HeaderBlock): void {
    const { limits } = this.options;
    const decoder = this.decoder;
    decoder.decode(
      block.bytes,
      block.start,
      block.end,
      limits.maxHeaderBytes,
      limits.maxHeaderCount,
    );
    const streamId = block.streamId;
    const existing = this.streams.get(streamId);
    if (existing !== undefined) {
      this.onClientTrailers(existing, block);
      return;
    }
    if (streamId <= this.lastClientStreamId) {
      // A late block of a stream closed a moment ago is decoded (above) and ignored.
      if (this.closedWentUpstream(streamId) !== -1) return;
      this.connectionError(ErrorCode.ProtocolError, `HEADERS on closed stream ${streamId}`);
      return;
    }
    this.lastClientStreamId = streamId;
    if (decoder.overLimit) {
      this.answerStream(block, 'OTHER', TOO_MANY_FIELDS, -1);
      return;
    }
    const head: RequestHead = { method: '', path: '', contentLength: -1 };
    const keep = this.keepFor(decoder.count);
    if (
      block.selfDependent ||
      checkFields(
        decoder.names,
        decoder.values,
        decoder.flags,
        decoder.count,
        false,
        keep,
        head,
      ) !== Check.Ok ||
      (block.endStream && head.contentLength > 0)
    ) {
      this.refuse(streamId, ErrorCode.ProtocolError);
      return;
    }
    if (head.method === 'CONNECT') {
      // exec, attach and port-forward are HTTP/1.1 upgrades; kubectl opens them on their own
      // HTTP/1.1 connections. A tunnel over HTTP/2 (RFC 8441) is not offered.
      this.answerStream(block, head.method, CONNECT_REFUSED, -1);
      return;
    }
    if (this.unavailable !== null) {
      const started = isStreamingRequest(head.path) ? -1 : performance.now();
      this.answerStream(block, head.method, this.unavailable, started);
      // Nothing will work on this connection: the client should open a new one.
      this.goingAway = true;
      this.sendGoaway(ErrorCode.NoError);
      this.finishIfIdle();
      return;
    }
    if (this.goingAway || this.streams.size >= limits.h2MaxConcurrentStreams) {
      this.refuse(streamId, ErrorCode.RefusedStream);
      return;
    }
    const stream = new Stream(streamId, this.upstreamInitialWindow, this.clientInitialWindow);
    stream.method = head.method;
    stream.streaming = isStreamingRequest(head.path);
    stream.watch = stream.streaming && isWatchRequest(head.path);
    stream.started = performance.now();
    stream.contentLength = head.contentLength;
    stream.clientEnded = block.endStream;
    this.streams.set(streamId, stream);
    this.lastForwardedStreamId = streamId;
    this.forwardRequestHead(streamId, keep, block.endStream);
  }

  /** A new stream the relay resets before it goes anywhere. */
  private refuse(streamId: number, code: number): void {
    this.injectToClient(rstStreamFrame(streamId, code));
    this.rememberClosed(streamId, false);
  }

  /** A new stream the relay answers itself (and then forgets). */
  private answerStream(
    block: HeaderBlock,
    method: string,
    status: StatusResponse,
    started: number,
  ): void {
    this.answer(block.streamId, method, status, started);
    if (!block.endStream) this.injectToClient(rstStreamFrame(block.streamId, ErrorCode.NoError));
    this.rememberClosed(block.streamId, false);
  }

  private keepFor(count: number): Uint8Array {
    if (this.keepFields.length < count) this.keepFields = new Uint8Array(count * 2);
    return this.keepFields;
  }

  /** Re-encodes the decoded request head for upstream: sanitised, identity appended. */
  private forwardRequestHead(streamId: number, keep: Uint8Array, endStream: boolean): void {
    const { names, values, flags, count } = this.decoder;
    const regular: HeaderList = [];
    let neverIndexed: Set<string> | null = null;
    let bound = 0;
    for (let i = 0; i < count; i++) {
      if (keep[i] === 0) continue;
      const name = names[i] as string;
      const value = values[i] as string;
      if (name.charCodeAt(0) === 0x3a) {
        bound += HpackEncoder.bound(name, value);
        continue;
      }
      regular.push([name, value]);
      if ((flags[i] as number) & FieldFlag.NeverIndexed) {
        neverIndexed ??= new Set();
        neverIndexed.add(name);
      }
    }
    const { connection, options } = this;
    const sanitized = connection.ownHeaders(options.rules).fields(regular, true);
    const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 12 + bound + this.bound(sanitized));
    const encoder = this.encoder;
    let pos = encoder.beginBlock(out, FRAME_HEADER_LENGTH);
    for (let i = 0; i < count; i++) {
      const name = names[i] as string;
      if (keep[i] === 0 || name.charCodeAt(0) !== 0x3a) continue;
      const value = values[i] as string;
      const never = ((flags[i] as number) & FieldFlag.NeverIndexed) !== 0;
      pos = encoder.encodeRequestField(name, value, never, out, pos);
    }
    pos = this.encodeRegular(sanitized, neverIndexed, out, pos);
    this.sendHeaderBlock(out, pos, streamId, endStream);
  }

  private bound(fields: HeaderList): number {
    let bound = 0;
    for (const [name, value] of fields) bound += HpackEncoder.bound(name, value);
    return bound;
  }

  private encodeRegular(
    fields: HeaderList,
    neverIndexed: Set<string> | null,
    out: Buffer,
    pos: number,
  ): number {
    const encoder = this.encoder;
    for (const [rawName, value] of fields) {
      const name = rawName.toLowerCase();
      const never = neverIndexed?.has(name) === true;
      pos = encoder.encodeRequestField(name, value, never, out, pos);
    }
    return pos;
  }

  /**
   * Sends upstream the header block encoded at `out[9, end)`: one HEADERS frame written in
   * place, or HEADERS and CONTINUATION frames at the size every peer accepts.
   */
  private sendHeaderBlock(out: Buffer, end: number, streamId: number, endStream: boolean): void {
    const length = end - FRAME_HEADER_LENGTH;
    if (length <= DEFAULT_MAX_FRAME_SIZE) {
      const frameFlags = Flag.EndHeaders | (endStream ? Flag.EndStream : 0);
      writeFrameHeader(out, 0, length, FrameType.Headers, frameFlags, streamId);
      this.toUpstream.push(out.subarray(0, end));
      return;
    }
    this.toUpstream.push(
      headerFrames(out, FRAME_HEADER_LENGTH, end, streamId, endStream, DEFAULT_MAX_FRAME_SIZE),
    );
  }

  /** Request trailers: checked, identity and hop-by-hop fields removed, nothing added. */
  private onClientTrailers(stream: Stream, block: HeaderBlock): void {
    const decoder = this.decoder;
    if (stream.clientEnded) {
      this.streamError(stream, ErrorCode.StreamClosed);
      return;
    }
    const head: RequestHead = {
      method: stream.method,
      path: '',
      contentLength: stream.contentLength,
    };
    const keep = this.keepFor(decoder.count);
    if (
      !block.endStream ||
      decoder.overLimit ||
      checkFields(decoder.names, decoder.values, decoder.flags, decoder.count, true, keep, head) !==
        Check.Ok ||
      (head.contentLength >= 0 && head.contentLength !== stream.received)
    ) {
      this.streamError(stream, ErrorCode.ProtocolError);
      return;
    }
    stream.clientEnded = true;
    const pairs: HeaderList = [];
    let neverIndexed: Set<string> | null = null;
    for (let i = 0; i < decoder.count; i++) {
      if (keep[i] === 0) continue;
      const name = decoder.names[i] as string;
      pairs.push([name, decoder.values[i] as string]);
      if ((decoder.flags[i] as number) & FieldFlag.NeverIndexed) {
        neverIndexed ??= new Set();
        neverIndexed.add(name);
      }
    }
    const sanitized = sanitizeRequestHeaders(pairs, null, this.options.rules).filter(
      ([name]) => name.toLowerCase() !== 'x-forwarded-for',
    );
    const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 12 + this.bound(sanitized));
    let pos = this.encoder.beginBlock(out, FRAME_HEADER_LENGTH);
    pos = this.encodeRegular(sanitized, neverIndexed, out, pos);
    this.sendHeaderBlock(out, pos, stream.id, true);
    this.maybeClose(stream);
  }

  private onClientSettings(flags: number, payload: Buffer): boolean {
    if (flags & Flag.Ack) {
      const change = this.settingsToClient.shift();
      if (change === undefined) {
        this.connectionError(ErrorCode.ProtocolError, 'SETTINGS ACK without SETTINGS');
        return false;
      }
      this.applyUpstreamSettings(change);
      return this.upstream !== null;
    }
    const error = settingsError(payload);
    if (error !== null) {
      this.connectionError(error, 'invalid SETTINGS value');
      return false;
    }
    this.clientSettingsSeen = true;
    if (this.upstream === null) {
      this.injectToClient(SETTINGS_ACK);
      return false;
    }
    this.settingsToUpstream.push(settingsChange(payload));
    return true;
  }

  /** The client acknowledged SETTINGS the upstream (or the relay) sent: now in force. */
  private applyUpstreamSettings(change: SettingsChange): void {
    if (change.headerTableSize !== undefined) {
      this.decoder.setAllowedTableSize(change.headerTableSize);
      this.encoder.setLimit(change.headerTableSize);
    }
    if (change.initialWindowSize !== undefined) {
      const delta = change.initialWindowSize - this.upstreamInitialWindow;
      this.upstreamInitialWindow = change.initialWindowSize;
      for (const stream of this.streams.values()) stream.sendWindow += delta;
    }
    if (change.maxFrameSize !== undefined) this.upstreamFrameSizeInForce = change.maxFrameSize;
    this.updateClientFrameLimit();
  }

  private updateClientFrameLimit(): void {
    let limit = this.upstreamFrameSizeInForce;
    for (const change of this.settingsToClient)
      if (change.maxFrameSize !== undefined) limit = Math.max(limit, change.maxFrameSize);
    this.clientFrameLimit = limit;
  }

  private onClientPing(flags: number, buf: Buffer, payload: number): boolean {
    if (flags & Flag.Ack) {
      if (buf.compare(PING_PAYLOAD, 0, 8, payload, payload + 8) === 0) {
        this.awaitingPing = false;
        return false;
      }
      return this.upstream !== null;
    }
    if (!this.controlFrames.take()) {
      this.connectionError(ErrorCode.EnhanceYourCalm, 'PING flood');
      return false;
    }
    if (this.upstream !== null) return true;
    this.injectToClient(pingFrame(buf.subarray(payload, payload + 8), true));
    return false;
  }

  private onClientReset(streamId: number): boolean {
    if (!this.resets.take()) {
      this.connectionError(ErrorCode.EnhanceYourCalm, 'stream reset flood (rapid reset)');
      return false;
    }
    const stream = this.streams.get(streamId);
    if (stream !== undefined) {
      this.closeStream(stream);
      // The code travels as it is (CANCEL stays CANCEL).
      return true;
    }
    return this.forwardsClosed(streamId);
  }

  private onClientWindowUpdate(streamId: number, increment: number): boolean {
    if (streamId === 0) {
      if (increment === 0) {
        this.connectionError(ErrorCode.ProtocolError, 'WINDOW_UPDATE of 0');
        return false;
      }
      this.connectionRecvWindow += increment;
      if (this.connectionRecvWindow > MAX_WINDOW_SIZE) {
        this.connectionError(ErrorCode.FlowControlError, 'connection window overflow');
        return false;
      }
      return this.upstream !== null;
    }
    if (this.isIdle(streamId)) {
      this.connectionError(ErrorCode.ProtocolError, `WINDOW_UPDATE on idle stream ${streamId}`);
      return false;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) return this.forwardsClosed(streamId);
    if (increment === 0) {
      this.streamError(stream, ErrorCode.ProtocolError);
      return false;
    }
    stream.recvWindow += increment;
    if (stream.recvWindow > MAX_WINDOW_SIZE) {
      this.streamError(stream, ErrorCode.FlowControlError);
      return false;
    }
    return true;
  }

  // ---------------------------------------------------------------- upstream → client

  private readonly upstreamSink: FrameSink = {
    onFrameHeader: (type, flags, streamId, length) =>
      this.onUpstreamFrameHeader(type, flags, streamId, length),
    onFrame: (type, flags, streamId, buf, at, end) =>
      this.onUpstreamFrame(type, flags, streamId, buf, at, end),
  };

  private onUpstreamFrameHeader(
    type: number,
    flags: number,
    streamId: number,
    length: number,
  ): Mode {
    this.drainPendingToClient();
    this.events.settle(this.upstreamReader.lastByte);
    if (!this.upstreamSettingsSeen && (type !== FrameType.Settings || flags & Flag.Ack))
      return this.upstreamProtocolError('first frame is not SETTINGS');
    if (this.upstreamBlock.active && type !== FrameType.Continuation)
      return this.upstreamProtocolError('frame inside a header block');
    switch (type) {
      case FrameType.Data: {
        this.connectionRecvWindow -= length;
        const stream = this.streams.get(streamId);
        if (stream !== undefined) stream.recvWindow -= length;
        if (this.closedAtClient.size > 0 && this.closedAtClient.has(streamId)) {
          // The client was told the stream is over: what still comes is dropped.
          if (flags & Flag.EndStream) this.closedAtClient.delete(streamId);
          this.returnUpstreamCredit(length);
          return Mode.Skip;
        }
        if (stream?.jsonEvents) this.events.dataFrame(stream, length, (flags & Flag.Padded) !== 0);
        if (stream !== undefined && flags & Flag.EndStream) {
          stream.upstreamEnded = true;
          this.recordResponse(stream);
          this.maybeClose(stream);
        }
        return Mode.Pass;
      }
      case FrameType.Headers: {
        const block = this.upstreamBlock;
        block.begin(streamId, (flags & Flag.EndStream) !== 0);
        block.held =
          this.closedAtClient.size > 0 && this.closedAtClient.get(streamId) === ClosedBy.Ended;
        return block.held ? Mode.Hold : Mode.PassAndInspect;
      }
      case FrameType.PushPromise: {
        const block = this.upstreamBlock;
        block.begin(streamId, false);
        block.promise = true;
        return Mode.PassAndInspect;
      }
      case FrameType.Continuation: {
        const block = this.upstreamBlock;
        if (!block.active || block.streamId !== streamId)
          return this.upstreamProtocolError('CONTINUATION out of a header block');
        return block.held ? Mode.Hold : Mode.PassAndInspect;
      }
      case FrameType.RstStream:
      case FrameType.Settings:
      case FrameType.Goaway:
      case FrameType.WindowUpdate:
        return Mode.Hold;
      default:
        return Mode.Pass;
    }
  }

  /** A held or inspected upstream frame is complete; returns whether a held one goes on as it is. */
  private onUpstreamFrame(
    type: number,
    flags: number,
    streamId: number,
    buf: Buffer,
    at: number,
    end: number,
  ): boolean {
    switch (type) {
      case FrameType.Headers:
      case FrameType.PushPromise:
      case FrameType.Continuation:
        this.onUpstreamHeaderFragment(type, flags, buf, at, end);
        return false;
      case FrameType.Settings:
        this.onUpstreamSettings(flags, buf, at, end);
        return false;
      case FrameType.RstStream: {
        const stream = this.streams.get(streamId);
        if (stream !== undefined) this.closeStream(stream);
        // A stream the relay already closed at the client: the client has its answer.
        return !this.closedAtClient.delete(streamId);
      }
      case FrameType.Goaway:
        this.onUpstreamGoaway(buf.readUInt32BE(at + FRAME_HEADER_LENGTH) & 0x7fff_ffff);
        return true;
      case FrameType.WindowUpdate: {
        const increment = buf.readUInt32BE(at + FRAME_HEADER_LENGTH) & 0x7fff_ffff;
        if (streamId === 0) this.connectionSendWindow += increment;
        else {
          const stream = this.streams.get(streamId);
          if (stream !== undefined) stream.sendWindow += increment;
        }
        return true;
      }
      default:
        return false;
    }
  }

  private onUpstreamHeaderFragment(
    type: number,
    flags: number,
    buf: Buffer,
    at: number,
    end: number,
  ): void {
    const block = this.upstreamBlock;
    let start = at + FRAME_HEADER_LENGTH;
    if (type !== FrameType.Continuation) {
      const skip = type === FrameType.PushPromise ? 4 : flags & Flag.Priority ? 5 : 0;
      start = fragmentStart(buf, at, end, flags, skip);
      if (start < 0) {
        this.upstreamProtocolError('header frame padding');
        return;
      }
      end -= padLength(buf, at, flags);
      if (type === FrameType.PushPromise) {
        const promised = buf.readUInt32BE(start - 4) & 0x7fff_ffff;
        this.lastPromisedStreamId = Math.max(this.lastPromisedStreamId, promised);
      }
    }
    block.add(buf, start, end);
    if (block.length > MAX_RESPONSE_BLOCK) {
      this.upstreamProtocolError('response header block too large');
      return;
    }
    if (flags & Flag.EndHeaders) {
      block.complete();
      this.onUpstreamHeaderBlock(block);
    }
  }

  private onUpstreamHeaderBlock(block: HeaderBlock): void {
    let status: number;
    try {
      status = this.statusReader.read(block.bytes, block.start, block.end);
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      this.upstreamProtocolError(`response header block: ${err.message}`);
      return;
    }
    if (block.promise) return;
    const stream = this.streams.get(block.streamId);
    if (block.held) {
      // Its stream was ended at the client: the block cannot be relayed, and may only be
      // dropped if it left the client's table as it was.
      if (this.statusReader.changedTable) {
        this.options.log.debug(
          { connection: this.connection.id, stream: block.streamId },
          'closing: a header block for a stream ended at the client changed the HPACK table',
        );
        this.destroy();
        return;
      }
      if (block.endStream) this.closedAtClient.delete(block.streamId);
      return;
    }
    if (stream === undefined) return;
    if (status !== 0) stream.headersSent = true;
    if (status >= 200) {
      stream.status = status;
      stream.jsonEvents = stream.watch && status === 200 && this.statusReader.jsonContent;
    }
    if (block.endStream) {
      stream.upstreamEnded = true;
      this.recordResponse(stream);
      this.maybeClose(stream);
    }
  }

  private onUpstreamSettings(flags: number, buf: Buffer, at: number, end: number): void {
    if (flags & Flag.Ack) {
      const change = this.settingsToUpstream.shift();
      if (change !== undefined) {
        if (change.headerTableSize !== undefined)
          this.statusReader.setAllowedTableSize(change.headerTableSize);
        if (change.initialWindowSize !== undefined) {
          const delta = change.initialWindowSize - this.clientInitialWindow;
          this.clientInitialWindow = change.initialWindowSize;
          for (const stream of this.streams.values()) stream.recvWindow += delta;
        }
      }
      this.toClient.pass(buf, at, end);
      return;
    }
    const payload = buf.subarray(at + FRAME_HEADER_LENGTH, end);
    const first = !this.upstreamSettingsSeen;
    this.upstreamSettingsSeen = true;
    this.settingsToClient.push(settingsChange(payload));
    this.updateClientFrameLimit();
    const rewritten = this.settingsForClient(payload, first);
    if (rewritten === null) this.toClient.pass(buf, at, end);
    else this.toClient.push(rewritten);
    if (first) {
      this.clientStarted = true;
      this.drainPendingToClient();
    }
  }

  /**
   * The upstream's SETTINGS as the client sees them: the stream limit lowered to ours (and
   * stated in the first SETTINGS when the upstream leaves it unlimited), likewise the header
   * list size, and no extended CONNECT (not relayed). Null when nothing changes.
   */
  private settingsForClient(payload: Buffer, first: boolean): Buffer | null {
    const { limits } = this.options;
    const entries: Array<[number, number]> = [];
    let changed = false;
    let streamsSet = false;
    let listSet = false;
    for (let i = 0; i + 6 <= payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      let value = payload.readUInt32BE(i + 2);
      if (id === Setting.EnableConnectProtocol) {
        changed = true;
        continue;
      }
      if (id === Setting.MaxConcurrentStreams) {
        streamsSet = true;
        if (value > limits.h2MaxConcurrentStreams) {
          value = limits.h2MaxConcurrentStreams;
          changed = true;
        }
      } else if (id === Setting.MaxHeaderListSize) {
        listSet = true;
        if (value > limits.maxHeaderBytes) {
          value = limits.maxHeaderBytes;
          changed = true;
        }
      }
      entries.push([id, value]);
    }
    if (first && !streamsSet) {
      entries.push([Setting.MaxConcurrentStreams, limits.h2MaxConcurrentStreams]);
      changed = true;
    }
    if (first && !listSet) {
      entries.push([Setting.MaxHeaderListSize, limits.maxHeaderBytes]);
      changed = true;
    }
    return changed ? settingsFrame(entries) : null;
  }

  private onUpstreamGoaway(lastStreamId: number): void {
    this.goingAway = true;
    this.goawaySent = true;
    // Streams above lastStreamId were not processed: the client retries them elsewhere.
    for (const stream of [...this.streams.values()])
      if (stream.id > lastStreamId) this.closeStream(stream);
    this.finishIfIdle();
  }
}
