/**
 * (j) Side by side: kube-crl-proxy and another peer measured in the same seconds. Both are
 * pinned to the proxy core, each has its own load generator on the load core, and the two
 * windows run at once, so the host's swings (other tenants moved HAProxy's own cost per
 * handshake by 30–60% within an hour) fall on both sides of every ratio instead of on one
 * window or the other. Which side's load starts first alternates from round to round.
 *
 * What it costs in fairness: the two processes share the core's caches, which costs the one
 * with the larger working set (V8's heap and compiled code, against HAProxy's C) more than it
 * would alone. Against node-tls-pipe, the same runtime, that cancels; against HAProxy the
 * figure leans against kube-crl-proxy. (a)–(c) measure each peer alone on its core, as it is
 * deployed; this scenario is the steadier figure of the two for telling small changes apart.
 */
import { median, standardError } from '../measure/stats.js';
import { LOAD_PATH } from '../peers/nginx-upstream.js';
import type { Peer, PeerName } from '../peers/types.js';
import type { Cell, Ratio, ScenarioResult } from '../report/results.js';
import type { BenchContext } from './context.js';
import { handshakeRound, requestRound } from './requests.js';
import { cpuPerOpOf, fmt, type Round, retryingOnce } from './throughput.js';

export interface SideBySide {
  readonly a: readonly Round[];
  readonly b: readonly Round[];
  /** a's CPU per operation ÷ b's, per round (rounds without both figures are left out). */
  readonly ratios: readonly number[];
}

/** `rounds` windows of `measure` on `a` and `b` at once; one retry of a round that failed. */
export async function measureSideBySide(
  ctx: BenchContext,
  label: string,
  a: Peer,
  b: Peer,
  rounds: number,
  measure: (peer: Peer) => Promise<Round>,
): Promise<SideBySide> {
  const result = { a: [] as Round[], b: [] as Round[], ratios: [] as number[] };
  /** Both windows; when one fails, the other is still waited for (a retry must run alone). */
  const both = async (r: number): Promise<[Round, Round]> => {
    const settled =
      r % 2 === 0
        ? await Promise.allSettled([measure(a), measure(b)])
        : (await Promise.allSettled([measure(b), measure(a)])).reverse();
    const [ra, rb] = settled;
    if (ra?.status === 'fulfilled' && rb?.status === 'fulfilled') return [ra.value, rb.value];
    throw [ra, rb].find((s) => s?.status === 'rejected')?.reason;
  };
  for (let r = 0; r < rounds; r++) {
    ctx.progress(`${label}: ${a.name} beside ${b.name}, round ${r + 1}/${rounds}`);
    const [ra, rb] = (await retryingOnce(ctx, label, () => both(r))).value;
    result.a.push(ra);
    result.b.push(rb);
    const [ua, ub] = [cpuPerOpOf(ra), cpuPerOpOf(rb)];
    if (ua !== null && ub !== null && ub > 0) result.ratios.push(ua / ub);
  }
  return result;
}

interface Pair {
  readonly load: string;
  readonly other: PeerName;
  readonly measure: (peer: Peer) => Promise<Round>;
}

export async function pairedScenario(
  ctx: BenchContext,
  peers: readonly Peer[],
): Promise<ScenarioResult> {
  const named = (name: PeerName) => {
    const peer = peers.find((p) => p.name === name);
    if (peer === undefined) throw new Error(`side by side: no ${name} peer`);
    return peer;
  };
  const proxy = named('kube-crl-proxy');
  const handshake = (peer: Peer) => handshakeRound(ctx, peer, null);
  const pairs: Pair[] = [
    { load: 'handshake only', other: 'haproxy', measure: handshake },
    { load: 'handshake only', other: 'node-tls-pipe', measure: handshake },
    {
      load: 'handshake + one GET',
      other: 'haproxy',
      measure: (peer) => handshakeRound(ctx, peer, LOAD_PATH),
    },
    {
      load: 'HTTP/1.1 keep-alive GET',
      other: 'haproxy',
      measure: (p) => requestRound(ctx, p, 'h1'),
    },
    { load: 'HTTP/2 GET', other: 'haproxy', measure: (p) => requestRound(ctx, p, 'h2') },
  ];
  const rounds = ctx.options.quick ? 4 : Math.max(4, 2 * ctx.options.rounds);
  const rows: Cell[][] = [];
  const ratios: Ratio[] = [];
  const data: unknown[] = [];
  for (const pair of pairs) {
    const other = named(pair.other);
    const measured = await measureSideBySide(
      ctx,
      `side by side, ${pair.load}`,
      proxy,
      other,
      rounds,
      pair.measure,
    );
    const cpu = (rs: readonly Round[]) =>
      median(rs.map(cpuPerOpOf).filter((v): v is number => v !== null));
    const ratio = measured.ratios.length === 0 ? null : median(measured.ratios);
    rows.push([
      pair.load,
      `÷ ${pair.other}`,
      fmt.us(cpu(measured.a)),
      fmt.us(cpu(measured.b)),
      fmt.ratio(ratio),
      measured.ratios.length === 0
        ? '—'
        : `${Math.min(...measured.ratios).toFixed(2)}–${Math.max(...measured.ratios).toFixed(2)}`,
      `±${standardError(measured.ratios).toFixed(3)}`,
    ]);
    if (ratio !== null && pair.other === 'haproxy')
      ratios.push({ label: `(j) side by side: ${pair.load}`, value: ratio });
    data.push({ load: pair.load, other: pair.other, ratio, ...measured });
  }
  return {
    id: 'paired',
    title: '(j) side by side: kube-crl-proxy and another peer served in the same seconds',
    table: {
      columns: [
        'load',
        'kube-crl-proxy',
        'its CPU µs/op',
        'other CPU µs/op',
        'ratio',
        'rounds',
        'std. error',
      ],
      rows,
    },
    ratios,
    notes: [
      `${rounds} rounds; each round runs both loads at once (the load of (a)–(c)), both peers on core 0, the generators on core 1; ratio: the median of the rounds' own ratios.`,
      'Sharing the core also shares its caches, which costs the larger working set (Node) more than it would alone: against node-tls-pipe that cancels; against HAProxy the ratio leans against kube-crl-proxy. (a)–(c) measure each peer alone on its core, as deployed.',
    ],
    data,
  };
}
