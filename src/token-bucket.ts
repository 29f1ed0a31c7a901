/**
 * The project's one token bucket: `burst` events at once, refilled at `perSecond`. The HTTP/2
 * relay takes a token per control frame and per reset, so `take` allocates nothing; the
 * rate-limited log takes one per line.
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
  ) {
    this.tokens = burst;
  }

  /** Takes one token; false when there is none (the limit is exceeded). */
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}
