/**
 * When a --crl-url is fetched next: on its interval, and more often in the last tenth of the
 * lifetime of the CRL in force from it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextFetchAt } from '../../src/watcher/crl-url-poller.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

test('the interval, when the CRL is far from its nextUpdate or has none', () => {
  assert.equal(nextFetchAt(0, 5 * MIN, null), 5 * MIN);
  assert.equal(nextFetchAt(0, 5 * MIN, { thisUpdate: 0, nextUpdate: null }), 5 * MIN);
  assert.equal(nextFetchAt(DAY, 5 * MIN, { thisUpdate: 0, nextUpdate: 7 * DAY }), DAY + 5 * MIN);
});

test('an interval longer than the time to the last tenth: fetched as the last tenth begins', () => {
  // 7 days of life: the last tenth begins 16.8 h before nextUpdate.
  const freshness = { thisUpdate: 0, nextUpdate: 7 * DAY };
  assert.equal(nextFetchAt(5.5 * DAY, 2 * DAY, freshness), 7 * DAY - 16.8 * HOUR);
});

test('in the last tenth, or past nextUpdate: every twentieth of the lifetime, not under 10 s', () => {
  const week = { thisUpdate: 0, nextUpdate: 7 * DAY };
  assert.equal(nextFetchAt(6.5 * DAY, DAY, week), 6.5 * DAY + 8.4 * HOUR);
  assert.equal(nextFetchAt(8 * DAY, DAY, week), 8 * DAY + 8.4 * HOUR);
  assert.equal(nextFetchAt(8 * DAY, 5 * MIN, week), 8 * DAY + 5 * MIN, 'the interval if shorter');
  const minute = { thisUpdate: 0, nextUpdate: MIN };
  assert.equal(nextFetchAt(55_000, HOUR, minute), 65_000);
});
