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
