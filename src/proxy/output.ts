/**
 * What one read produces for the other side, gathered into one write: ranges of the read chunk
 * (forwarded without copying) and bytes of the proxy's own. Used by the HTTP/2 relay and the
 * HTTP/1.1 splice alike.
 */
import { Buffer } from 'node:buffer';

/** Gathers the output of one read as ranges of the input and bytes of the proxy's own. */
export class Output {
  private readonly parts: Buffer[] = [];
  private length = 0;
  private run: Buffer | null = null;
  private runStart = 0;
  private runEnd = 0;

  /** Forwards `buf[start, end)`: consecutive ranges of one chunk merge. */
  pass(buf: Buffer, start: number, end: number): void {
    if (start === end) return;
    if (this.run === buf && this.runEnd === start) {
      this.runEnd = end;
      return;
    }
    this.closeRun();
    this.run = buf;
    this.runStart = start;
    this.runEnd = end;
  }

  push(bytes: Buffer): void {
    this.closeRun();
    this.parts.push(bytes);
    this.length += bytes.length;
  }

  get empty(): boolean {
    return this.run === null && this.parts.length === 0;
  }

  /** Everything gathered, as one buffer (the input chunk itself when it passed whole). */
  take(): Buffer | null {
    this.closeRun();
    const parts = this.parts;
    if (parts.length === 0) return null;
    const out = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, this.length);
    parts.length = 0;
    this.length = 0;
    return out;
  }

  private closeRun(): void {
    const run = this.run;
    if (run === null) return;
    const bytes =
      this.runStart === 0 && this.runEnd === run.length
        ? run
        : run.subarray(this.runStart, this.runEnd);
    this.parts.push(bytes);
    this.length += bytes.length;
    this.run = null;
  }
}
