/**
 * The shape shared by the request and connection scenarios: the same load against each
 * peer, round-robin for `rounds` rounds (so the machine's noise spreads over every peer; odd
 * rounds take the peers in reverse order, so none always comes first or last), CPU of the
 * proxy process per operation, throughput and latency, medians of the rounds. Ratios to
 * HAProxy are medians of each round's ratio (see ratioToHaproxy).
 */
import { median, spread } from '../measure/stats.js';
import { PEER_NAMES, type Peer, type PeerName } from '../peers/types.js';
import type { Cell, Ratio, ScenarioResult } from '../report/results.js';
import type { BenchContext } from './context.js';

export interface Round {
  readonly ops: number;
  readonly seconds: number;
  /** CPU seconds of the peer's process in the window (null for the direct path). */
  readonly proxyCpuSeconds: number | null;
  readonly coreBusy: readonly number[];
  readonly generatorCpuSeconds: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly failed: number;
  /** The first attempt failed (its error is in the progress log). */
  readonly retried?: boolean;
}

/** What the proxy-side sampling of a measurement window holds (measure/proc.ts). */
interface SampledWindow {
  readonly cpu: ReadonlyMap<number, number>;
  readonly coreBusy: readonly number[];
}

/** A round: what the load measured, with the peer's CPU and the cores' use in its window. */
export function roundFromWindow(
  peer: Peer,
  window: SampledWindow,
  measured: Omit<Round, 'proxyCpuSeconds' | 'coreBusy' | 'retried'>,
): Round {
  return {
    ...measured,
    proxyCpuSeconds: peer.pid === null ? null : (window.cpu.get(peer.pid) ?? null),
    coreBusy: window.coreBusy,
  };
}

export interface PeerFigures {
  readonly peer: PeerName;
  readonly cpuPerOpUs: number | null;
  readonly opsPerSecond: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** The proxy's own CPU as a fraction of its core. */
  readonly proxyBusy: number;
  /** Core 0 time used by other processes of the machine (interference). */
  readonly otherOnProxyCore: number;
  readonly loadCoreBusy: number;
  readonly generatorCpuPerOpUs: number;
  readonly failed: number;
  readonly cpuSpread: number;
  readonly flags: readonly string[];
  readonly rounds: readonly Round[];
}

/** Above this busy fraction a core counts as saturated. */
const SATURATED = 0.9;
/** Other processes' share of the proxy core above which the round is flagged. */
const INTERFERENCE = 0.1;
/** Round-to-round spread of the CPU figure above which it is flagged as noisy. */
const NOISY = 0.15;

export async function measurePeers(
  ctx: BenchContext,
  label: string,
  peers: readonly Peer[],
  measure: (peer: Peer) => Promise<Round>,
): Promise<PeerFigures[]> {
  const rounds = new Map<PeerName, Round[]>(peers.map((p) => [p.name, []]));
  for (let r = 0; r < ctx.options.rounds; r++) {
    for (const peer of r % 2 === 0 ? peers : [...peers].reverse()) {
      ctx.progress(`${label}: ${peer.name}, round ${r + 1}/${ctx.options.rounds}`);
      rounds.get(peer.name)?.push(await measureWithRetry(ctx, label, peer, measure));
    }
  }
  return peers.map((peer) => figures(peer.name, rounds.get(peer.name) ?? []));
}

/**
 * `attempt()`, and once more when it throws: a load process lost to the shared machine should
 * not sink the whole run. `retried`: the value is the second attempt's.
 */
export async function retryingOnce<T>(
  ctx: BenchContext,
  what: string,
  attempt: () => Promise<T>,
): Promise<{ value: T; retried: boolean }> {
  try {
    return { value: await attempt(), retried: false };
  } catch (err) {
    ctx.progress(`${what}: ${err instanceof Error ? err.message : String(err)}; retrying once`);
    return { value: await attempt(), retried: true };
  }
}

async function measureWithRetry(
  ctx: BenchContext,
  label: string,
  peer: Peer,
  measure: (peer: Peer) => Promise<Round>,
): Promise<Round> {
  const { value, retried } = await retryingOnce(ctx, `${label}: ${peer.name}`, () => measure(peer));
  return retried ? { ...value, retried } : value;
}

/** The proxy's CPU µs per operation in one round; null without a figure (the direct path). */
export function cpuPerOpOf(round: Round): number | null {
  return round.proxyCpuSeconds === null || round.ops === 0
    ? null
    : (round.proxyCpuSeconds / round.ops) * 1e6;
}

function figures(peer: PeerName, rounds: readonly Round[]): PeerFigures {
  const cpuPerOp = rounds.map(cpuPerOpOf).filter((v): v is number => v !== null);
  const m = (f: (r: Round) => number | null) => {
    const values = rounds.map(f).filter((v): v is number => v !== null && Number.isFinite(v));
    return values.length === 0 ? null : median(values);
  };
  const loadCoreBusy = m((r) => r.coreBusy[1] ?? 0) ?? 0;
  const proxyBusy = m((r) => (r.proxyCpuSeconds === null ? 0 : r.proxyCpuSeconds / r.seconds)) ?? 0;
  const otherOnProxyCore =
    m((r) => Math.max(0, (r.coreBusy[0] ?? 0) - (r.proxyCpuSeconds ?? 0) / r.seconds)) ?? 0;
  const failed = rounds.reduce((sum, r) => sum + r.failed, 0);
  const flags: string[] = [];
  if (peer === 'direct') flags.push('floor');
  else if (loadCoreBusy >= SATURATED && proxyBusy < SATURATED) flags.push('load-bound');
  if (otherOnProxyCore > INTERFERENCE) flags.push('shared-core');
  if (cpuPerOp.length > 1 && spread(cpuPerOp) > NOISY) flags.push('noisy');
  if (failed > 0) flags.push('errors');
  if (rounds.some((r) => r.retried)) flags.push('retried');
  return {
    peer,
    cpuPerOpUs: cpuPerOp.length === 0 ? null : median(cpuPerOp),
    opsPerSecond: m((r) => r.ops / r.seconds) ?? 0,
    p50Ms: m((r) => r.p50Ms),
    p99Ms: m((r) => r.p99Ms),
    proxyBusy,
    otherOnProxyCore,
    loadCoreBusy,
    generatorCpuPerOpUs: m((r) => (r.generatorCpuSeconds / r.ops) * 1e6) ?? Number.NaN,
    failed,
    cpuSpread: cpuPerOp.length > 1 ? spread(cpuPerOp) : 0,
    flags,
    rounds,
  };
}

/**
 * A peer's CPU per operation ÷ HAProxy's: the median of the rounds' ratios. Within a round the
 * two windows run back to back, so the host's slow swings (other tenants of the machine move
 * HAProxy's own figure by 30% within minutes) cancel in each ratio; a ratio of the two medians
 * would compare windows minutes apart.
 */
export function ratioToHaproxy(all: readonly PeerFigures[], peer: PeerName): number | null {
  const ours = all.find((f) => f.peer === peer)?.rounds;
  const theirs = all.find((f) => f.peer === 'haproxy')?.rounds;
  if (ours === undefined || theirs === undefined) return null;
  const ratios: number[] = [];
  ours.forEach((round, i) => {
    const a = cpuPerOpOf(round);
    const b = theirs[i] === undefined ? null : cpuPerOpOf(theirs[i] as Round);
    if (a !== null && b !== null && b > 0) ratios.push(a / b);
  });
  return ratios.length === 0 ? null : median(ratios);
}

export const fmt = {
  us: (v: number | null) =>
    v === null || !Number.isFinite(v) ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(1),
  ms: (v: number | null) =>
    v === null || !Number.isFinite(v) ? '—' : v >= 10 ? v.toFixed(1) : v.toFixed(2),
  rate: (v: number | null) =>
    v === null || !Number.isFinite(v) ? '—' : v >= 100 ? Math.round(v).toString() : v.toFixed(1),
  pct: (v: number) => `${Math.round(v * 100)}%`,
  ratio: (v: number | null) => (v === null || !Number.isFinite(v) ? '—' : `${v.toFixed(2)}×`),
  mb: (bytes: number) => (bytes / 1048576).toFixed(1),
};

/** The standard table of a throughput scenario. */
export function throughputResult(
  id: string,
  title: string,
  unit: string,
  all: readonly PeerFigures[],
  notes: readonly string[],
  cpuUnit: 'µs' | 'ms' = 'µs',
): ScenarioResult {
  const scale = cpuUnit === 'ms' ? 1e-3 : 1;
  const ordered = PEER_NAMES.map((n) => all.find((f) => f.peer === n)).filter(
    (f): f is PeerFigures => f !== undefined,
  );
  const rows: Cell[][] = ordered.map((f) => [
    f.peer,
    f.cpuPerOpUs === null
      ? '—'
      : cpuUnit === 'ms'
        ? fmt.ms(f.cpuPerOpUs * scale)
        : fmt.us(f.cpuPerOpUs),
    f.peer === 'direct' ? '—' : fmt.ratio(ratioToHaproxy(all, f.peer)),
    fmt.rate(f.opsPerSecond),
    fmt.ms(f.p50Ms),
    fmt.ms(f.p99Ms),
    f.peer === 'direct' ? '—' : fmt.pct(f.proxyBusy),
    fmt.pct(f.otherOnProxyCore),
    fmt.pct(f.loadCoreBusy),
    fmt.us(f.generatorCpuPerOpUs),
    f.flags.join(',') || 'ok',
  ]);
  const ratio = ratioToHaproxy(all, 'kube-crl-proxy');
  const ratios: Ratio[] = ratio === null ? [] : [{ label: title, value: ratio }];
  return {
    id,
    title,
    table: {
      columns: [
        'peer',
        `CPU ${cpuUnit}/${unit}`,
        'vs HAProxy',
        `${unit}s/s`,
        'p50 ms',
        'p99 ms',
        'proxy CPU',
        'core0 other',
        'core1 busy',
        `gen CPU µs/${unit}`,
        'flags',
      ],
      rows,
    },
    ratios,
    notes,
    data: ordered,
  };
}
