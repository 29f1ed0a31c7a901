/**
 * The soak (issue 8.6), kube-crl-proxy only: `--soak-minutes` (10; 1 with --quick) of a CRL
 * swap every 2 s, 1,000 watches held open by good users over HTTP/2 and HTTP/1.1 while the
 * fake apiserver changes pods at a steady rate, exec and port-forward sessions churning, and
 * new connections from good, revoked, unknown-CA and certificate-less clients. Each swap
 * revokes some "victims" whose sessions are open (they must be cut within 1 s); revocation is
 * permanent and no good user is ever in the CRL. Checks: zero unexpected stream drops, zero
 * fail-opens (a revoked or unknown client answered 2xx, or seen by the fake), every cut done
 * in time, every echo byte-identical, every event delivered, and a flat proxy RSS.
 * Not a CPU measurement: the proxy is pinned to its core as in the rest of the suite, but
 * everything else shares the load core.
 */
import { Authority } from '../../src/demo/pki-factory.js';
import type { LogLine } from '../../test/support/proxy-process.js';
import { LoadProcess } from '../load/ipc.js';
import type {
  RevokedArgs,
  SoakCert,
  SoakClientsConfig,
  SoakClientsResult,
  VictimReport,
} from '../load/soak-clients.js';
import { between, rssBytes, sample } from '../measure/proc.js';
import { metricValue, scrape } from '../measure/prometheus.js';
import { percentile } from '../measure/stats.js';
import { startFakeApiserverHost, WATCH_NAMESPACE } from '../peers/fake-apiserver.js';
import type { FakeAudit } from '../peers/fake-apiserver-host.js';
import { type KubeCrlProxyPeer, startKubeCrlProxy } from '../peers/kube-crl-proxy.js';
import type { Cell, ScenarioResult } from '../report/results.js';
import { PROXY_CORE } from '../support/cores.js';
import type { ClientCert } from '../support/pki.js';
import type { BenchContext } from './context.js';
import { fmt } from './throughput.js';

const SWAP_MS = 2_000;
/** Victims revoked per swap, in turn: some swaps add none (the CRL number still moves on). */
const REVOKE_PATTERN = [1, 0, 2, 1] as const;
/** Sequential serials every CRL carries besides the victims (never a real certificate's). */
const BASE_ENTRIES = 1_000;
const GOOD_USERS = 32;
const H2_WATCHES = 600;
const H1_WATCHES = 400;
const PODS = 10;
/** Where exec and port-forward go: Running all along (the changing pods flip to Pending). */
const STREAM_POD = 'shell';
const EVENTS_PER_SECOND = 4;
const RSS_EVERY_MS = 10_000;
/** A cut later than this after the CRL file changed is late (docs/revocation.md: within a second). */
const CUT_DEADLINE_MS = 1_000;
/** |RSS slope| at or under this is flat. */
const FLAT_MB_PER_MIN = 1;
const MIN_JUDGED_MINUTES = 5;
/** V8 sizes its heaps in the first minutes (218 → 238 MB in the first 2 min of a 10-min run). */
const RSS_SETTLE_MINUTES = 2;
export const MAX_SOAK_MINUTES = 45;

const epochNow = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

interface Swap {
  readonly index: number;
  readonly changedAt: number;
  /** Time of the proxy's `snapshot in force` line (null: none within 5 s). */
  readonly inForceAt: number | null;
  /** The load of that snapshot (its `inputs loaded` line): when it began, how long it took. */
  readonly loadStartedAt: number | null;
  readonly loadMs: number | null;
  readonly victims: readonly number[];
}

/** pino's ISO time of a log line, as epoch ms. */
function logTime(line: LogLine | undefined): number | null {
  return typeof line?.time === 'string' ? Date.parse(line.time) : null;
}

interface RssSample {
  readonly minutes: number;
  readonly mb: number;
}

const soakCert = (name: string, cert: ClientCert): SoakCert => ({
  name,
  certFile: cert.certFile,
  keyFile: cert.keyFile,
});

export async function soakScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const minutes = ctx.options.soakMinutes;
  const durationMs = minutes * 60_000;
  const swapCount = Math.floor(durationMs / SWAP_MS);
  const victimsAhead = 6;
  const revocations = Array.from(
    { length: swapCount },
    (_, i) => REVOKE_PATTERN[i % REVOKE_PATTERN.length] as number,
  ).reduce((a, b) => a + b, 0);
  ctx.progress(`soak: ${GOOD_USERS} good users, ${revocations + victimsAhead} victims`);
  const good = await Promise.all(
    Array.from({ length: GOOD_USERS }, (_, i) => ctx.pki.newUser(`soak-good-${i}`)),
  );
  const victims = await Promise.all(
    Array.from({ length: revocations + victimsAhead }, (_, i) =>
      ctx.pki.newUser(`soak-victim-${i}`),
    ),
  );
  const strangers = await Authority.create({ commonName: 'soak-unknown-ca' });
  const strangerIssued = await strangers.issue({
    commonName: 'soak-unknown',
    organizations: ['bench-group'],
  });
  const unknownCa: SoakCert = {
    name: 'soak-unknown',
    certFile: ctx.pki.test.write('soak-unknown.crt', strangerIssued.certPem),
    keyFile: ctx.pki.test.write('soak-unknown.key', strangerIssued.keyPem),
  };
  ctx.pki.installCrl(ctx.pki.buildCrl(BASE_ENTRIES));

  const apiserver = await startFakeApiserverHost(ctx.pki, PODS, {
    maxRecordedRequests: 20_000,
    streamPod: STREAM_POD,
  });
  let kcp: KubeCrlProxyPeer | null = null;
  let load: LoadProcess<SoakClientsConfig, SoakClientsResult> | null = null;
  try {
    kcp = await startKubeCrlProxy(ctx.build, ctx.pki, apiserver.url);
    const proxy = kcp;
    const config: SoakClientsConfig = {
      port: proxy.port,
      caFile: ctx.pki.servingCaFile,
      good: good.map((c, i) => soakCert(`soak-good-${i}`, c)),
      victims: victims.map((c, i) => soakCert(`soak-victim-${i}`, c)),
      unknownCa,
      namespace: WATCH_NAMESPACE,
      pod: STREAM_POD,
      h2Watches: H2_WATCHES,
      h1Watches: H1_WATCHES,
      streamsPerConnection: 10,
      execConcurrency: 3,
      portForwardConcurrency: 2,
      payloadBytes: 4 * 1024,
      probeIntervalMs: 100,
      victimsAhead,
    };
    load = LoadProcess.start<SoakClientsConfig, SoakClientsResult>('./soak-clients.js', config);
    const clients = load;
    ctx.progress(`soak: opening ${H2_WATCHES + H1_WATCHES} watches`);
    await clients.ready(120_000);
    await clients.command('go', undefined, 10_000);
    const changesAtStart = await apiserver.steady(EVENTS_PER_SECOND);
    const startedAt = epochNow();
    // prom-client resets its event-loop delay histogram at each scrape: this one starts it.
    await scrape(proxy.metricsUrl);
    const procAtStart = sample([proxy.pid]);
    const warmUpMs = Math.min(30_000, durationMs / 6);
    const rss: RssSample[] = [];
    let nextRssAt = startedAt + warmUpMs;
    const sampleRss = () => {
      rss.push({ minutes: (epochNow() - startedAt) / 60_000, mb: rssBytes(proxy.pid) / 1048576 });
    };

    const swaps: Swap[] = [];
    const revokedSerials: string[] = [];
    let generation = Math.max(
      0,
      ...proxy.logs.filter((l) => l.msg === 'snapshot in force').map((l) => Number(l.generation)),
    );
    ctx.progress(`soak: ${minutes} min, a CRL swap every ${SWAP_MS / 1000} s`);
    for (let i = 0; i < swapCount; i++) {
      await sleep(startedAt + (i + 1) * SWAP_MS - epochNow());
      const ready = (await clients.command('victims', undefined, 10_000)) as number[];
      const chosen = ready.slice(0, REVOKE_PATTERN[i % REVOKE_PATTERN.length]);
      for (const v of chosen) revokedSerials.push((victims[v] as ClientCert).serial);
      const commit = ctx.pki.stageCrl(ctx.pki.buildCrl(BASE_ENTRIES, revokedSerials));
      const after = generation;
      const changedAt = epochNow();
      commit();
      let inForce: LogLine | null = null;
      try {
        inForce = await proxy.waitForLog(
          (l) => l.msg === 'snapshot in force' && Number(l.generation) > after,
          5_000,
        );
        generation = Number(inForce.generation);
      } catch {
        // Counted below as a swap without effect.
      }
      const loaded =
        inForce === null
          ? undefined
          : proxy.logs.findLast(
              (l) => l.msg === 'inputs loaded' && Number(l.generation) === generation,
            );
      const loadMs = loaded === undefined ? null : Number(loaded.loadSeconds) * 1000;
      const loadedAt = logTime(loaded);
      swaps.push({
        index: i,
        changedAt,
        inForceAt: logTime(inForce ?? undefined),
        loadStartedAt: loadedAt === null || loadMs === null ? null : loadedAt - loadMs,
        loadMs,
        victims: chosen,
      });
      const revoked: RevokedArgs = { victims: chosen };
      await clients.command('revoked', revoked, 10_000);
      if (epochNow() >= nextRssAt) {
        sampleRss();
        nextRssAt += RSS_EVERY_MS;
      }
      if ((i + 1) % 30 === 0)
        ctx.progress(`soak: ${i + 1}/${swapCount} swaps, ${revokedSerials.length} revoked`);
    }
    sampleRss();
    const window = between(procAtStart, sample([proxy.pid]));
    const proxyCpu = window.cpu.get(proxy.pid) ?? Number.NaN;
    const wallSeconds = (epochNow() - startedAt) / 1000;
    const core0Other = Math.max(0, (window.coreBusy[PROXY_CORE] ?? 0) - proxyCpu / window.seconds);
    const metricsAtEnd = await scrape(proxy.metricsUrl);
    const lag = (stat: string) => metricValue(metricsAtEnd, `nodejs_eventloop_lag_${stat}_seconds`);
    const eventLoopLagMs = {
      p99: (lag('p99') ?? Number.NaN) * 1000,
      max: (lag('max') ?? Number.NaN) * 1000,
    };
    const changes = (await apiserver.steady(0)) - changesAtStart;
    // The last events reach every watch before the clients stop counting.
    await sleep(1_000);
    clients.send({ type: 'command', name: 'stop' });
    const result = await clients.done(60_000);
    const audit = await apiserver.audit();
    const closedMetric = metricValue(
      metricsAtEnd,
      'kube_crl_proxy_revoked_connections_closed_total',
    );
    return soakResult({
      minutes,
      wallSeconds,
      swaps,
      rss,
      proxyCpu,
      core0Other,
      eventLoopLagMs,
      changes,
      result,
      audit,
      closedMetric,
      victimNames: victims.map((_, i) => `soak-victim-${i}`),
    });
  } finally {
    await load?.stop();
    await kcp?.stop();
    await apiserver.stop();
  }
}

interface SoakFigures {
  readonly minutes: number;
  readonly wallSeconds: number;
  readonly swaps: readonly Swap[];
  readonly rss: readonly RssSample[];
  readonly proxyCpu: number;
  /** Share of the proxy's core used by other processes (the machine is shared). */
  readonly core0Other: number;
  /** The proxy's event-loop delay over the run (prom-client's default metrics). */
  readonly eventLoopLagMs: { readonly p99: number; readonly max: number };
  readonly changes: number;
  readonly result: SoakClientsResult;
  readonly audit: FakeAudit;
  readonly closedMetric: number | null;
  readonly victimNames: readonly string[];
}

/** Least-squares slope of y over x. */
function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

interface CutCheck {
  readonly victim: number;
  readonly kind: string;
  readonly afterChangeMs: number | null;
  readonly afterInForceMs: number | null;
}

function soakResult(f: SoakFigures): ScenarioResult {
  const problems: string[] = [];
  const { result, audit } = f;
  const revokedAt = new Map<number, Swap>();
  for (const swap of f.swaps) for (const v of swap.victims) revokedAt.set(v, swap);

  // Victims: cut after their swap, never before, never missed.
  const cuts: CutCheck[] = [];
  let victimDrops = 0;
  const victimDropExamples: string[] = [];
  for (const v of result.victims as VictimReport[]) {
    const swap = revokedAt.get(v.index);
    if (swap === undefined) continue;
    if (v.endedAt !== null && v.endedAt < swap.changedAt) {
      victimDrops++;
      victimDropExamples.push(
        `victim ${v.index} (${v.kind}) ended ${(swap.changedAt - v.endedAt).toFixed(0)} ms before its revocation`,
      );
      continue;
    }
    cuts.push({
      victim: v.index,
      kind: v.kind,
      afterChangeMs: v.endedAt === null ? null : v.endedAt - swap.changedAt,
      afterInForceMs:
        v.endedAt === null || swap.inForceAt === null ? null : v.endedAt - swap.inForceAt,
    });
  }
  // Victims not (yet) revoked that ended anyway are unexpected drops too.
  for (const v of result.victims) {
    if (revokedAt.has(v.index) || v.openedAt === null || v.endedAt === null) continue;
    victimDrops++;
    victimDropExamples.push(`victim ${v.index} (${v.kind}) ended before any revocation`);
  }
  const cutTimes = cuts
    .map((c) => c.afterChangeMs)
    .filter((t): t is number => t !== null)
    .sort((a, b) => a - b);
  const missedCuts = cuts.filter((c) => c.afterChangeMs === null);
  const lateCuts = cuts.filter(
    (c) => c.afterChangeMs !== null && c.afterChangeMs > CUT_DEADLINE_MS,
  );
  const effects = f.swaps
    .map((s) => (s.inForceAt === null ? null : s.inForceAt - s.changedAt))
    .filter((t): t is number => t !== null)
    .sort((a, b) => a - b);
  const swapsWithoutEffect = f.swaps.filter((s) => s.inForceAt === null).length;
  const sorted = (values: ReadonlyArray<number | null>) =>
    values.filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  const cutAfterInForce = sorted(cuts.map((c) => c.afterInForceMs));
  const detection = sorted(
    f.swaps.map((s) => (s.loadStartedAt === null ? null : s.loadStartedAt - s.changedAt)),
  );
  const loads = sorted(f.swaps.map((s) => s.loadMs));
  const spread = (values: readonly number[]) =>
    `${fmt.ms(percentile(values, 50))} / ${fmt.ms(percentile(values, 99))} / ${fmt.ms(values[values.length - 1] ?? null)}`;
  const figures = (values: readonly number[]) => ({
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: values[values.length - 1] ?? null,
  });

  // Fail-opens: revoked or unknown clients answered 2xx, or seen by the fake at all.
  const revokedProbes = result.probes.revoked;
  const unknownProbes = result.probes.unknown;
  const revokedSeenTwice = [...revokedAt.keys()].filter(
    (v) => (audit.byUser[f.victimNames[v] ?? ''] ?? 0) > 1,
  ).length;
  const failOpens =
    (revokedProbes?.failOpen ?? 0) +
    (unknownProbes?.failOpen ?? 0) +
    (audit.probes.revoked ?? 0) +
    (audit.probes.unknown ?? 0) +
    (audit.byUser['soak-unknown'] ?? 0) +
    revokedSeenTwice;
  const identityErrors = audit.anonymousWithIdentity + audit.probeIdentityMismatches;
  const probeUnexpected = Object.values(result.probes).reduce((a, p) => a + p.unexpected, 0);
  const unexpectedDrops =
    result.watchDrops + result.exec.dropped + result.portForward.dropped + victimDrops;
  const watchCount = result.watchesAtStart;
  const eventsMissing = Math.max(0, f.changes * watchCount - result.events);

  const rssSlope = slope(f.rss.map((s) => [s.minutes, s.mb] as const));
  // V8's heap grows and is collected in a sawtooth (period ~2–3 min here) much taller than a
  // slow leak: what tells a leak is the floor after collections. Compare the lowest sample of
  // each half of the run after the heaps have sized themselves (RSS_SETTLE_MINUTES); each half
  // is longer than the sawtooth, so each holds a collection.
  const settled = f.rss.filter((s) => s.minutes >= RSS_SETTLE_MINUTES);
  const mid = (RSS_SETTLE_MINUTES + (settled[settled.length - 1]?.minutes ?? 0)) / 2;
  const lowest = (list: readonly RssSample[]) =>
    list.reduce<RssSample | null>((low, s) => (low === null || s.mb < low.mb ? s : low), null);
  const floorEarly = lowest(settled.filter((s) => s.minutes < mid));
  const floorLate = lowest(settled.filter((s) => s.minutes >= mid));
  const floorSlope =
    floorEarly === null || floorLate === null
      ? Number.NaN
      : (floorLate.mb - floorEarly.mb) / (mid - RSS_SETTLE_MINUTES);
  const rssFirst = f.rss[0]?.mb ?? Number.NaN;
  const rssLast = f.rss[f.rss.length - 1]?.mb ?? Number.NaN;
  const rssMax = Math.max(...f.rss.map((s) => s.mb));
  // Shorter runs are mostly warm-up (V8 sizing its heaps): too short to call a trend.
  const rssJudged = f.minutes >= MIN_JUDGED_MINUTES;
  const rssFlat = Math.abs(floorSlope) <= FLAT_MB_PER_MIN;

  if (unexpectedDrops > 0) problems.push(`${unexpectedDrops} unexpected stream drops`);
  if (failOpens > 0) problems.push(`${failOpens} fail-opens`);
  if (identityErrors > 0) problems.push(`${identityErrors} requests with a wrong identity`);
  if (missedCuts.length > 0) problems.push(`${missedCuts.length} revoked sessions never cut`);
  if (lateCuts.length > 0)
    problems.push(`${lateCuts.length} cuts later than ${CUT_DEADLINE_MS} ms after the swap`);
  if (swapsWithoutEffect > 0) problems.push(`${swapsWithoutEffect} swaps never in force`);
  if (result.exec.failed + result.portForward.failed > 0)
    problems.push(
      `${result.exec.failed} exec and ${result.portForward.failed} port-forward sessions failed`,
    );
  if (probeUnexpected > 0) problems.push(`${probeUnexpected} probes answered unexpectedly`);
  if (eventsMissing > 0) problems.push(`${eventsMissing} watch events missing`);
  if (result.watchesOpenAtEnd < watchCount)
    problems.push(`${watchCount - result.watchesOpenAtEnd} watches lost`);
  if (rssJudged && !rssFlat)
    problems.push(`RSS floor not flat: ${floorSlope.toFixed(2)} MB/min over the run`);
  const verdict = problems.length === 0 ? 'PASS' : 'FAIL';

  const probe = (kind: string) => {
    const p = result.probes[kind];
    return p === undefined
      ? '—'
      : `${p.attempts} (as expected ${p.ok}, fail-open ${p.failOpen}, other ${p.unexpected})`;
  };
  const sessions = (s: SoakClientsResult['exec']) =>
    `${s.completed} completed, ${s.failed} failed, ${s.dropped} dropped (${fmt.mb(s.bytes)} MB echoed both ways)`;
  const rows: Cell[][] = [
    ['verdict', verdict],
    ['duration', `${(f.wallSeconds / 60).toFixed(1)} min (${f.minutes} asked)`],
    ['CRL swaps done', `${f.swaps.length} (without effect: ${swapsWithoutEffect})`],
    ['swap → snapshot in force ms (p50 / p99 / max)', spread(effects)],
    ['  rename → CRL load starts ms (p50 / p99 / max)', spread(detection)],
    ['  CRL load ms (p50 / p99 / max)', spread(loads)],
    ['swap → revoked session cut ms (p50 / p99 / max)', spread(cutTimes)],
    ['snapshot in force → cut ms (p50 / p99 / max)', spread(cutAfterInForce)],
    [
      'expected cuts: done / late (>1 s) / missed',
      `${cutTimes.length} / ${lateCuts.length} / ${missedCuts.length} of ${cuts.length} revoked sessions`,
    ],
    ['watches open: start → end', `${watchCount} → ${result.watchesOpenAtEnd}`],
    ['unexpected stream drops', unexpectedDrops],
    [
      '  of which watches / exec / port-forward / victims early',
      `${result.watchDrops} / ${result.exec.dropped} / ${result.portForward.dropped} / ${victimDrops}`,
    ],
    ['fail-opens', failOpens],
    ['wrong identity upstream', identityErrors],
    ['exec sessions (cat echo, WebSocket v5)', sessions(result.exec)],
    ['port-forward sessions (SPDY/3.1 echo)', sessions(result.portForward)],
    [
      'events delivered (missing)',
      `${result.events.toLocaleString('en-US')} of ${f.changes} changes × ${watchCount} watches (${eventsMissing})`,
    ],
    ['events per watch min / max', `${result.minEventsPerWatch} / ${result.maxEventsPerWatch}`],
    ['probes good', probe('good')],
    ['probes revoked', probe('revoked')],
    ['probes unknown CA', probe('unknown')],
    ['probes no cert (anonymous)', probe('anonymous')],
    [
      'proxy RSS MB: after warm-up / end / max',
      `${rssFirst.toFixed(1)} / ${rssLast.toFixed(1)} / ${rssMax.toFixed(1)}`,
    ],
    ['proxy RSS slope MB/min, linear fit of every sample', rssSlope.toFixed(2)],
    [
      `proxy RSS floor MB, lowest of each half after ${RSS_SETTLE_MINUTES} min`,
      `${floorEarly?.mb.toFixed(1) ?? '—'} → ${floorLate?.mb.toFixed(1) ?? '—'}`,
    ],
    [
      'proxy RSS floor slope MB/min (late − early floor ÷ half)',
      `${floorSlope.toFixed(2)} (${rssJudged ? (rssFlat ? 'flat' : 'GROWING') : 'not judged: too short'}; flat = |slope| ≤ ${FLAT_MB_PER_MIN})`,
    ],
    ['proxy CPU (share of its core)', fmt.pct(f.proxyCpu / f.wallSeconds)],
    ['core 0 used by other processes', fmt.pct(f.core0Other)],
    [
      'proxy event-loop delay ms (p99 / max)',
      `${fmt.ms(f.eventLoopLagMs.p99)} / ${fmt.ms(f.eventLoopLagMs.max)}`,
    ],
    ['revoked_connections_closed_total', f.closedMetric],
  ];
  const examples = [
    ...result.watchDropExamples,
    ...victimDropExamples.slice(0, 5),
    ...result.exec.examples.map((e) => `exec: ${e}`),
    ...result.portForward.examples.map((e) => `port-forward: ${e}`),
    ...Object.values(result.probes).flatMap((p) => p.examples),
    ...lateCuts
      .slice(0, 5)
      .map((c) => `late cut: victim ${c.victim} (${c.kind}) ${c.afterChangeMs?.toFixed(0)} ms`),
    ...missedCuts.slice(0, 5).map((c) => `missed cut: victim ${c.victim} (${c.kind})`),
  ];
  return {
    id: 'soak',
    title: `(soak) ${f.minutes} min, a CRL swap every ${SWAP_MS / 1000} s, ${H2_WATCHES + H1_WATCHES} watches, exec/port-forward churn, mixed clients — kube-crl-proxy only: ${verdict}`,
    table: { columns: ['figure', 'value'], rows },
    ratios: [],
    notes: [
      ...problems.map((p) => `FAIL: ${p}`),
      ...examples.map((e) => `example: ${e}`),
      `Each swap: the cluster CA's CRL (${BASE_ENTRIES} filler serials + every victim revoked so far, next CRL number) written beside the file and renamed over it; no SIGHUP (the file watcher's path). Victims revoked per swap cycle ${REVOKE_PATTERN.join(', ')}; each had one open session (HTTP/2 watch, HTTP/1.1 watch or WebSocket exec); a cut counts from the rename.`,
      `Watches: ${H2_WATCHES} over HTTP/2 (10 per connection) and ${H1_WATCHES} over HTTP/1.1, ${GOOD_USERS} good users; the fake changes a pod ${EVENTS_PER_SECOND}×/s. Churn: 3 exec + 2 port-forward sessions at all times, 4 KB each. Probes: a new connection every 100 ms (good → 200, revoked → 401 naming the revocation, unknown CA → refused, no cert → 200 as system:anonymous without X-Remote-* headers); the fake's own record is audited.`,
      'HAProxy is not run: it reads its crl-file only at start, so it cannot revoke hot (see the reload scenario). Not a CPU measurement: only the proxy has its own core.',
    ],
    data: {
      verdict,
      problems,
      minutes: f.minutes,
      wallSeconds: f.wallSeconds,
      swaps: f.swaps.length,
      swapsWithoutEffect,
      swapToInForceMs: {
        p50: percentile(effects, 50),
        p99: percentile(effects, 99),
        max: effects[effects.length - 1] ?? null,
      },
      swapToCutMs: {
        p50: percentile(cutTimes, 50),
        p99: percentile(cutTimes, 99),
        max: cutTimes[cutTimes.length - 1] ?? null,
      },
      cuts: {
        expected: cuts.length,
        done: cutTimes.length,
        late: lateCuts.length,
        missed: missedCuts.length,
      },
      unexpectedDrops,
      failOpens,
      identityErrors,
      eventsMissing,
      changes: f.changes,
      rss: {
        samples: f.rss,
        slopeMbPerMin: rssSlope,
        floorSlopeMbPerMin: floorSlope,
        floorEarly,
        floorLate,
        judged: rssJudged,
        flat: rssFlat,
      },
      renameToLoadStartMs: figures(detection),
      loadMs: figures(loads),
      inForceToCutMs: figures(cutAfterInForce),
      swapsDetail: f.swaps,
      proxyCpuShare: f.proxyCpu / f.wallSeconds,
      core0OtherShare: f.core0Other,
      eventLoopLagMs: f.eventLoopLagMs,
      revokedConnectionsClosedTotal: f.closedMetric,
      clients: { ...result, victims: undefined },
      audit: { ...audit, byUser: undefined, users: Object.keys(audit.byUser).length },
      cutsDetail: cuts,
    },
    verdict,
  };
}
