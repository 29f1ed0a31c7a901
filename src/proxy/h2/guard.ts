/**
 * What a client may send, checked at each frame header before the relay looks further (the
 * part envoy keeps in ProtocolConstraints::trackInboundFrame): the first frame, frame sizes
 * and the streams frames may name (RFC 9113 3.4, 4.2, 6), header blocks not interleaved with
 * other frames (6.10), and floods. Every violation is a connection error. Before the frames,
 * the connection preface (3.4).
 */
import type { Buffer } from 'node:buffer';
import { ErrorCode, Flag, FrameType, PREFACE } from './frames.js';
import { TokenBucket } from './rate.js';

/** nghttp2's rapid-reset defaults (CVE-2023-44487): burst of client resets, then per second. */
const RESET_BURST = 1000;
const RESET_RATE = 33;
/** SETTINGS, PING, PRIORITY and empty frames: plenty for any client, not for a flood. */
const CONTROL_BURST = 1000;
const CONTROL_RATE = 100;
/** nghttp2's (Node's maxSettings) bound on entries in one SETTINGS frame. */
const MAX_SETTINGS_ENTRIES = 32;

/** The client's connection preface (RFC 9113 3.4), which may come split over reads. */
export class PrefaceCheck {
  /** Octets of the preface still to come. */
  private left = PREFACE.length;

  /** The octets of the preface at the start of `chunk`, or -1 when they are not the preface. */
  read(chunk: Buffer): number {
    if (this.left === 0) return 0;
    const n = Math.min(this.left, chunk.length);
    const offset = PREFACE.length - this.left;
    if (chunk.compare(PREFACE, offset, offset + n, 0, n) !== 0) return -1;
    this.left -= n;
    return n;
  }
}

/** Which streams are idle (RFC 9113 5.1): a frame on one is a connection error for most types. */
export interface IdleStreams {
  isIdle(streamId: number): boolean;
}

/** The largest frame the client may send now (SETTINGS_MAX_FRAME_SIZE, sent or in force). */
export interface FrameLimit {
  readonly clientFrameLimit: number;
}

export class ClientFrameGuard {
  /** Why the last frame was refused. */
  reason = '';
  private settingsSeen = false;
  /** The stream whose header block is open (0: none): only its CONTINUATION may come next. */
  private blockStreamId = 0;
  private readonly resets = new TokenBucket(RESET_BURST, RESET_RATE);
  private readonly controlFrames = new TokenBucket(CONTROL_BURST, CONTROL_RATE);

  constructor(
    private readonly streams: IdleStreams,
    private readonly frames: FrameLimit,
  ) {}

  /**
   * Checks the header of the client's next frame. `padLength` is a padded DATA frame's pad
   * length (-1 otherwise). Returns NO_ERROR (0) when the frame may be read on, else the code of
   * the connection error to answer, with `reason` set.
   */
  check(type: number, flags: number, streamId: number, length: number, padLength: number): number {
    if (!this.settingsSeen) {
      if (type !== FrameType.Settings || flags & Flag.Ack)
        return this.refuse(ErrorCode.ProtocolError, 'first frame is not SETTINGS');
      this.settingsSeen = true;
    }
    if (length > this.frames.clientFrameLimit)
      return this.refuse(ErrorCode.FrameSizeError, `frame of ${length} octets`);
    if (this.blockStreamId !== 0 && type !== FrameType.Continuation)
      return this.refuse(ErrorCode.ProtocolError, 'frame inside a header block');
    switch (type) {
      case FrameType.Data:
        return this.checkData(flags, streamId, length, padLength);
      case FrameType.Headers:
        if (streamId === 0 || (streamId & 1) === 0)
          return this.refuse(ErrorCode.ProtocolError, `HEADERS on stream ${streamId}`);
        if (length === 0 && !(flags & Flag.EndHeaders) && !this.controlFrames.take())
          return this.refuse(ErrorCode.EnhanceYourCalm, 'empty frame flood');
        if (!(flags & Flag.EndHeaders)) this.blockStreamId = streamId;
        return ErrorCode.NoError;
      case FrameType.Continuation:
        if (this.blockStreamId === 0 || this.blockStreamId !== streamId)
          return this.refuse(ErrorCode.ProtocolError, 'CONTINUATION out of a header block');
        if (length === 0 && !(flags & Flag.EndHeaders) && !this.controlFrames.take())
          return this.refuse(ErrorCode.EnhanceYourCalm, 'empty frame flood');
        if (flags & Flag.EndHeaders) this.blockStreamId = 0;
        return ErrorCode.NoError;
      case FrameType.Priority:
        if (streamId === 0) return this.refuse(ErrorCode.ProtocolError, 'PRIORITY on 0');
        if (length !== 5) return this.refuse(ErrorCode.FrameSizeError, 'PRIORITY size');
        if (!this.controlFrames.take())
          return this.refuse(ErrorCode.EnhanceYourCalm, 'PRIORITY flood');
        return ErrorCode.NoError;
      case FrameType.RstStream:
        if (length !== 4) return this.refuse(ErrorCode.FrameSizeError, 'RST_STREAM size');
        if (streamId === 0 || this.streams.isIdle(streamId))
          return this.refuse(ErrorCode.ProtocolError, `RST_STREAM on idle ${streamId}`);
        if (!this.resets.take())
          return this.refuse(ErrorCode.EnhanceYourCalm, 'stream reset flood (rapid reset)');
        return ErrorCode.NoError;
      case FrameType.Settings:
        return this.checkSettings(flags, streamId, length);
      case FrameType.PushPromise:
        return this.refuse(ErrorCode.ProtocolError, 'PUSH_PROMISE from a client');
      case FrameType.Ping:
        if (streamId !== 0) return this.refuse(ErrorCode.ProtocolError, 'PING stream');
        if (length !== 8) return this.refuse(ErrorCode.FrameSizeError, 'PING size');
        if (!(flags & Flag.Ack) && !this.controlFrames.take())
          return this.refuse(ErrorCode.EnhanceYourCalm, 'PING flood');
        return ErrorCode.NoError;
      case FrameType.Goaway:
        if (streamId !== 0) return this.refuse(ErrorCode.ProtocolError, 'GOAWAY stream');
        if (length < 8) return this.refuse(ErrorCode.FrameSizeError, 'GOAWAY size');
        return ErrorCode.NoError;
      case FrameType.WindowUpdate:
        if (length !== 4) return this.refuse(ErrorCode.FrameSizeError, 'WINDOW_UPDATE size');
        return ErrorCode.NoError;
      default:
        // Unknown frame types are ignored (RFC 9113 5.5), but not without bound.
        if (!this.controlFrames.take())
          return this.refuse(ErrorCode.EnhanceYourCalm, 'unknown frame flood');
        return ErrorCode.NoError;
    }
  }

  private checkData(flags: number, streamId: number, length: number, padLength: number): number {
    if (streamId === 0) return this.refuse(ErrorCode.ProtocolError, 'DATA on stream 0');
    if (flags & Flag.Padded && (length === 0 || padLength >= length))
      return this.refuse(ErrorCode.ProtocolError, 'DATA padding');
    if (length === 0 && !(flags & Flag.EndStream) && !this.controlFrames.take())
      return this.refuse(ErrorCode.EnhanceYourCalm, 'empty DATA flood');
    return ErrorCode.NoError;
  }

  private checkSettings(flags: number, streamId: number, length: number): number {
    if (streamId !== 0) return this.refuse(ErrorCode.ProtocolError, 'SETTINGS stream');
    if (flags & Flag.Ack) {
      if (length !== 0) return this.refuse(ErrorCode.FrameSizeError, 'SETTINGS ACK with a payload');
    } else {
      if (length % 6 !== 0) return this.refuse(ErrorCode.FrameSizeError, 'SETTINGS size');
      if (length > MAX_SETTINGS_ENTRIES * 6 || !this.controlFrames.take())
        return this.refuse(ErrorCode.EnhanceYourCalm, 'SETTINGS flood');
    }
    return ErrorCode.NoError;
  }

  private refuse(code: number, reason: string): number {
    this.reason = reason;
    return code;
  }
}
