/**
 * Structured JSON-lines logging (pino) on stdout, and a rate limiter for lines a client can
 * cause, so a flood of bad clients cannot flood the disk.
 */
import { pino } from 'pino';
import { TokenBucket } from './token-bucket.js';

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
  private readonly bucket: TokenBucket;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    perSecond: number,
    burst: number,
  ) {
    this.bucket = new TokenBucket(burst, perSecond);
  }

  warn(fields: Record<string, unknown>, message: string): void {
    if (!this.bucket.take()) {
      this.suppressed++;
      return;
    }
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
