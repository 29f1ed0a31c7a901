/**
 * Chunked bodies (RFC 9112 §7.1) read strictly as they pass, so that where a body ends is known
 * exactly: hex chunk sizes, well-formed extensions, CRLF after every line and after chunk data,
 * trailer fields as header lines. The bytes go on unchanged (a request's trailer fields are
 * dropped, as the forwarder always did); a line is forwarded only once it has been checked.
 */
import { Buffer } from 'node:buffer';
import { RequestFramingError } from '../../errors.js';
import type { Output } from '../output.js';
import { fieldLine } from './head-parser.js';

const CR = 13;
const LF = 10;
/** A chunk-size line (with its extensions) longer than this is not a client's. */
const MAX_LINE = 4096;
/** Largest chunk size taken: 2^52 - 1, exact in a double. */
const MAX_SIZE_DIGITS = 13;

const TCHAR = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
const QUOTED =
  '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"';
const EXTENSION = `[ \\t]*;[ \\t]*${TCHAR}+(?:[ \\t]*=[ \\t]*(?:${TCHAR}+|${QUOTED}))?`;
const SIZE_LINE = new RegExp(`^([0-9A-Fa-f]+)(?:${EXTENSION})*$`);

const State = {
  Size: 0,
  Data: 1,
  DataCR: 2,
  DataLF: 3,
  Trailer: 4,
  Done: 5,
} as const;
type State = (typeof State)[keyof typeof State];

export class ChunkedBody {
  private state: State = State.Size;
  private remaining = 0;
  /** The current line's bytes from earlier reads (latin1), when it spans reads. */
  private carried = '';
  private trailerBytes = 0;
  /** The last byte of chunk data read; LF before any (the start is a line boundary). */
  private lastDataByte = LF;
  /**
   * Boundaries are only those after a line's end: the apiserver's chunks do not always end at
   * a JSON watch event (it flushes when its queue is empty, and its 2 KiB write buffer
   * overflows mid-event), but every event ends with a newline.
   */
  lineBoundaries = false;
  /** Set to stop at the next boundary (a watch ended cleanly on shutdown or a cut). */
  stopAtBoundary = false;
  /** Reading stopped at a chunk boundary because stopAtBoundary was set. */
  stopped = false;

  constructor(
    /** Trailer fields are forwarded (responses) or dropped (requests). */
    private readonly keepTrailers: boolean,
    private readonly maxTrailerBytes: number,
  ) {}

  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Reads `buf[pos, end)`, forwarding to `out`. Returns where the body ended in `buf`, or -1
   * when it continues (or reading stopped at a boundary). Throws RequestFramingError.
   */
  feed(buf: Buffer, pos: number, end: number, out: Output): number {
    while (pos < end) {
      switch (this.state) {
        case State.Data: {
          const n = Math.min(this.remaining, end - pos);
          out.pass(buf, pos, pos + n);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = State.DataCR;
            this.lastDataByte = buf[pos - 1] as number;
          }
          break;
        }
        case State.DataCR:
          if (buf[pos] !== CR) throw new RequestFramingError(400, 'chunk data without its CRLF');
          out.pass(buf, pos, ++pos);
          this.state = State.DataLF;
          break;
        case State.DataLF:
          if (buf[pos] !== LF) throw new RequestFramingError(400, 'chunk data without its CRLF');
          out.pass(buf, pos, ++pos);
          this.state = State.Size;
          if (this.stopAtBoundary && this.atBoundary) {
            this.stopped = true;
            return -1;
          }
          break;
        case State.Size:
        case State.Trailer: {
          const next = this.readLine(buf, pos, end, out);
          if (next < 0) return -1;
          pos = next;
          if (this.done) return pos;
          break;
        }
        case State.Done:
          return pos;
      }
    }
    return -1;
  }

  /** Whether the next byte would start a chunk (after a line's end): nothing half-forwarded. */
  get atBoundary(): boolean {
    return (
      this.state === State.Size &&
      this.carried === '' &&
      (!this.lineBoundaries || this.lastDataByte === LF)
    );
  }

  /** Reads one line at `pos`; returns the position after it, or -1 if it continues. */
  private readLine(buf: Buffer, pos: number, end: number, out: Output): number {
    const lf = buf.indexOf(LF, pos);
    const limit = this.state === State.Size ? MAX_LINE : this.maxTrailerBytes;
    if (lf < 0 || lf >= end) {
      if (this.carried.length + end - pos > limit) throw tooLong(this.state);
      this.carried += buf.toString('latin1', pos, end);
      return -1;
    }
    const whole = this.carried === '';
    const line = whole
      ? buf.toString('latin1', pos, lf + 1)
      : this.carried + buf.toString('latin1', pos, lf + 1);
    this.carried = '';
    if (line.length > limit) throw tooLong(this.state);
    if (line.length < 2 || line.charCodeAt(line.length - 2) !== CR)
      throw new RequestFramingError(400, 'a chunked-body line ends in a bare LF');
    const forward = this.state === State.Size ? this.onSizeLine(line) : this.onTrailerLine(line);
    if (forward) {
      if (whole) out.pass(buf, pos, lf + 1);
      else out.push(Buffer.from(line, 'latin1'));
    }
    return lf + 1;
  }

  private onSizeLine(line: string): boolean {
    const match = SIZE_LINE.exec(line.slice(0, -2));
    if (match === null) throw new RequestFramingError(400, 'malformed chunk-size line');
    const digits = (match[1] as string).replace(/^0+(?=.)/, '');
    if (digits.length > MAX_SIZE_DIGITS) throw new RequestFramingError(400, 'chunk size too large');
    const size = Number.parseInt(digits, 16);
    if (size === 0) this.state = State.Trailer;
    else {
      this.remaining = size;
      this.state = State.Data;
    }
    return true;
  }

  private onTrailerLine(line: string): boolean {
    if (line.length === 2) {
      this.state = State.Done;
      return true;
    }
    this.trailerBytes += line.length;
    if (this.trailerBytes > this.maxTrailerBytes) throw tooLong(State.Trailer);
    fieldLine(line, 0, line.length - 2);
    return this.keepTrailers;
  }
}

function tooLong(state: State): RequestFramingError {
  return new RequestFramingError(
    400,
    state === State.Size ? 'chunk-size line too long' : 'trailer section too long',
  );
}
