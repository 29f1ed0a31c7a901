/**
 * The relay's frame reader, one per direction: it walks the frames of incoming chunks, passing
 * most of them on as ranges of the chunk (without copying) to an Output (../output.ts), and
 * slips frames of the relay's own into that output between the frames it forwards.
 */
import { Buffer } from 'node:buffer';
import type { Output } from '../output.js';
import { Flag, FRAME_HEADER_LENGTH, FrameType } from './frames.js';

/** What happens to a frame's bytes. */
export const Mode = {
  /** Forwarded as they arrive (payload streamed, never held). */
  Pass: 0,
  /** Forwarded as they arrive, and a copy given to onFrame at the end (header blocks). */
  PassAndInspect: 1,
  /** Held until complete, then given to onFrame, which decides. */
  Hold: 2,
  /** Dropped. */
  Skip: 3,
} as const;
export type Mode = (typeof Mode)[keyof typeof Mode];

export interface FrameSink {
  /**
   * A frame begins. `pad` is the first payload octet of a padded DATA frame (its pad length), -1
   * otherwise. Returns what to do with the frame's bytes.
   */
  onFrameHeader(type: number, flags: number, id: number, length: number, pad: number): Mode;
  /**
   * A held or inspected frame is complete: `buf[at, end)` holds its 9-octet header and payload
   * (a range of the read chunk when it arrived in one piece; frameType and its siblings in
   * frames.ts read the header). For a held frame, returns whether it is to be forwarded as it is
   * (after anything the sink wrote to the same output).
   */
  onFrame(buf: Buffer, at: number, end: number): boolean;
  /**
   * Whether frames of the relay's own may go into the output, between frames: the connection
   * preface went first, and no header block is open.
   */
  readonly acceptsOwnFrames: boolean;
}

/** The type of the frame whose 9-octet header starts at `buf[at]` (as onFrame gets it). */
export function frameType(buf: Uint8Array, at: number): number {
  return buf[at + 3] as number;
}

export function frameFlags(buf: Uint8Array, at: number): number {
  return buf[at + 4] as number;
}

export function frameStreamId(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at + 5) & 0x7fff_ffff;
}

/**
 * A frame type → Mode table for the types a sink treats alike whatever the frame holds: `held`
 * types are held, every other type gets `otherwise`. Looked up once a frame, it allocates nothing.
 */
export function modesByType(held: readonly number[], otherwise: Mode): Uint8Array {
  const modes = new Uint8Array(256).fill(otherwise);
  for (const type of held) modes[type] = Mode.Hold;
  return modes;
}

/**
 * Walks the frames of a byte stream chunk by chunk. Frames in Pass modes go to `out` as they
 * arrive (a DATA frame of any size is streamed); held frames are handed over whole.
 */
export class FrameReader {
  private readonly header = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  private headerLength = 0;
  /** The header is complete but a padded DATA frame's pad length has not arrived yet. */
  private awaitingPad = false;
  private remaining = 0;
  private mode: Mode = Mode.Pass;
  /** Header and payload gathered so far of a held or inspected frame that spans chunks. */
  private gathered: Buffer[] | null = null;
  /** Where the current frame's bytes began in the chunk (-1: in an earlier chunk). */
  private frameStart = -1;
  /** Reading stopped (the connection failed): the rest is ignored. */
  private stopped = false;
  /** Frames of the relay's own waiting for a frame boundary. */
  private readonly pending: Buffer[] = [];
  private lastPayloadByte = -1;

  constructor(
    private readonly sink: FrameSink,
    private readonly out: Output,
  ) {}

  /** Whether no forwarded frame is half-way through: other frames may be sent now. */
  get atBoundary(): boolean {
    return this.remaining === 0 || this.mode === Mode.Hold || this.mode === Mode.Skip;
  }

  /** Whether a frame of the relay's own would go into the output now. */
  get mayInject(): boolean {
    return this.atBoundary && this.sink.acceptsOwnFrames;
  }

  /** Frames of the relay's own still waiting for a boundary. */
  get waiting(): number {
    return this.pending.length;
  }

  /** A frame of the relay's own: into the output now if it may, else at the next boundary. */
  inject(frame: Buffer): void {
    if (this.pending.length === 0 && this.mayInject) this.out.push(frame);
    else this.pending.push(frame);
  }

  /** Writes the frames waiting for a boundary, if it is at one. */
  release(): void {
    if (this.pending.length === 0 || !this.mayInject) return;
    for (const frame of this.pending) this.out.push(frame);
    this.pending.length = 0;
  }

  /** Forgets the frames waiting for a boundary (the connection is being closed). */
  dropWaiting(): void {
    this.pending.length = 0;
  }

  /** The last payload octet read, of the current or last frame (where a watch event ends). */
  get lastByte(): number {
    return this.lastPayloadByte;
  }

  /** Stops reading for good: the rest of this chunk and later ones are ignored. */
  stop(): void {
    this.stopped = true;
  }

  feed(chunk: Buffer, from: number): void {
    let pos = from;
    const end = chunk.length;
    while (pos < end && !this.stopped) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, end - pos);
        const mode = this.mode;
        if (mode === Mode.Pass || mode === Mode.PassAndInspect) this.out.pass(chunk, pos, pos + n);
        if ((mode === Mode.Hold || mode === Mode.PassAndInspect) && this.frameStart < 0)
          (this.gathered as Buffer[]).push(chunk.subarray(pos, pos + n));
        pos += n;
        this.remaining -= n;
        this.lastPayloadByte = chunk[pos - 1] as number;
        if (this.remaining === 0) this.finish(chunk, pos);
        continue;
      }
      pos = this.readHeader(chunk, pos);
    }
    this.release();
  }

  /** Reads a frame header at `pos` (or completes one carried over); returns the new position. */
  private readHeader(chunk: Buffer, pos: number): number {
    const end = chunk.length;
    let src: Buffer;
    let at: number;
    if (this.headerLength === 0 && end - pos >= FRAME_HEADER_LENGTH) {
      src = chunk;
      at = pos;
    } else {
      if (!this.awaitingPad) {
        const n = Math.min(FRAME_HEADER_LENGTH - this.headerLength, end - pos);
        chunk.copy(this.header, this.headerLength, pos, pos + n);
        this.headerLength += n;
        pos += n;
        if (this.headerLength < FRAME_HEADER_LENGTH) return pos;
      }
      src = this.header;
      at = 0;
    }
    const length =
      ((src[at] as number) << 16) | ((src[at + 1] as number) << 8) | (src[at + 2] as number);
    const type = src[at + 3] as number;
    const flags = src[at + 4] as number;
    const streamId =
      (((src[at + 5] as number) & 0x7f) << 24) |
      ((src[at + 6] as number) << 16) |
      ((src[at + 7] as number) << 8) |
      (src[at + 8] as number);
    const inChunk = src === chunk;
    const payloadAt = inChunk ? at + FRAME_HEADER_LENGTH : pos;
    let padLength = -1;
    if (type === FrameType.Data && flags & Flag.Padded && length > 0) {
      if (payloadAt >= end) {
        // Keep the header until the pad length arrives.
        if (inChunk) chunk.copy(this.header, 0, at, at + FRAME_HEADER_LENGTH);
        this.headerLength = FRAME_HEADER_LENGTH;
        this.awaitingPad = true;
        return end;
      }
      padLength = chunk[payloadAt] as number;
    }
    this.awaitingPad = false;
    this.headerLength = 0;
    this.release();
    const mode = this.sink.onFrameHeader(type, flags, streamId, length, padLength);
    if (this.stopped) return end;
    this.mode = mode;
    this.remaining = length;
    if (inChunk) {
      this.frameStart = at;
      if (mode === Mode.Pass || mode === Mode.PassAndInspect)
        this.out.pass(chunk, at, at + FRAME_HEADER_LENGTH);
    } else {
      this.frameStart = -1;
      const header = Buffer.from(this.header);
      if (mode === Mode.Pass || mode === Mode.PassAndInspect) this.out.push(header);
      if (mode === Mode.Hold || mode === Mode.PassAndInspect) this.gathered = [header];
    }
    if (inChunk && this.frameStart >= 0 && payloadAt + length > end) {
      // The frame continues in a later chunk: gather what it has here.
      if (mode === Mode.Hold || mode === Mode.PassAndInspect)
        this.gathered = [chunk.subarray(at, at + FRAME_HEADER_LENGTH)];
      this.frameStart = -1;
    }
    if (length === 0) this.finish(chunk, payloadAt);
    return payloadAt;
  }

  private finish(chunk: Buffer, pos: number): void {
    const mode = this.mode;
    if (mode === Mode.Hold || mode === Mode.PassAndInspect) {
      let buf = chunk;
      let at = this.frameStart;
      let end = pos;
      if (at < 0) {
        const parts = this.gathered as Buffer[];
        buf = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
        at = 0;
        end = buf.length;
      }
      this.gathered = null;
      const forward = this.sink.onFrame(buf, at, end);
      if (forward && mode === Mode.Hold && !this.stopped) this.out.pass(buf, at, end);
    }
    this.frameStart = -1;
  }
}
