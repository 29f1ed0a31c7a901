/**
 * How the benchmark turns rounds into the "vs HAProxy" figure: peers alternate their order
 * from round to round, and the ratio is the median of the rounds' own ratios, so a host that
 * slows down between rounds moves both sides of a ratio together.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PeerName } from '../../bench/peers/types.js';
import { measurePeers, ratioToHaproxy } from '../../bench/scenarios/throughput.js';
import { context, peer, round } from './rounds.js';

/** measurePeers over the peers of `figures` (3 rounds), each round giving a peer its next figure. */
function measuredRounds(figures: Partial<Record<PeerName, (number | null)[]>>) {
  const calls = new Map<PeerName, number>();
  const peers = Object.keys(figures).map((n) => peer(n as PeerName));
  return measurePeers(context(3), 'x', peers, async (p) => {
    const i = calls.get(p.name) ?? 0;
    calls.set(p.name, i + 1);
    return round(figures[p.name]?.[i] ?? null);
  });
}

describe('benchmark ratios', () => {
  test('odd rounds take the peers in reverse order', async () => {
    const order: PeerName[] = [];
    const peers = (['kube-crl-proxy', 'haproxy', 'node-tls-pipe'] as const).map(peer);
    await measurePeers(context(3), 'x', peers, async (p) => {
      order.push(p.name);
      return round(10);
    });
    assert.deepEqual(order, [
      ...['kube-crl-proxy', 'haproxy', 'node-tls-pipe'],
      ...['node-tls-pipe', 'haproxy', 'kube-crl-proxy'],
      ...['kube-crl-proxy', 'haproxy', 'node-tls-pipe'],
    ]);
  });

  test('vs HAProxy is the median of each round’s ratio, not the ratio of the medians', async () => {
    // The host slows down over the run; kube-crl-proxy is 5–10% dearer than HAProxy in every
    // round, but the ratio of the medians (200 / 250 = 0.8) would say it is cheaper.
    const all = await measuredRounds({
      'kube-crl-proxy': [100, 200, 400],
      haproxy: [95, 250, 380],
    });
    const ratio = ratioToHaproxy(all, 'kube-crl-proxy');
    assert.ok(ratio !== null);
    assert.ok(Math.abs(ratio - 400 / 380) < 1e-9, `got ${ratio}`);
  });

  test('a round without a figure on either side is left out', async () => {
    const all = await measuredRounds({
      'kube-crl-proxy': [110, null, 120],
      haproxy: [100, 100, null],
    });
    assert.equal(ratioToHaproxy(all, 'kube-crl-proxy'), 1.1);
    assert.equal(ratioToHaproxy(all, 'node-tls-pipe'), null);
  });
});
