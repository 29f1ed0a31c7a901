/**
 * The client's side of the relay: its frames on their way upstream, after the guard's checks
 * — byte for byte, except request header blocks, which are decoded, checked as nghttp2 checked
 * them and rewritten — and the answers the relay gives the client's streams itself.
 */
import type { Buffer } from 'node:buffer';
import type { Limits } from '../../config/config.js';
import type { Output } from '../output.js';
import { badRequest, type StatusResponse, statusResponse } from '../status.js';
import { isStreamingRequest, isWatchRequest } from '../streaming.js';
import { Added, fragmentStart, HeaderBlock, padLength } from './block.js';
import type { FlowWindows } from './flow.js';
import {
  ErrorCode,
  endStreamFrame,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  pingFrame,
  rstStreamFrame,
  SETTINGS_ACK,
  type SettingsChange,
  settingsError,
  windowUpdateFrame,
} from './frames.js';
import { ClientFrameGuard } from './guard.js';
import { HpackDecoder } from './hpack.js';
import { type FrameSink, frameFlags, frameStreamId, frameType, Mode, modesByType } from './io.js';
import type { RelayParts } from './parts.js';
import { checkRequest, checkTrailers } from './request.js';
import { RequestRewriter } from './rewrite.js';
import type { SettingsMirror } from './settings.js';
import { EndedAtClient, Stream, type StreamTable } from './streams.js';
import { ownAnswer } from './synthesize.js';

/**
 * The client frames held whatever they hold; a type neither decided frame by frame nor held is
 * unknown: ignored (RFC 9113 5.5), and not relayed.
 */
const CLIENT_FRAME_MODES = modesByType(
  [
    FrameType.Continuation,
    FrameType.Priority,
    FrameType.RstStream,
    FrameType.Settings,
    FrameType.Ping,
    FrameType.WindowUpdate,
  ],
  Mode.Skip,
);

const CONNECT_REFUSED = badRequest(
  'upgrades (exec, attach, port-forward) must use HTTP/1.1; CONNECT over HTTP/2 is not supported',
);

const TOO_MANY_FIELDS = statusResponse(
  431,
  'BadRequest',
  'kube-crl-proxy: the request header list is over --max-header-bytes or --max-header-count',
);

/** What the client's side asks of the relay that holds both connections. */
export interface ClientSideHost {
  /** Whether frames may go upstream (there is an upstream connection). */
  readonly upstreamAttached: boolean;
  /** The answer to every request when no upstream connection could be had, else null. */
  readonly unavailable: StatusResponse | null;
  /** Whether new streams are taken (no GOAWAY either way yet). */
  readonly acceptsStreams: boolean;
  injectToClient(frame: Buffer): void;
  injectToUpstream(frame: Buffer): void;
  /** A connection error caused by the client: GOAWAY with `code`, both connections closed. */
  connectionError(code: number, reason: string): Mode;
  /** No new stream on this connection: GOAWAY to the client, once. */
  goAway(): void;
  /** Whether a PING ACK's payload (`buf[at, at + 8)`) answers the relay's own ping. */
  answersOwnPing(buf: Buffer, at: number): boolean;
}

export class ClientSide implements FrameSink {
  private readonly guard: ClientFrameGuard;
  private readonly block = new HeaderBlock();
  private readonly decoder = new HpackDecoder();
  private readonly rewriter: RequestRewriter;
  private readonly limits: Limits;

  private readonly streams: StreamTable;
  private readonly flow: FlowWindows;
  private readonly settings: SettingsMirror;

  constructor(
    private readonly relay: ClientSideHost,
    { streams, flow, settings, connection, options }: RelayParts,
    /** Where the client's frames go: the upstream's output. */
    private readonly toUpstream: Output,
  ) {
    this.streams = streams;
    this.flow = flow;
    this.settings = settings;
    this.limits = options.limits;
    this.guard = new ClientFrameGuard(streams, settings);
    this.rewriter = new RequestRewriter(connection, options.rules);
  }

  /** The client's connection preface is complete (its first SETTINGS went upstream). */
  get acceptsOwnFrames(): boolean {
    return this.settings.clientStarted;
  }

  onFrameHeader(
    type: number,
    flags: number,
    streamId: number,
    length: number,
    padLength: number,
  ): Mode {
    const relay = this.relay;
    const error = this.guard.check(type, flags, streamId, length, padLength);
    if (error !== ErrorCode.NoError) return relay.connectionError(error, this.guard.reason);
    switch (type) {
      case FrameType.Data:
        return this.onDataHeader(flags, streamId, length, padLength);
      case FrameType.Headers:
        this.block.begin(streamId, (flags & Flag.EndStream) !== 0);
        return Mode.Hold;
      case FrameType.Goaway:
        return relay.upstreamAttached ? Mode.Pass : Mode.Skip;
      default:
        return CLIENT_FRAME_MODES[type] as Mode;
    }
  }

  /** A held client frame is complete; returns whether it goes upstream as it is. */
  onFrame(buf: Buffer, at: number, end: number): boolean {
    const streamId = frameStreamId(buf, at);
    switch (frameType(buf, at)) {
      case FrameType.Headers:
      case FrameType.Continuation:
        this.onHeaderFragment(buf, at, end);
        return false;
      case FrameType.Settings:
        return this.onSettings(frameFlags(buf, at), buf.subarray(at + FRAME_HEADER_LENGTH, end));
      case FrameType.Ping:
        return this.onPing(frameFlags(buf, at), buf, at + FRAME_HEADER_LENGTH);
      case FrameType.RstStream:
        return this.onReset(streamId);
      case FrameType.WindowUpdate:
        return this.onWindowUpdate(
          streamId,
          buf.readUInt32BE(at + FRAME_HEADER_LENGTH) & 0x7fff_ffff,
        );
      case FrameType.Priority:
        return this.relay.upstreamAttached && this.streams.handlerOfClosed(streamId) !== 'relay';
      default:
        return false;
    }
  }

  /**
   * Shutdown: watches and `logs -f` that have their status end as complete responses, those
   * still waiting for it are reset; upstream, both are cancelled.
   */
  endStreaming(): void {
    const { relay, streams } = this;
    for (const stream of streams.list()) {
      if (!stream.streaming || streams.howEndedAtClient(stream.id) !== undefined) continue;
      if (stream.status > 0) {
        relay.injectToClient(endStreamFrame(stream.id));
        streams.endAtClient(stream.id, EndedAtClient.EndStream);
      } else {
        relay.injectToClient(rstStreamFrame(stream.id, ErrorCode.Cancel));
        streams.endAtClient(stream.id, EndedAtClient.Reset);
      }
      relay.injectToUpstream(rstStreamFrame(stream.id, ErrorCode.Cancel));
      streams.close(stream);
    }
  }

  private onDataHeader(flags: number, streamId: number, length: number, padLength: number): Mode {
    const { relay, streams, flow } = this;
    if (!flow.clientSent(length))
      return relay.connectionError(ErrorCode.FlowControlError, 'connection window exceeded');
    const stream = streams.get(streamId);
    if (stream === undefined) {
      if (streams.isIdle(streamId))
        return relay.connectionError(ErrorCode.ProtocolError, `DATA on idle stream ${streamId}`);
      if (this.forwardsClosed(streamId)) return Mode.Pass;
      this.returnCredit(length);
      return Mode.Skip;
    }
    const endStream = (flags & Flag.EndStream) !== 0;
    let error: number = ErrorCode.NoError;
    if (stream.clientEnded) error = ErrorCode.StreamClosed;
    else if (!flow.clientSentOn(stream, length)) error = ErrorCode.FlowControlError;
    else {
      stream.bodyReceived += flags & Flag.Padded ? length - 1 - padLength : length;
      const declared = stream.contentLength;
      if (
        declared >= 0 &&
        (stream.bodyReceived > declared || (endStream && stream.bodyReceived !== declared))
      )
        error = ErrorCode.ProtocolError;
    }
    if (error !== ErrorCode.NoError) {
      this.streamError(stream, error);
      this.returnCredit(length);
      return Mode.Skip;
    }
    if (endStream) {
      stream.clientEnded = true;
      streams.closeIfEnded(stream);
    }
    return Mode.Pass;
  }

  /** Frames on a closed stream go upstream when the upstream saw it (it answers them). */
  private forwardsClosed(streamId: number): boolean {
    return this.relay.upstreamAttached && this.streams.closedWentUpstream(streamId);
  }

  /** DATA the client sent that goes nowhere still counts against its connection window. */
  private returnCredit(length: number): void {
    if (length === 0) return;
    this.flow.returnToClient(length);
    this.relay.injectToClient(windowUpdateFrame(0, length));
  }

  /** A stream error caused by the client: reset at the client, cancelled upstream. */
  private streamError(stream: Stream, code: number): void {
    const { relay, streams } = this;
    relay.injectToClient(rstStreamFrame(stream.id, code));
    if (streams.howEndedAtClient(stream.id) === undefined) {
      relay.injectToUpstream(rstStreamFrame(stream.id, ErrorCode.Cancel));
      streams.endAtClient(stream.id, EndedAtClient.Reset);
    }
    streams.close(stream);
  }

  private onHeaderFragment(buf: Buffer, at: number, end: number): void {
    const { block } = this;
    const flags = frameFlags(buf, at);
    let start = at + FRAME_HEADER_LENGTH;
    if (frameType(buf, at) === FrameType.Headers) {
      start = fragmentStart(buf, at, end, flags, flags & Flag.Priority ? 5 : 0);
      if (start < 0) {
        this.relay.connectionError(ErrorCode.ProtocolError, 'HEADERS padding');
        return;
      }
      end -= padLength(buf, at, flags);
      if (flags & Flag.Priority)
        block.selfDependent = (buf.readUInt32BE(start - 5) & 0x7fff_ffff) === block.streamId;
    }
    const added = block.addFragment(buf, start, end, flags, this.limits.maxHeaderBytes);
    if (added === Added.TooLarge)
      this.relay.connectionError(ErrorCode.EnhanceYourCalm, 'header block too large');
    else if (added === Added.Complete) this.onHeaderBlock(block);
  }

  private onHeaderBlock(block: HeaderBlock): void {
    const { relay, streams, limits, decoder } = this;
    decoder.decode(
      block.bytes,
      block.start,
      block.end,
      limits.maxHeaderBytes,
      limits.maxHeaderCount,
    );
    const streamId = block.streamId;
    const existing = streams.get(streamId);
    if (existing !== undefined) {
      this.onTrailers(existing, block);
      return;
    }
    if (streamId <= streams.lastOpenedByClient) {
      // A late block of a stream closed a moment ago is decoded (above) and ignored.
      if (streams.handlerOfClosed(streamId) !== 'forgotten') return;
      relay.connectionError(ErrorCode.ProtocolError, `HEADERS on closed stream ${streamId}`);
      return;
    }
    streams.clientOpened(streamId);
    if (decoder.overLimit) {
      this.answerNew(block, 'OTHER', TOO_MANY_FIELDS, -1);
      return;
    }
    const head = block.selfDependent ? null : checkRequest(decoder.fields);
    if (head === null || (block.endStream && head.contentLength > 0)) {
      this.refuse(streamId, ErrorCode.ProtocolError);
      return;
    }
    if (head.method === 'CONNECT') {
      // exec, attach and port-forward are HTTP/1.1 upgrades; kubectl opens them on their own
      // HTTP/1.1 connections. A tunnel over HTTP/2 (RFC 8441) is not offered.
      this.answerNew(block, head.method, CONNECT_REFUSED, -1);
      return;
    }
    if (relay.unavailable !== null) {
      const started = isStreamingRequest(head.path) ? -1 : performance.now();
      this.answerNew(block, head.method, relay.unavailable, started);
      // Nothing will work on this connection: the client should open a new one.
      relay.goAway();
      return;
    }
    if (!relay.acceptsStreams || streams.size >= limits.h2MaxConcurrentStreams) {
      this.refuse(streamId, ErrorCode.RefusedStream);
      return;
    }
    const { flow } = this;
    const stream = new Stream(streamId, flow.newStreamClientMaySend, flow.newStreamUpstreamMaySend);
    stream.method = head.method;
    stream.streaming = isStreamingRequest(head.path);
    stream.watch = stream.streaming && isWatchRequest(head.path);
    stream.startedAt = performance.now();
    stream.contentLength = head.contentLength;
    stream.clientEnded = block.endStream;
    streams.forward(stream);
    this.toUpstream.push(this.rewriter.head(decoder.fields, streamId, block.endStream));
  }

  /** Request trailers: checked, identity and hop-by-hop fields removed, nothing added. */
  private onTrailers(stream: Stream, block: HeaderBlock): void {
    const decoder = this.decoder;
    if (stream.clientEnded) {
      this.streamError(stream, ErrorCode.StreamClosed);
      return;
    }
    const declared =
      block.endStream && !decoder.overLimit
        ? checkTrailers(decoder.fields, stream.contentLength)
        : null;
    if (declared === null || (declared >= 0 && declared !== stream.bodyReceived)) {
      this.streamError(stream, ErrorCode.ProtocolError);
      return;
    }
    stream.clientEnded = true;
    this.toUpstream.push(this.rewriter.trailers(decoder.fields, stream.id));
    this.streams.closeIfEnded(stream);
  }

  /** A new stream the relay resets before it goes anywhere. */
  private refuse(streamId: number, code: number): void {
    this.relay.injectToClient(rstStreamFrame(streamId, code));
    this.streams.keptFromUpstream(streamId);
  }

  /** A new stream the relay answers itself (and then forgets). */
  private answerNew(
    block: HeaderBlock,
    method: string,
    status: StatusResponse,
    started: number,
  ): void {
    this.relay.injectToClient(ownAnswer(block.streamId, method, status, started));
    if (!block.endStream)
      this.relay.injectToClient(rstStreamFrame(block.streamId, ErrorCode.NoError));
    this.streams.keptFromUpstream(block.streamId);
  }

  private onSettings(flags: number, payload: Buffer): boolean {
    const relay = this.relay;
    if (flags & Flag.Ack) {
      const change = this.settings.clientAcknowledged();
      if (change === undefined) {
        relay.connectionError(ErrorCode.ProtocolError, 'SETTINGS ACK without SETTINGS');
        return false;
      }
      this.applyUpstreamSettings(change);
      return relay.upstreamAttached;
    }
    const error = settingsError(payload);
    if (error !== null) {
      relay.connectionError(error, 'invalid SETTINGS value');
      return false;
    }
    if (!relay.upstreamAttached) {
      relay.injectToClient(SETTINGS_ACK);
      return false;
    }
    this.settings.fromClient(payload);
    return true;
  }

  /** The client acknowledged SETTINGS the upstream (or the relay) sent: now in force. */
  private applyUpstreamSettings(change: SettingsChange): void {
    if (change.headerTableSize !== undefined) {
      this.decoder.setAllowedTableSize(change.headerTableSize);
      this.rewriter.setTableLimit(change.headerTableSize);
    }
    if (change.initialWindowSize !== undefined)
      this.flow.setUpstreamInitialWindow(change.initialWindowSize, this.streams.openStreams());
  }

  private onPing(flags: number, buf: Buffer, payload: number): boolean {
    const relay = this.relay;
    if (flags & Flag.Ack) return !relay.answersOwnPing(buf, payload) && relay.upstreamAttached;
    if (relay.upstreamAttached) return true;
    relay.injectToClient(pingFrame(buf.subarray(payload, payload + 8), true));
    return false;
  }

  private onReset(streamId: number): boolean {
    const stream = this.streams.get(streamId);
    if (stream !== undefined) {
      this.streams.close(stream);
      // The code travels as it is (CANCEL stays CANCEL).
      return true;
    }
    return this.forwardsClosed(streamId);
  }

  private onWindowUpdate(streamId: number, increment: number): boolean {
    const { relay, streams, flow } = this;
    if (streamId === 0) {
      if (increment === 0) {
        relay.connectionError(ErrorCode.ProtocolError, 'WINDOW_UPDATE of 0');
        return false;
      }
      if (!flow.clientGranted(increment)) {
        relay.connectionError(ErrorCode.FlowControlError, 'connection window overflow');
        return false;
      }
      return relay.upstreamAttached;
    }
    if (streams.isIdle(streamId)) {
      relay.connectionError(ErrorCode.ProtocolError, `WINDOW_UPDATE on idle stream ${streamId}`);
      return false;
    }
    const stream = streams.get(streamId);
    if (stream === undefined) return this.forwardsClosed(streamId);
    if (increment === 0) {
      this.streamError(stream, ErrorCode.ProtocolError);
      return false;
    }
    if (!flow.clientGrantedOn(stream, increment)) {
      this.streamError(stream, ErrorCode.FlowControlError);
      return false;
    }
    return true;
  }
}
