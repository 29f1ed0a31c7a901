/**
 * The deadline an HTTP/1.1 connection is under between requests: the head timeout (from the
 * first byte of a head; from the start for a new connection) or the keep-alive idle timeout.
 * One timer per connection, moved rather than re-created: setting a later deadline leaves the
 * timer as it is, and when it fires early it is set again for what is left.
 */
import type { Limits } from '../../config/config.js';

export const Deadline = {
  None: 0,
  /** --http-header-timeout: a request head is to be complete. */
  Head: 1,
  /** --http-idle-timeout: a kept-alive connection is to send its next request. */
  Idle: 2,
} as const;
export type Deadline = (typeof Deadline)[keyof typeof Deadline];

export interface DeadlineHost {
  /** The deadline `kind` passed. */
  deadlinePassed(kind: Deadline): void;
}

export class ConnectionDeadline {
  private pending: Deadline = Deadline.None;
  /** When the pending deadline passes (Date.now() time). */
  private at = 0;
  private timer: NodeJS.Timeout | null = null;
  /** When the timer fires. */
  private timerAt = 0;
  private readonly onTimer = () => this.timerFired();

  constructor(
    private readonly host: DeadlineHost,
    private readonly limits: Pick<Limits, 'httpHeaderTimeoutMs' | 'httpIdleTimeoutMs'>,
  ) {}

  /** The deadline the connection is under. */
  get kind(): Deadline {
    return this.pending;
  }

  /** The connection is under deadline `kind` from now (None: under none). */
  set(kind: Deadline): void {
    this.pending = kind;
    if (kind === Deadline.None) return;
    const { limits } = this;
    const ms = kind === Deadline.Head ? limits.httpHeaderTimeoutMs : limits.httpIdleTimeoutMs;
    const at = Date.now() + ms;
    this.at = at;
    if (this.timer !== null && this.timerAt <= at) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(this.onTimer, ms);
    this.timer.unref();
    this.timerAt = at;
  }

  /** No deadline any more, and no timer. */
  stop(): void {
    this.pending = Deadline.None;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private timerFired(): void {
    this.timer = null;
    if (this.pending === Deadline.None) return;
    const left = this.at - Date.now();
    if (left > 0) {
      this.timer = setTimeout(this.onTimer, left);
      this.timer.unref();
      this.timerAt = this.at;
      return;
    }
    this.host.deadlinePassed(this.pending);
  }
}
