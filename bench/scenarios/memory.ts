/**
 * (g) Memory: RSS at start, per 10k idle client connections (TLS with a client certificate,
 * handshake done, no request yet) and per 1M revoked serials; with 1M serials in force, the CPU
 * cost of a new mTLS connection too (OpenSSL checks a CRL given to it on every handshake).
 * node-tls-pipe, run with kube-crl-proxy's own node flags, is the floor of a Node TLS server.
 */
import { binLauncher } from '../../test/support/proxy-process.js';
import type { IdleConfig, IdleInfo } from '../load/idle-connections.js';
import { LoadProcess } from '../load/ipc.js';
import { runSTime } from '../load/s-time.js';
import { rssBytes } from '../measure/proc.js';
import { median } from '../measure/stats.js';
import { startHaproxy } from '../peers/haproxy.js';
import { type KubeCrlProxyPeer, startKubeCrlProxy } from '../peers/kube-crl-proxy.js';
import { startNginxUpstream } from '../peers/nginx-upstream.js';
import { startNodePipe } from '../peers/node-pipe.js';
import type { Peer } from '../peers/types.js';
import type { Cell, ScenarioResult } from '../report/results.js';
import type { BenchContext } from './context.js';
import { fmt } from './throughput.js';

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Idle connections stay open for the whole measurement, as under HAProxy's `timeout client
 * 600s`: opening 9,000 of them on a busy machine can take longer than the 60 s a client has by
 * default to send its first request head.
 */
const KCP_IDLE_ARGS = ['--http-header-timeout=10m', '--http-idle-timeout=10m'];

const PEERS = ['kube-crl-proxy', 'haproxy', 'node-tls-pipe'] as const;
type MemoryPeer = (typeof PEERS)[number];

/**
 * The key exchange groups the idle clients offer. `X25519`: what HAProxy's OpenSSL 3.0 settles
 * on whatever the client offers, so the three peers do the same work. The runtime's default
 * (Node 26: X25519MLKEM768 first, as Go 1.24+ clients such as recent kubectl): the hybrid
 * post-quantum exchange, which a server on OpenSSL 3.5 accepts and HAProxy 2.6 cannot.
 */
interface KeyExchange {
  readonly id: 'x25519' | 'default';
  /** What the client offers (OpenSSL's list syntax); undefined: its runtime's default. */
  readonly groups: string | undefined;
}
const X25519: KeyExchange = { id: 'x25519', groups: 'X25519' };
const CLIENT_DEFAULT: KeyExchange = { id: 'default', groups: undefined };

async function idleConnectionsRss(
  peer: Peer,
  ctx: BenchContext,
  count: number,
  groups: string | undefined,
): Promise<number> {
  const pid = peer.pid as number;
  await settle(500);
  const before = rssBytes(pid);
  const config: IdleConfig = {
    identity: {
      port: peer.port,
      certFile: peer.client.certFile,
      keyFile: peer.client.keyFile,
      caFile: ctx.pki.servingCaFile,
    },
    count,
    parallel: 50,
    ...(groups === undefined ? {} : { groups }),
  };
  const load = LoadProcess.start<IdleConfig, never>('./idle-connections.js', config);
  try {
    const info = (await load.ready(180_000)) as IdleInfo;
    if (info.open < count)
      throw new Error(
        `${peer.name}: only ${info.open} of ${count} idle connections opened (${info.failed} failed)`,
      );
    await settle(1_000);
    return ((rssBytes(pid) - before) / count) * 10_000;
  } finally {
    await load.stop();
  }
}

/** The exchanges each peer is measured with: HAProxy's OpenSSL has no hybrid one. */
/** --quick measures X25519 only, the figure the ratio to HAProxy uses. */
function keyExchangesOf(peer: MemoryPeer, quick: boolean): readonly KeyExchange[] {
  return peer === 'haproxy' || quick ? [X25519] : [X25519, CLIENT_DEFAULT];
}

export async function memoryScenario(ctx: BenchContext): Promise<ScenarioResult> {
  // HAProxy needs 2 fds per connection and refuses a maxconn the fd limit (20000 here) cannot hold.
  const count = ctx.options.quick ? 1_000 : 9_000;
  // Memory figures vary little between rounds; --quick keeps one to stay under 3 minutes.
  const rounds = ctx.options.quick ? 1 : Math.min(ctx.options.rounds, 3);
  ctx.pki.installCrl(ctx.pki.buildCrl(0));
  const nginx = await startNginxUpstream(ctx.pki);
  const launcher = binLauncher(ctx.build.bin);
  const start = (name: MemoryPeer): Promise<Peer> =>
    name === 'haproxy'
      ? startHaproxy(ctx.pki, { upstreamPort: nginx.port, maxconn: count + 500 })
      : name === 'node-tls-pipe'
        ? startNodePipe(ctx.pki, nginx.port, ctx.build.node, launcher)
        : startKubeCrlProxy(ctx.build, ctx.pki, nginx.url, KCP_IDLE_ARGS);
  const perPeer = <T>(make: () => T) =>
    Object.fromEntries(PEERS.map((p) => [p, make()])) as Record<MemoryPeer, T>;
  const perConn = perPeer(() => ({ x25519: [] as number[], default: [] as number[] }));
  const baseRss = perPeer(() => [] as number[]);
  const perMillion = { 'kube-crl-proxy': [] as number[], haproxy: [] as number[] };
  const perMillionAgain: number[] = [];
  const handshakeMs = { 'kube-crl-proxy': [] as number[], haproxy: [] as number[] };
  const stSeconds = ctx.options.quick ? 1 : 3;
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? PEERS : [...PEERS].reverse();
      for (const name of order) {
        for (const { id, groups } of keyExchangesOf(name, ctx.options.quick)) {
          ctx.progress(
            `memory: ${count} idle connections (${groups ?? "client's default groups"}), ${name}, round ${r + 1}/${rounds}`,
          );
          const peer = await start(name);
          try {
            await settle(1_000);
            if (id === 'x25519') baseRss[name].push(rssBytes(peer.pid ?? 0));
            perConn[name][id].push(await idleConnectionsRss(peer, ctx, count, groups));
          } finally {
            await peer.stop();
          }
        }
      }
    }
    ctx.progress('memory: building the 1M-entry CRLs');
    // In this order: a reload to a CRL with a lower CRL number is a refused rollback.
    const emptyCrl = ctx.pki.buildCrl(0);
    const bigCrl = ctx.pki.buildCrl(1_000_000);
    const otherBigCrl = ctx.pki.buildCrl(1_000_000);
    for (let r = 0; r < rounds; r++) {
      ctx.progress(`memory: 1M revoked serials, round ${r + 1}/${rounds}`);
      // kube-crl-proxy: the same process before and after a reload to 1M serials, then after a
      // reload to another 1M (what a daily CRL renewal does).
      ctx.pki.installCrl(emptyCrl);
      const kcp = await startKubeCrlProxy(ctx.build, ctx.pki, nginx.url);
      try {
        await settle(1_000);
        const before = rssBytes(kcp.pid);
        await reloadTo(ctx, kcp, bigCrl);
        perMillion['kube-crl-proxy'].push(rssBytes(kcp.pid) - before);
        handshakeMs['kube-crl-proxy'].push(await handshakeCpuMs(ctx, kcp, stSeconds));
        await reloadTo(ctx, kcp, otherBigCrl);
        perMillionAgain.push(rssBytes(kcp.pid) - before);
      } finally {
        await kcp.stop();
      }
      // HAProxy loads crl-file at start only: one process with each CRL.
      const rss: number[] = [];
      for (const crl of [emptyCrl, bigCrl]) {
        ctx.pki.installCrl(crl);
        const haproxy = await startHaproxy(ctx.pki, { upstreamPort: nginx.port });
        try {
          await settle(1_000);
          rss.push(rssBytes(haproxy.pid as number));
          if (crl === bigCrl)
            handshakeMs.haproxy.push(await handshakeCpuMs(ctx, haproxy, stSeconds));
        } finally {
          await haproxy.stop();
        }
      }
      perMillion.haproxy.push((rss[1] ?? 0) - (rss[0] ?? 0));
    }
  } finally {
    await nginx.stop();
  }
  const orNull = (values: readonly number[]) => (values.length === 0 ? null : median(values));
  const mb = (bytes: number | null) => (bytes === null ? '—' : fmt.mb(bytes));
  const rows: Cell[][] = PEERS.map((name) => [
    name,
    mb(orNull(baseRss[name])),
    mb(orNull(perConn[name].x25519)),
    mb(orNull(perConn[name].default)),
    mb(name === 'node-tls-pipe' ? null : orNull(perMillion[name])),
    mb(name === 'kube-crl-proxy' ? orNull(perMillionAgain) : null),
    name === 'node-tls-pipe' ? '—' : fmt.ms(orNull(handshakeMs[name])),
  ]);
  const kcpConn = median(perConn['kube-crl-proxy'].x25519);
  const haConn = median(perConn.haproxy.x25519);
  return {
    id: 'memory',
    title: `(g) memory: RSS at start, per 10k idle mTLS connections (${count.toLocaleString('en-US')} opened) and per 1M revoked serials`,
    table: {
      columns: [
        'peer',
        'RSS at start MB',
        'MB per 10k idle conns, X25519',
        'MB per 10k, X25519MLKEM768',
        'MB per 1M serials',
        'after another 1M',
        'handshake CPU ms, 1M CRL',
      ],
      rows,
    },
    ratios:
      Number.isFinite(kcpConn / haConn) && haConn > 0
        ? [{ label: '(g) RSS per idle connection', value: kcpConn / haConn }]
        : [],
    notes: [
      `RSS at start: VmRSS 1 s after the peer listens (kube-crl-proxy: after its "serving" log line), the CRL empty. node-tls-pipe runs with kube-crl-proxy's node flags and environment (the binary's #! line): the floor of a Node TLS server on this runtime.`,
      `Idle: ${count} TLS 1.3 connections with a client certificate (ALPN http/1.1, handshake done, no request, so no peer has opened an upstream connection yet); VmRSS after − before, scaled to 10k. A fresh process for each figure. X25519: the client offers only X25519; X25519MLKEM768: the client offers its runtime's default groups (Node 26: the hybrid post-quantum exchange first, as Go 1.24+ clients do), which OpenSSL 3.5 servers accept and HAProxy's OpenSSL 3.0 cannot. The ratio to HAProxy compares the X25519 figures.`,
      'Per 1M serials: kube-crl-proxy RSS after a SIGHUP reload from an empty CRL to a 1M-entry one (+2 s); "after another 1M": after a further reload to another 1M-entry CRL, against the same start. HAProxy RSS started with the 1M CRL − started with the empty one.',
      `Handshake CPU with the 1M CRL in force: openssl s_time -new for ${stSeconds} s, proxy CPU per connection (compare with (a), CRL empty).`,
    ],
    data: { count, rounds, perConn, perMillion, perMillionAgain, handshakeMs, baseRss },
  };
}

/** Installs `crl`, sends SIGHUP, waits until the new snapshot is in force, then 2 s more. */
async function reloadTo(ctx: BenchContext, kcp: KubeCrlProxyPeer, crl: string): Promise<void> {
  const logsBefore = kcp.logs.length;
  ctx.pki.installCrl(crl);
  process.kill(kcp.pid, 'SIGHUP');
  await kcp.waitForLog(
    (l) => l.msg === 'snapshot in force' && kcp.logs.indexOf(l) >= logsBefore,
    60_000,
  );
  await settle(2_000);
}

async function handshakeCpuMs(ctx: BenchContext, peer: Peer, seconds: number): Promise<number> {
  const identity = {
    port: peer.port,
    certFile: peer.client.certFile,
    keyFile: peer.client.keyFile,
    caFile: ctx.pki.servingCaFile,
  };
  const result = await runSTime(identity, seconds, null, [peer.pid as number]);
  const cpu = result.window.cpu.get(peer.pid as number) ?? Number.NaN;
  return result.connections > 0 ? (cpu / result.connections) * 1000 : Number.NaN;
}
