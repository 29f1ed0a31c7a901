/**
 * Structured JSON-lines logging (pino) on stdout, and a rate limiter for lines a client can
 * cause, so a flood of bad clients cannot flood the disk.
 */
import { pino } from 'pino';

export type Logger = pino.Logger;

/** JSON lines on stdout, or appended to `file`. */
export function createLogger(level: string, file?: string): Logger {
  const options = {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return file === undefined
    ? pino(options)
    : pino(options, pino.destination({ dest: file, sync: true }));
}

/**
 * At most `burst` lines, refilled at `perSecond`; lines over the limit are counted and the
 * count is reported on the next line that gets through (and by `flush`).
 */
export class RateLimitedLog {
  private tokens: number;
  private last = Date.now();
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  warn(fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) {
      this.suppressed++;
      return;
    }
    this.tokens -= 1;
    const extra = this.suppressed > 0 ? { suppressed: this.suppressed } : {};
    this.suppressed = 0;
    this.log.warn({ ...fields, ...extra }, message);
  }

  /** Reports lines suppressed since the last one logged, if any. */
  flush(message: string): void {
    if (this.suppressed === 0) return;
    this.log.warn({ suppressed: this.suppressed }, message);
    this.suppressed = 0;
  }
}
