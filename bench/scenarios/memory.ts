/**
 * (g) Memory: RSS per 10k idle client connections (TLS with a client certificate, handshake
 * done, no request yet) and per 1M revoked serials; with 1M serials in force, the CPU cost of
 * a new mTLS connection too (OpenSSL checks a CRL given to it on every handshake).
 */
import type { IdleConfig, IdleInfo } from '../load/idle-connections.js';
import { LoadProcess } from '../load/ipc.js';
import { runSTime } from '../load/s-time.js';
import { rssBytes } from '../measure/proc.js';
import { median } from '../measure/stats.js';
import { startHaproxy } from '../peers/haproxy.js';
import { startKubeCrlProxy } from '../peers/kube-crl-proxy.js';
import { startNginxUpstream } from '../peers/nginx-upstream.js';
import type { Peer } from '../peers/types.js';
import type { Cell, ScenarioResult } from '../report/results.js';
import type { BenchContext } from './context.js';
import { fmt } from './throughput.js';

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function idleConnectionsRss(ctx: BenchContext, peer: Peer, count: number): Promise<number> {
  const pid = peer.pid as number;
  await settle(500);
  const before = rssBytes(pid);
  const load = LoadProcess.start<IdleConfig, never>('./idle-connections.js', {
    identity: {
      port: peer.port,
      certFile: peer.client.certFile,
      keyFile: peer.client.keyFile,
      caFile: ctx.pki.servingCaFile,
    },
    count,
    parallel: 50,
  });
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

export async function memoryScenario(ctx: BenchContext): Promise<ScenarioResult> {
  // HAProxy needs 2 fds per connection and refuses a maxconn the fd limit (20000 here) cannot hold.
  const count = ctx.options.quick ? 1_000 : 9_000;
  // Memory figures vary little between rounds; --quick keeps one to stay under 3 minutes.
  const rounds = ctx.options.quick ? 1 : Math.min(ctx.options.rounds, 3);
  ctx.pki.installCrl(ctx.pki.buildCrl(0));
  const nginx = await startNginxUpstream(ctx.pki);
  const perConn = { 'kube-crl-proxy': [] as number[], haproxy: [] as number[] };
  const perMillion = { 'kube-crl-proxy': [] as number[], haproxy: [] as number[] };
  const handshakeMs = { 'kube-crl-proxy': [] as number[], haproxy: [] as number[] };
  const baseRss = { 'kube-crl-proxy': [] as number[], haproxy: [] as number[] };
  const stSeconds = ctx.options.quick ? 1 : 3;
  try {
    for (let r = 0; r < rounds; r++) {
      for (const name of ['kube-crl-proxy', 'haproxy'] as const) {
        ctx.progress(`memory: ${count} idle connections, ${name}, round ${r + 1}/${rounds}`);
        const peer =
          name === 'haproxy'
            ? await startHaproxy(ctx.pki, { upstreamPort: nginx.port, maxconn: count + 500 })
            : await startKubeCrlProxy(ctx.build, ctx.pki, nginx.url);
        try {
          baseRss[name].push(rssBytes(peer.pid ?? 0));
          perConn[name].push(await idleConnectionsRss(ctx, peer, count));
        } finally {
          await peer.stop();
        }
      }
    }
    ctx.progress('memory: building a 1M-entry CRL');
    // In this order: a reload to a CRL with a lower CRL number is a refused rollback.
    const emptyCrl = ctx.pki.buildCrl(0);
    const bigCrl = ctx.pki.buildCrl(1_000_000);
    for (let r = 0; r < rounds; r++) {
      ctx.progress(`memory: 1M revoked serials, round ${r + 1}/${rounds}`);
      // kube-crl-proxy: the same process before and after a reload to 1M serials.
      ctx.pki.installCrl(emptyCrl);
      const kcp = await startKubeCrlProxy(ctx.build, ctx.pki, nginx.url);
      try {
        await settle(1_000);
        const before = rssBytes(kcp.pid);
        const logsBefore = kcp.logs.length;
        ctx.pki.installCrl(bigCrl);
        process.kill(kcp.pid, 'SIGHUP');
        await kcp.waitForLog(
          (l) => l.msg === 'snapshot in force' && kcp.logs.indexOf(l) >= logsBefore,
          60_000,
        );
        await settle(2_000);
        perMillion['kube-crl-proxy'].push(rssBytes(kcp.pid) - before);
        handshakeMs['kube-crl-proxy'].push(await handshakeCpuMs(ctx, kcp, stSeconds));
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
  const rows: Cell[][] = (['kube-crl-proxy', 'haproxy'] as const).map((name) => [
    name,
    fmt.mb(median(baseRss[name])),
    fmt.mb(median(perConn[name])),
    fmt.mb(median(perMillion[name])),
    fmt.ms(median(handshakeMs[name])),
  ]);
  const kcpConn = median(perConn['kube-crl-proxy']);
  const haConn = median(perConn.haproxy);
  return {
    id: 'memory',
    title: `(g) memory: RSS per 10k idle mTLS connections (${count.toLocaleString('en-US')} opened) and per 1M revoked serials`,
    table: {
      columns: [
        'peer',
        'RSS at start MB',
        'MB per 10k idle conns',
        'MB per 1M serials',
        'handshake CPU ms, 1M CRL',
      ],
      rows,
    },
    ratios:
      Number.isFinite(kcpConn / haConn) && haConn > 0
        ? [{ label: '(g) RSS per idle connection', value: kcpConn / haConn }]
        : [],
    notes: [
      `Idle: ${count} TLS 1.3 connections with a client certificate (ALPN http/1.1, handshake done, no request, so neither proxy has opened an upstream connection yet); VmRSS after − before, scaled to 10k. A fresh proxy each round.`,
      'Per 1M serials: kube-crl-proxy RSS after a SIGHUP reload from an empty CRL to a 1M-entry one (+2 s); HAProxy RSS started with the 1M CRL − started with the empty one.',
      `Handshake CPU with the 1M CRL in force: openssl s_time -new for ${stSeconds} s, proxy CPU per connection (compare with (a), CRL empty).`,
    ],
    data: { count, rounds, perConn, perMillion, handshakeMs, baseRss },
  };
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
