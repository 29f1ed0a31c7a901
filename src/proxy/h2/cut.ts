/**
 * What a cut HTTP/2 connection tells its client (connection.ts, Cut): each open JSON watch
 * ends with an ERROR event carrying the Status, in DATA frames with END_STREAM, injected only
 * where the watch's response so far ends with a whole event and only within the client's
 * flow-control windows; then GOAWAY, whose debug data is the reason (Go's client prints it
 * with the error every other open stream gets). The relay decides when; this module holds
 * the parts that do not depend on its state.
 */
import { Buffer } from 'node:buffer';
import type { StatusResponse } from '../status.js';
import { watchErrorEvent } from '../streaming.js';
import { DEFAULT_MAX_FRAME_SIZE, dataFrames, ErrorCode, goawayFrame } from './frames.js';

const LF = 0x0a;
/** GOAWAY debug data is the reason up to this many octets (a frame any client takes). */
export const MAX_GOAWAY_DEBUG = 1024;

/** A stream as far as the cut needs it. */
export interface WatchStream {
  readonly id: number;
  /** What the client's stream window still takes. */
  recvWindow: number;
  /** A JSON watch whose 200 response is under way. */
  readonly jsonEvents: boolean;
  /** Its response so far ends with a whole event (its last DATA frame ended a line). */
  atEvent: boolean;
}

/**
 * Follows where JSON watch events end among the upstream's DATA frames, by each frame's last
 * payload octet (io.ts, FrameReader.lastByte): the apiserver's frames do not always end at an
 * event (it flushes when its queue is empty, and its write buffer fills mid-event), but every
 * event ends with a newline. No payload octet is looked at but the last.
 */
export class EventBoundaries {
  /** The JSON watch whose DATA frame is passing, until its last octet is known. */
  private passing: WatchStream | null = null;
  private padded = false;

  /** A DATA frame begins: of a JSON watch (`stream`, or null for any other stream). */
  dataFrame(stream: WatchStream | null, length: number, padded: boolean): void {
    if (stream === null || length === 0) return;
    stream.atEvent = false;
    this.passing = stream;
    this.padded = padded;
  }

  /**
   * The frame that was passing is complete (another began, or the reader is between frames);
   * `lastByte` is its last payload octet. A padded frame's last octet is padding: not
   * judged, the watch waits for its next frame.
   */
  settle(lastByte: number): void {
    const stream = this.passing;
    if (stream === null) return;
    this.passing = null;
    stream.atEvent = !this.padded && lastByte === LF;
  }
}

/** A cut under way: what every watch and the GOAWAY will carry. */
export class CutWords {
  readonly event: Buffer;
  readonly goaway: (lastStreamId: number) => Buffer;
  /** Watches that got their event, or were skipped for want of window. */
  readonly done = new Set<number>();
  /** Waiting for event boundaries is over: what is not at one gets no event. */
  expired = false;

  constructor(status: StatusResponse, reason: string) {
    this.event = watchErrorEvent(status);
    const debug = goawayDebug(reason);
    this.goaway = (lastStreamId) => goawayFrame(lastStreamId, ErrorCode.NoError, debug);
  }

  /**
   * The ERROR event ending `stream`, or null when the client's windows (the stream's and the
   * connection's `connectionWindow`) cannot take it: flow control is not broken to tell.
   */
  eventFor(stream: WatchStream, connectionWindow: number): Buffer | null {
    if (this.event.length > Math.min(stream.recvWindow, connectionWindow)) return null;
    return dataFrames(this.event, stream.id, true, DEFAULT_MAX_FRAME_SIZE);
  }
}

/** The reason as UTF-8, at most MAX_GOAWAY_DEBUG octets, never cut inside a character. */
export function goawayDebug(reason: string): Buffer {
  const bytes = Buffer.from(reason, 'utf8');
  if (bytes.length <= MAX_GOAWAY_DEBUG) return bytes;
  let end = MAX_GOAWAY_DEBUG;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}
