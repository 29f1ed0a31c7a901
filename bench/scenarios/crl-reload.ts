/**
 * (f) A CRL change with 10k, 100k and 1M entries, the newly revoked certificate having a
 * keep-alive connection open: how long the reload takes (wall time from the change to the
 * proxy's `snapshot in force` log line, and its own load-duration metric), what a client
 * doing a GET every ~1 ms sees meanwhile (the event loop's stalls), and when the revoked
 * certificate is refused on a new connection and cut on its open one. HAProxy reads its
 * crl-file at start only: the same change, unreloaded, shows its figure ("never").
 */
import { LoadProcess } from '../load/ipc.js';
import type { ReloadProbeConfig, ReloadProbeResult } from '../load/reload-probe.js';
import { metricValue, scrape } from '../measure/prometheus.js';
import { median, percentile } from '../measure/stats.js';
import { startHaproxy } from '../peers/haproxy.js';
import { type KubeCrlProxyPeer, startKubeCrlProxy } from '../peers/kube-crl-proxy.js';
import { LOAD_PATH, startNginxUpstream } from '../peers/nginx-upstream.js';
import type { Peer } from '../peers/types.js';
import type { Cell, ScenarioResult } from '../report/results.js';
import type { ClientCert } from '../support/pki.js';
import type { BenchContext } from './context.js';
import { fmt } from './throughput.js';

interface ReloadRound {
  readonly entries: number;
  /** ms from the change to `snapshot in force` (null: HAProxy, no reload). */
  readonly reloadWallMs: number | null;
  readonly loadMetricMs: number | null;
  /** Worst event-loop delay of the proxy's main thread from the change to the swap. */
  readonly eventLoopMaxMs: number | null;
  readonly probeP50BeforeMs: number;
  readonly probeP99BeforeMs: number;
  readonly probeP99DuringMs: number;
  readonly probeMaxDuringMs: number;
  readonly probesDuring: number;
  readonly newRefusedAfterMs: number | null;
  readonly openCutAfterMs: number | null;
  readonly observedMs: number;
  readonly probeFailures: number;
}

const epochNow = () => performance.timeOrigin + performance.now();

function observeMsFor(entries: number): number {
  return entries >= 1_000_000 ? 6_000 : entries >= 100_000 ? 3_000 : 1_500;
}

async function changeCrl(
  ctx: BenchContext,
  peer: Peer,
  entries: number,
  victim: ClientCert,
  observeMs: number,
  signal: boolean,
): Promise<ReloadRound> {
  const commit = ctx.pki.stageCrl(ctx.pki.buildCrl(entries, [victim.serial]));
  const identity = (cert: ClientCert) => ({
    port: peer.port,
    certFile: cert.certFile,
    keyFile: cert.keyFile,
    caFile: ctx.pki.servingCaFile,
  });
  const config: ReloadProbeConfig = {
    probe: identity(peer.client),
    victim: identity(victim),
    path: LOAD_PATH,
    baselineMs: 1_000,
    observeMs,
  };
  const probe = LoadProcess.start<ReloadProbeConfig, ReloadProbeResult>(
    './reload-probe.js',
    config,
  );
  try {
    await probe.ready(30_000);
    const kcp = peer.name === 'kube-crl-proxy' ? (peer as KubeCrlProxyPeer) : null;
    const logsBefore = kcp?.logs.length ?? 0;
    // prom-client resets its event-loop delay histogram at every scrape: this one starts the window.
    if (kcp !== null) await scrape(kcp.metricsUrl);
    const changedAt = epochNow();
    commit();
    if (signal && peer.pid !== null) process.kill(peer.pid, 'SIGHUP');
    probe.send({ type: 'command', name: 'changed' });
    let doneAt: number | null = null;
    let loadMetricMs: number | null = null;
    let eventLoopMaxMs: number | null = null;
    if (kcp !== null) {
      const line = await kcp.waitForLog(
        (l) => l.msg === 'snapshot in force' && kcp.logs.indexOf(l) >= logsBefore,
        60_000,
      );
      doneAt = typeof line.time === 'string' ? Date.parse(line.time) : epochNow();
      const metrics = await scrape(kcp.metricsUrl);
      const seconds = metricValue(metrics, 'kube_crl_proxy_crl_last_load_duration_seconds');
      loadMetricMs = seconds === null ? null : seconds * 1000;
      // The histogram records the intervals of a 10 ms timer: an idle loop reads ~10 ms as
      // min and max. The worst delay is the longest interval less the shortest.
      const max = metricValue(metrics, 'nodejs_eventloop_lag_max_seconds');
      const min = metricValue(metrics, 'nodejs_eventloop_lag_min_seconds');
      eventLoopMaxMs = max === null || min === null ? null : (max - min) * 1000;
    }
    const result = await probe.done(observeMs + 30_000);
    const windowEnd = doneAt ?? changedAt + observeMs;
    const before = result.probes
      .filter(([sent]) => sent >= changedAt - 1_000 && sent < changedAt)
      .map(([, latency]) => latency)
      .sort((a, b) => a - b);
    const during = result.probes
      .filter(([sent, latency]) => sent < windowEnd && sent + latency > changedAt)
      .map(([, latency]) => latency)
      .sort((a, b) => a - b);
    const after = (t: number | null) => (t === null ? null : Math.max(0, t - changedAt));
    return {
      entries,
      reloadWallMs: doneAt === null ? null : doneAt - changedAt,
      loadMetricMs,
      eventLoopMaxMs,
      probeP50BeforeMs: percentile(before, 50),
      probeP99BeforeMs: percentile(before, 99),
      probeP99DuringMs: percentile(during, 99),
      probeMaxDuringMs: during[during.length - 1] ?? Number.NaN,
      probesDuring: during.length,
      newRefusedAfterMs: after(result.newRefusedAt),
      openCutAfterMs: after(result.openCutAt),
      observedMs: observeMs,
      probeFailures: result.probeFailures,
    };
  } finally {
    await probe.stop();
  }
}

export async function crlReloadScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const sizes = ctx.options.quick ? [10_000] : [10_000, 100_000, 1_000_000];
  ctx.pki.installCrl(ctx.pki.buildCrl(0));
  const nginx = await startNginxUpstream(ctx.pki);
  const peers: Peer[] = [];
  const rounds: Array<{ peer: string; round: ReloadRound }> = [];
  try {
    const kcp = await startKubeCrlProxy(ctx.build, ctx.pki, nginx.url);
    peers.push(kcp);
    const haproxy = await startHaproxy(ctx.pki, { upstreamPort: nginx.port });
    peers.push(haproxy);
    let victims = 0;
    for (const entries of sizes) {
      for (let r = 0; r < ctx.options.rounds; r++) {
        ctx.progress(
          `crl-reload: kube-crl-proxy, ${entries} entries, round ${r + 1}/${ctx.options.rounds}`,
        );
        const victim = await ctx.pki.newUser(`victim-${++victims}`);
        rounds.push({
          peer: 'kube-crl-proxy',
          round: await changeCrl(ctx, kcp, entries, victim, observeMsFor(entries), true),
        });
      }
    }
    // What an operator does in production: only replace the file; the watcher notices.
    for (let r = 0; r < ctx.options.rounds; r++) {
      const entries = sizes[0] ?? 10_000;
      ctx.progress(
        `crl-reload: kube-crl-proxy, file watch only, round ${r + 1}/${ctx.options.rounds}`,
      );
      const victim = await ctx.pki.newUser(`victim-${++victims}`);
      rounds.push({
        peer: 'kube-crl-proxy, no SIGHUP',
        round: await changeCrl(ctx, kcp, entries, victim, observeMsFor(entries), false),
      });
    }
    ctx.progress('crl-reload: haproxy, CRL file changed, no reload');
    const victim = await ctx.pki.newUser(`victim-${++victims}`);
    const observeMs = ctx.options.quick ? 2_000 : 5_000;
    rounds.push({
      peer: 'haproxy',
      round: await changeCrl(ctx, haproxy, sizes[0] ?? 10_000, victim, observeMs, false),
    });
  } finally {
    for (const peer of peers) await peer.stop();
    await nginx.stop();
  }
  return reloadResult(rounds);
}

function reloadResult(rounds: ReadonlyArray<{ peer: string; round: ReloadRound }>): ScenarioResult {
  const groups = new Map<string, ReloadRound[]>();
  for (const { peer, round } of rounds) {
    const key = `${peer}|${round.entries}`;
    groups.set(key, [...(groups.get(key) ?? []), round]);
  }
  const rows: Cell[][] = [];
  const summary: unknown[] = [];
  for (const [key, list] of groups) {
    const [peer, entries] = key.split('|') as [string, string];
    const m = (f: (r: ReloadRound) => number | null) => {
      const values = list.map(f).filter((v): v is number => v !== null && Number.isFinite(v));
      return values.length === 0 ? null : median(values);
    };
    const never = (f: (r: ReloadRound) => number | null) =>
      list.some((r) => f(r) === null)
        ? `never (${(Math.max(...list.map((r) => r.observedMs)) / 1000).toFixed(0)} s watched)`
        : fmt.ms(m(f));
    const figures = {
      peer,
      entries: Number(entries),
      rounds: list.length,
      reloadWallMs: m((r) => r.reloadWallMs),
      loadMetricMs: m((r) => r.loadMetricMs),
      eventLoopMaxMs: m((r) => r.eventLoopMaxMs),
      probeP50BeforeMs: m((r) => r.probeP50BeforeMs),
      probeP99BeforeMs: m((r) => r.probeP99BeforeMs),
      probeP99DuringMs: m((r) => r.probeP99DuringMs),
      probeMaxDuringMs: m((r) => r.probeMaxDuringMs),
      newRefusedAfterMs: m((r) => r.newRefusedAfterMs),
      openCutAfterMs: m((r) => r.openCutAfterMs),
      raw: list,
    };
    summary.push(figures);
    rows.push([
      peer,
      Number(entries).toLocaleString('en-US'),
      peer === 'haproxy' ? 'no reload' : fmt.ms(figures.reloadWallMs),
      fmt.ms(figures.loadMetricMs),
      fmt.ms(figures.eventLoopMaxMs),
      `${fmt.ms(figures.probeP50BeforeMs)} / ${fmt.ms(figures.probeP99BeforeMs)}`,
      fmt.ms(figures.probeP99DuringMs),
      fmt.ms(figures.probeMaxDuringMs),
      never((r) => r.newRefusedAfterMs),
      never((r) => r.openCutAfterMs),
    ]);
  }
  return {
    id: 'crl-reload',
    title:
      '(f) CRL change: reload time, latency of a 1 ms client meanwhile, time to refuse a newly revoked cert',
    table: {
      columns: [
        'peer',
        'CRL entries',
        'reload wall ms',
        'load metric ms',
        'event loop worst delay ms',
        'probe p50/p99 before',
        'p99 during',
        'max during',
        'new conn refused after ms',
        'open conn cut after ms',
      ],
      rows,
    },
    ratios: [],
    notes: [
      'Change = the CRL file replaced by rename (the new CRL adds the victim serial), then SIGHUP to kube-crl-proxy (row "no SIGHUP": the file change alone, seen by the watcher); reload wall = change → log line `snapshot in force`; load metric = kube_crl_proxy_crl_last_load_duration_seconds; event loop worst delay = the longest interval of the 10 ms monitoring timer of the main thread less its shortest, from the change to the swap (nodejs_eventloop_lag_max_seconds − _min_seconds, scraped right before the change and right after).',
      'Probe: one keep-alive HTTP/1.1 client, next GET 1 ms after the previous was sent; "during" = requests overlapping the reload. The proxy and its CRL worker thread share core 0.',
      'New conn: a victim connection every 20 ms, refused = 401 or closed before an answer. Open conn: the victim keep-alive connection doing a GET every 10 ms.',
      'HAProxy reads crl-file only at start (or on a reload / runtime-API commit): after the same file change it keeps accepting and serving the revoked certificate.',
    ],
    data: summary,
  };
}
