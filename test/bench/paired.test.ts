/**
 * The side-by-side measurement (bench scenario j): both peers' windows run at once, the side
 * that starts first alternates, and each round's ratio is taken within the round.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { standardError } from '../../bench/measure/stats.js';
import type { Peer } from '../../bench/peers/types.js';
import { measureSideBySide } from '../../bench/scenarios/paired.js';
import type { Round } from '../../bench/scenarios/throughput.js';
import { context, peer, round } from './rounds.js';

/** kube-crl-proxy beside HAProxy for `rounds` rounds, each window giving its side's next figure. */
function sideBySideOf(figures: Record<string, (number | null)[]>, rounds: number) {
  return measureSideBySide(
    context(2),
    'x',
    peer('kube-crl-proxy'),
    peer('haproxy'),
    rounds,
    async (p) => round(figures[p.name]?.shift() ?? null),
  );
}

describe('side by side', () => {
  test('both windows are open at once, and the side that starts first alternates', async () => {
    const events: string[] = [];
    await measureSideBySide(
      context(2),
      'x',
      peer('kube-crl-proxy'),
      peer('haproxy'),
      4,
      async (p) => {
        events.push(`start ${p.name}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        events.push(`end ${p.name}`);
        return round(10);
      },
    );
    const starts = ['start kube-crl-proxy', 'start haproxy'];
    const ends = ['end kube-crl-proxy', 'end haproxy'];
    assert.deepEqual(events, [
      ...starts,
      ...ends,
      ...[...starts].reverse(),
      ...[...ends].reverse(),
      ...starts,
      ...ends,
      ...[...starts].reverse(),
      ...[...ends].reverse(),
    ]);
  });

  test("each round's ratio is its own two windows', whichever side started first", async () => {
    const measured = await sideBySideOf(
      { 'kube-crl-proxy': [100, 220, 330], haproxy: [200, 200, 300] },
      3,
    );
    assert.deepEqual(
      measured.ratios.map((r) => r.toFixed(3)),
      ['0.500', '1.100', '1.100'],
    );
    assert.equal(measured.a.length, 3);
    assert.equal(measured.b.length, 3);
  });

  test('a round without a figure on either side gives no ratio', async () => {
    const measured = await sideBySideOf({ 'kube-crl-proxy': [100, null], haproxy: [100, 100] }, 2);
    assert.deepEqual(measured.ratios, [1]);
  });

  test('a failed round is measured again once, after both of its windows have ended', async () => {
    const events: string[] = [];
    let calls = 0;
    const flaky = async (p: Peer): Promise<Round> => {
      calls++;
      events.push(`start ${p.name}`);
      if (calls === 1) throw new Error('load process lost');
      await new Promise((resolve) => setTimeout(resolve, 10));
      events.push(`end ${p.name}`);
      return round(10);
    };
    const measured = await measureSideBySide(
      context(2),
      'x',
      peer('kube-crl-proxy'),
      peer('haproxy'),
      1,
      flaky,
    );
    assert.deepEqual(measured.ratios, [1]);
    // HAProxy's window of the failed attempt ends before the retry starts either window.
    assert.deepEqual(events, [
      'start kube-crl-proxy',
      'start haproxy',
      'end haproxy',
      'start kube-crl-proxy',
      'start haproxy',
      'end kube-crl-proxy',
      'end haproxy',
    ]);
  });

  test('a round that fails twice is the error', async () => {
    await assert.rejects(
      measureSideBySide(context(2), 'x', peer('kube-crl-proxy'), peer('haproxy'), 1, async () => {
        throw new Error('load process lost');
      }),
      /load process lost/,
    );
  });

  test('standard error of the mean', () => {
    assert.ok(Number.isNaN(standardError([1])));
    assert.equal(standardError([1, 1, 1]), 0);
    // sd of [1, 2, 3] is 1; over √3 rounds.
    assert.ok(Math.abs(standardError([1, 2, 3]) - 1 / Math.sqrt(3)) < 1e-12);
  });
});
