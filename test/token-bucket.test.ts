/**
 * The one token bucket, as the HTTP/2 relay's flood limits and the rate-limited log use it.
 * No refill is asserted: that would be a timing.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { RateLimitedLog } from '../src/log.js';
import { TokenBucket } from '../src/token-bucket.js';

test('a bucket gives `burst` tokens at once, then none until it refills', () => {
  const bucket = new TokenBucket(3, 0);
  assert.deepEqual(
    Array.from({ length: 5 }, () => bucket.take()),
    [true, true, true, false, false],
  );
});

test('the rate-limited log drops lines over its burst and reports how many', () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const log = new RateLimitedLog(pino({ base: null, timestamp: false }, sink), 0, 2);
  for (let i = 1; i <= 5; i++) log.warn({ i }, 'refused');
  log.flush('suppressed');
  log.flush('suppressed');
  assert.deepEqual(
    lines.map(({ i, suppressed, msg }) => ({ i, suppressed, msg })),
    [
      { i: 1, suppressed: undefined, msg: 'refused' },
      { i: 2, suppressed: undefined, msg: 'refused' },
      { i: undefined, suppressed: 3, msg: 'suppressed' },
    ],
  );
});
