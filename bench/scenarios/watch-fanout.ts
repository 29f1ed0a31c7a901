/**
 * (d) Watch fan-out: thousands of concurrent watches (HTTP/2, 10 per connection) of one
 * namespace through each peer to the fake apiserver; a burst of pod changes, each delivered
 * to every watch. Events delivered per second, proxy CPU per event, proxy RSS per watch.
 */
import { LoadProcess } from '../load/ipc.js';
import type { WatchersConfig, WatchersResult } from '../load/watchers.js';
import { between, rssBytes, sample } from '../measure/proc.js';
import { directPeer } from '../peers/direct.js';
import {
  type FakeApiserverUpstream,
  startFakeApiserverHost,
  WATCH_NAMESPACE,
} from '../peers/fake-apiserver.js';
import { startHaproxy } from '../peers/haproxy.js';
import { startKubeCrlProxy } from '../peers/kube-crl-proxy.js';
import type { Peer } from '../peers/types.js';
import type { ScenarioResult } from '../report/results.js';
import { getH1 } from '../support/sanity.js';
import type { BenchContext } from './context.js';
import { measurePeers, type Round, roundFromWindow, throughputResult } from './throughput.js';

const PODS_PATH = `/api/v1/namespaces/${WATCH_NAMESPACE}/pods`;

export async function watchFanoutScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const watches = ctx.options.quick ? 500 : 2_000;
  const updates = ctx.options.quick ? 20 : 100;
  const apiserver = await startFakeApiserverHost(ctx.pki);
  const peers: Peer[] = [];
  const rssPerWatch = new Map<string, number[]>();
  try {
    peers.push(await startKubeCrlProxy(ctx.build, ctx.pki, apiserver.url));
    peers.push(
      await startHaproxy(ctx.pki, { upstreamPort: apiserver.port, maxconn: watches + 500 }),
    );
    peers.push(directPeer(apiserver));
    for (const peer of peers) {
      const answer = await getH1(ctx.pki, peer, PODS_PATH);
      if (answer.status !== 200)
        throw new Error(`watch: ${peer.name} answered ${answer.status}: ${answer.body}`);
    }
    const figures = await measurePeers(ctx, 'watch', peers, async (peer) => {
      const round = await watchRound(ctx, apiserver, peer, watches, updates);
      if (round.rssPerWatch !== null)
        rssPerWatch.set(peer.name, [...(rssPerWatch.get(peer.name) ?? []), round.rssPerWatch]);
      return round.round;
    });
    const kb = (name: string) => {
      // The first round's growth: HAProxy keeps freed buffers in its pools for later rounds.
      const v = Math.max(...(rssPerWatch.get(name) ?? [Number.NaN]));
      return Number.isFinite(v) ? `${(v / 1024).toFixed(1)} KB` : '—';
    };
    return throughputResult(
      'watch',
      `(d) watch fan-out: ${watches} watches (HTTP/2, 10 per connection), ${updates} pod changes each delivered to every watch`,
      'event',
      figures,
      [
        `proxy RSS per watch (after all watches are open − before, largest round): kube-crl-proxy ${kb('kube-crl-proxy')}, HAProxy ${kb('haproxy')}.`,
        'upstream: the fake kube-apiserver (Node, core 1) writes each event to each watch itself; with the watchers on the same core it is the ceiling (see direct).',
      ],
    );
  } finally {
    for (const peer of peers) await peer.stop();
    await apiserver.stop();
  }
}

async function watchRound(
  ctx: BenchContext,
  apiserver: FakeApiserverUpstream,
  peer: Peer,
  watches: number,
  updates: number,
): Promise<{ round: Round; rssPerWatch: number | null }> {
  const pids = peer.pid === null ? [] : [peer.pid];
  const rssBefore = peer.pid === null ? 0 : rssBytes(peer.pid);
  const config: WatchersConfig = {
    identity: {
      port: peer.port,
      certFile: peer.client.certFile,
      keyFile: peer.client.keyFile,
      caFile: ctx.pki.servingCaFile,
    },
    path: `${PODS_PATH}?watch=true`,
    watches,
    streamsPerConnection: 10,
  };
  const load = LoadProcess.start<WatchersConfig, WatchersResult>('./watchers.js', config);
  try {
    await load.ready(120_000);
    const rssPerWatch = peer.pid === null ? null : (rssBytes(peer.pid) - rssBefore) / watches;
    const expected = watches * updates;
    const before = sample(pids);
    load.send({ type: 'command', name: 'count', args: { expected, timeoutMs: 120_000 } });
    await apiserver.burst(updates);
    const result = await load.done(180_000);
    const after = sample(pids);
    const window = between(before, after);
    return {
      rssPerWatch,
      round: roundFromWindow(peer, window, {
        ops: result.events,
        seconds: result.seconds,
        generatorCpuSeconds: result.generatorCpuSeconds,
        p50Ms: null,
        p99Ms: null,
        failed: expected - result.events,
      }),
    };
  } finally {
    await load.stop();
  }
}
