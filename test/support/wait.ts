/**
 * Waiting for something a test cannot be told about: polled, with a deadline that names what
 * did not happen.
 */

/** Resolves once `done()` holds (polled every 10 ms), or fails after `timeoutMs`. */
export async function until(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!done()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Resolves with the time it took once `check()` holds (polled every 20 ms), or fails after
 * `timeoutMs`.
 */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Conditions waited on until something the test is told about (a frame, a connection, a close)
 * makes them hold: call notify() after each such event.
 */
export class Waiters {
  private readonly waiting = new Set<() => void>();

  notify(): void {
    for (const check of [...this.waiting]) check();
  }

  /**
   * Resolves once `done()` holds (checked now and at every notify()), or rejects after
   * `timeoutMs` with the message `timedOut()` gives then.
   */
  waitFor(done: () => boolean, timeoutMs: number, timedOut: () => string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        this.waiting.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiting.delete(check);
        reject(new Error(timedOut()));
      }, timeoutMs);
      this.waiting.add(check);
      check();
    });
  }
}
