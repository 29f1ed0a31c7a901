/**
 * Header blocks as they arrive: HEADERS (or PUSH_PROMISE) then CONTINUATION frames, gathered
 * until END_HEADERS, with their padding and priority fields set aside.
 */
import { Buffer } from 'node:buffer';
import { Flag, FRAME_HEADER_LENGTH } from './frames.js';

const EMPTY = Buffer.alloc(0);

/** What adding a fragment did to a header block. */
export const Added = { More: 0, Complete: 1, TooLarge: 2 } as const;
export type Added = (typeof Added)[keyof typeof Added];

/**
 * A header block being gathered from HEADERS (or PUSH_PROMISE) and CONTINUATION frames; one per
 * direction, reused. A block in one frame (the usual case) is read where it lies.
 */
export class HeaderBlock {
  active = false;
  streamId = 0;
  endStream = false;
  /** Client: HEADERS declared a dependency on its own stream. */
  selfDependent = false;
  /** Upstream: the block is held (its stream was ended at the client by the relay). */
  held = false;
  /** Upstream: a PUSH_PROMISE block (decoded for the table only). */
  promise = false;
  length = 0;
  /** The block, once complete: `bytes[start, end)`. */
  bytes: Buffer = EMPTY;
  start = 0;
  end = 0;
  private readonly parts: Buffer[] = [];

  begin(streamId: number, endStream: boolean): void {
    this.active = true;
    this.streamId = streamId;
    this.endStream = endStream;
    this.selfDependent = false;
    this.held = false;
    this.promise = false;
    this.length = 0;
    this.parts.length = 0;
  }

  add(frame: Buffer, start: number, end: number): void {
    if (this.length === 0 && this.parts.length === 0) {
      this.bytes = frame;
      this.start = start;
      this.end = end;
    } else {
      if (this.parts.length === 0) this.parts.push(this.bytes.subarray(this.start, this.end));
      this.parts.push(frame.subarray(start, end));
    }
    this.length += end - start;
  }

  /**
   * Adds the fragment `frame[start, end)` of a frame with `flags`: at END_HEADERS the block is
   * complete, unless it has grown over `limit` octets.
   */
  addFragment(frame: Buffer, start: number, end: number, flags: number, limit: number): Added {
    this.add(frame, start, end);
    if (this.length > limit) return Added.TooLarge;
    if ((flags & Flag.EndHeaders) === 0) return Added.More;
    this.complete();
    return Added.Complete;
  }

  /** Ends the block: `bytes[start, end)` is all of it. */
  complete(): void {
    this.active = false;
    if (this.parts.length > 0) {
      this.bytes = Buffer.concat(this.parts, this.length);
      this.start = 0;
      this.end = this.length;
      this.parts.length = 0;
    } else if (this.length === 0) {
      this.bytes = EMPTY;
      this.start = 0;
      this.end = 0;
    }
  }
}

/**
 * Where the header block fragment of the HEADERS or PUSH_PROMISE frame `buf[at, end)` starts
 * (after the pad length and `skip` octets of priority or promised stream id), or -1 when the
 * padding does not fit. The fragment ends at `end - padLength(buf, at, flags)`.
 */
export function fragmentStart(
  buf: Buffer,
  at: number,
  end: number,
  flags: number,
  skip: number,
): number {
  let start = at + FRAME_HEADER_LENGTH;
  if (flags & Flag.Padded) {
    if (end === start) return -1;
    end -= buf[start] as number;
    start++;
  }
  start += skip;
  return start > end ? -1 : start;
}

export function padLength(buf: Buffer, at: number, flags: number): number {
  return flags & Flag.Padded ? (buf[at + FRAME_HEADER_LENGTH] as number) : 0;
}
