/**
 * The upstream's side of the relay: its frames on their way to the client, byte for byte.
 * Response header blocks are only read, for `:status` (the metrics), whether a watch's events
 * are JSON (a cut's ERROR event, cut.ts) and to keep the HPACK table in step; SETTINGS reach
 * the client lowered to the proxy's limits.
 */
import type { Buffer } from 'node:buffer';
import type { Logger } from '../../log.js';
import type { ClientConnection } from '../connection.js';
import type { Output } from '../output.js';
import { recordRequest } from '../record.js';
import { upstreamUnavailable } from '../status.js';
import { Added, fragmentStart, HeaderBlock, padLength } from './block.js';
import { EventBoundaries } from './cut.js';
import type { FlowWindows } from './flow.js';
import {
  ErrorCode,
  endStreamFrame,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  rstStreamFrame,
  windowUpdateFrame,
} from './frames.js';
import { HpackError, ResponseStatusReader } from './hpack.js';
import { type FrameSink, frameFlags, frameStreamId, frameType, Mode, modesByType } from './io.js';
import type { RelayParts } from './parts.js';
import type { SettingsMirror } from './settings.js';
import { EndedAtClient, type Stream, type StreamTable } from './streams.js';
import { ownAnswer } from './synthesize.js';

/** A response header block larger than this is not the apiserver's. */
/** The upstream frames held whatever they hold; the types not decided frame by frame pass. */
const UPSTREAM_FRAME_MODES = modesByType(
  [FrameType.RstStream, FrameType.Settings, FrameType.Goaway, FrameType.WindowUpdate],
  Mode.Pass,
);

const MAX_RESPONSE_BLOCK = 1 << 20;

/** What the upstream's side asks of the relay that holds both connections. */
export interface UpstreamSideHost {
  injectToClient(frame: Buffer): void;
  injectToUpstream(frame: Buffer): void;
  /** The upstream broke the protocol: both connections are closed. */
  upstreamProtocolError(reason: string): Mode;
  /** Both connections are closed now. */
  destroy(): void;
  /** The upstream's GOAWAY is on its way to the client: no new stream. */
  upstreamGoingAway(): void;
  /** The last payload octet read from the upstream (io.ts, FrameReader.lastByte). */
  readonly upstreamLastByte: number;
}

export class UpstreamSide implements FrameSink {
  private readonly block = new HeaderBlock();
  private readonly statusReader = new ResponseStatusReader();
  private readonly events = new EventBoundaries();
  private started = false;

  private readonly streams: StreamTable;
  private readonly flow: FlowWindows;
  private readonly settings: SettingsMirror;
  private readonly connection: ClientConnection;
  private readonly log: Logger;

  constructor(
    private readonly relay: UpstreamSideHost,
    parts: RelayParts,
    /** Where the upstream's frames go: the client's output. */
    private readonly toClient: Output,
  ) {
    this.streams = parts.streams;
    this.flow = parts.flow;
    this.settings = parts.settings;
    this.connection = parts.connection;
    this.log = parts.options.log;
  }

  /** Whether the client has had a server preface: the upstream's SETTINGS or the relay's own. */
  get clientStarted(): boolean {
    return this.started;
  }

  /** The relay is the server: its own SETTINGS (none changed) are the server preface. */
  sendOwnPreface(): void {
    this.toClient.push(this.settings.ownSettings());
    this.started = true;
  }

  get acceptsOwnFrames(): boolean {
    return this.started && !this.block.active;
  }

  /** Whether each JSON watch's response so far ends with a whole event is up to date. */
  settleEvents(): void {
    this.events.settle(this.relay.upstreamLastByte);
  }

  /**
   * The upstream is gone: each stream it left is answered (503), ended (a watch that got its
   * status) or reset at the client.
   */
  upstreamGone(): void {
    const relay = this.relay;
    for (const stream of this.streams.takeAll()) {
      if (this.streams.howEndedAtClient(stream.id) !== undefined) continue;
      if (!stream.responseStarted) {
        const status = upstreamUnavailable('the upstream connection closed');
        const started = stream.streaming ? -1 : stream.startedAt;
        relay.injectToClient(ownAnswer(stream.id, stream.method, status, started));
        if (!stream.clientEnded) relay.injectToClient(rstStreamFrame(stream.id, ErrorCode.NoError));
      } else if (stream.upstreamEnded) {
        // The response is complete; the client need not finish its request.
        relay.injectToClient(rstStreamFrame(stream.id, ErrorCode.NoError));
      } else if (stream.streaming && stream.status > 0) {
        relay.injectToClient(endStreamFrame(stream.id));
      } else {
        relay.injectToClient(rstStreamFrame(stream.id, ErrorCode.InternalError));
      }
    }
  }

  onFrameHeader(type: number, flags: number, streamId: number, length: number): Mode {
    const { relay, streams } = this;
    this.settleEvents();
    if (!this.settings.upstreamStarted && (type !== FrameType.Settings || flags & Flag.Ack))
      return relay.upstreamProtocolError('first frame is not SETTINGS');
    const block = this.block;
    if (block.active && type !== FrameType.Continuation)
      return relay.upstreamProtocolError('frame inside a header block');
    switch (type) {
      case FrameType.Data: {
        const stream = streams.get(streamId);
        this.flow.upstreamSent(stream, length);
        if (streams.howEndedAtClient(streamId) !== undefined) {
          // The client was told the stream is over: what still comes is dropped.
          if (flags & Flag.EndStream) streams.upstreamDoneWith(streamId);
          this.returnCredit(length);
          return Mode.Skip;
        }
        if (stream?.jsonEvents) this.events.dataFrame(stream, length, (flags & Flag.Padded) !== 0);
        if (stream !== undefined && flags & Flag.EndStream) this.responseEnded(stream);
        return Mode.Pass;
      }
      case FrameType.Headers:
        block.begin(streamId, (flags & Flag.EndStream) !== 0);
        block.held = streams.howEndedAtClient(streamId) === EndedAtClient.EndStream;
        return block.held ? Mode.Hold : Mode.PassAndInspect;
      case FrameType.PushPromise:
        block.begin(streamId, false);
        block.promise = true;
        return Mode.PassAndInspect;
      case FrameType.Continuation:
        if (!block.active || block.streamId !== streamId)
          return relay.upstreamProtocolError('CONTINUATION out of a header block');
        return block.held ? Mode.Hold : Mode.PassAndInspect;
      default:
        return UPSTREAM_FRAME_MODES[type] as Mode;
    }
  }

  /** A held or inspected frame is complete; returns whether a held one goes on as it is. */
  onFrame(buf: Buffer, at: number, end: number): boolean {
    switch (frameType(buf, at)) {
      case FrameType.Settings:
        this.onSettings(frameFlags(buf, at), buf, at, end);
        return false;
      case FrameType.Headers:
      case FrameType.PushPromise:
      case FrameType.Continuation:
        this.onHeaderFragment(buf, at, end);
        return false;
      case FrameType.RstStream: {
        const streamId = frameStreamId(buf, at);
        const stream = this.streams.get(streamId);
        if (stream !== undefined) this.streams.close(stream);
        // A stream the relay already closed at the client: the client has its answer.
        return !this.streams.upstreamDoneWith(streamId);
      }
      case FrameType.Goaway:
        this.onGoaway(buf.readUInt32BE(at + FRAME_HEADER_LENGTH) & 0x7fff_ffff);
        return true;
      case FrameType.WindowUpdate: {
        const streamId = frameStreamId(buf, at);
        const increment = buf.readUInt32BE(at + FRAME_HEADER_LENGTH) & 0x7fff_ffff;
        if (streamId === 0) this.flow.upstreamGranted(increment);
        else this.flow.upstreamGrantedOn(this.streams.get(streamId), increment);
        return true;
      }
      default:
        return false;
    }
  }

  /** DATA the upstream sent that the client will never see: give the window back. */
  private returnCredit(length: number): void {
    if (length === 0) return;
    this.flow.returnToUpstream(length);
    this.relay.injectToUpstream(windowUpdateFrame(0, length));
  }

  private responseEnded(stream: Stream): void {
    stream.upstreamEnded = true;
    if (stream.status !== 0)
      recordRequest('h2', stream.method, stream.status, stream.streaming ? -1 : stream.startedAt);
    this.streams.closeIfEnded(stream);
  }

  private onHeaderFragment(buf: Buffer, at: number, end: number): void {
    const type = frameType(buf, at);
    const flags = frameFlags(buf, at);
    const block = this.block;
    let start = at + FRAME_HEADER_LENGTH;
    if (type !== FrameType.Continuation) {
      const skip = type === FrameType.PushPromise ? 4 : flags & Flag.Priority ? 5 : 0;
      start = fragmentStart(buf, at, end, flags, skip);
      if (start < 0) {
        this.relay.upstreamProtocolError('header frame padding');
        return;
      }
      end -= padLength(buf, at, flags);
      if (type === FrameType.PushPromise)
        this.streams.promised(buf.readUInt32BE(start - 4) & 0x7fff_ffff);
    }
    const added = block.addFragment(buf, start, end, flags, MAX_RESPONSE_BLOCK);
    if (added === Added.TooLarge)
      this.relay.upstreamProtocolError('response header block too large');
    else if (added === Added.Complete) this.onHeaderBlock(block);
  }

  private onHeaderBlock(block: HeaderBlock): void {
    let status: number;
    try {
      status = this.statusReader.read(block.bytes, block.start, block.end);
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      this.relay.upstreamProtocolError(`response header block: ${err.message}`);
      return;
    }
    if (block.promise) return;
    if (block.held) {
      // Its stream was ended at the client: the block cannot be relayed, and may only be
      // dropped if it left the client's table as it was.
      if (this.statusReader.changedTable) {
        this.log.debug(
          { connection: this.connection.id, stream: block.streamId },
          'closing: a header block for a stream ended at the client changed the HPACK table',
        );
        this.relay.destroy();
        return;
      }
      if (block.endStream) this.streams.upstreamDoneWith(block.streamId);
      return;
    }
    const stream = this.streams.get(block.streamId);
    if (stream === undefined) return;
    if (status !== 0) stream.responseStarted = true;
    if (status >= 200) {
      stream.status = status;
      stream.jsonEvents = stream.watch && status === 200 && this.statusReader.jsonContent;
    }
    if (block.endStream) this.responseEnded(stream);
  }

  private onSettings(flags: number, buf: Buffer, at: number, end: number): void {
    if (flags & Flag.Ack) {
      const change = this.settings.upstreamAcknowledged();
      if (change?.headerTableSize !== undefined)
        this.statusReader.setAllowedTableSize(change.headerTableSize);
      if (change?.initialWindowSize !== undefined)
        this.flow.setClientInitialWindow(change.initialWindowSize, this.streams.openStreams());
      this.toClient.pass(buf, at, end);
      return;
    }
    const first = !this.settings.upstreamStarted;
    const rewritten = this.settings.fromUpstream(buf.subarray(at + FRAME_HEADER_LENGTH, end));
    if (rewritten === null) this.toClient.pass(buf, at, end);
    else this.toClient.push(rewritten);
    if (first) this.started = true;
  }

  private onGoaway(lastStreamId: number): void {
    this.relay.upstreamGoingAway();
    // Streams above lastStreamId were not processed: the client retries them elsewhere.
    for (const stream of this.streams.list())
      if (stream.id > lastStreamId) this.streams.close(stream);
  }
}
