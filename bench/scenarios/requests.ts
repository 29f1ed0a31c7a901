/**
 * (a) new mTLS connections (openssl s_time -new: handshake only, and with one request),
 * (b) keep-alive GETs over HTTP/1.1, (b′) HTTP/1.0 GETs with `Connection: keep-alive` (as
 * ab -k and monitoring probes send them), (c) multiplexed GETs over HTTP/2; all with a client
 * certificate, against nginx through each peer.
 */
import type { HttpLoadConfig } from '../load/http-load.js';
import { runHttpLoad } from '../load/run-load.js';
import { runSTime } from '../load/s-time.js';
import type { ClientIdentity } from '../load/tls-client.js';
import { LOAD_PATH } from '../peers/nginx-upstream.js';
import type { Peer } from '../peers/types.js';
import type { ScenarioResult } from '../report/results.js';
import type { BenchContext } from './context.js';
import { startNginxStack } from './nginx-stack.js';
import { pairedScenario } from './paired.js';
import {
  measurePeers,
  type PeerFigures,
  type Round,
  roundFromWindow,
  throughputResult,
} from './throughput.js';

function identity(ctx: BenchContext, peer: Peer): ClientIdentity {
  return {
    port: peer.port,
    certFile: peer.client.certFile,
    keyFile: peer.client.keyFile,
    caFile: ctx.pki.servingCaFile,
  };
}

const pidsOf = (peer: Peer) => (peer.pid === null ? [] : [peer.pid]);

/** One window of `openssl s_time -new` against `peer`: handshake only, or with a GET of `www`. */
export async function handshakeRound(
  ctx: BenchContext,
  peer: Peer,
  www: string | null,
): Promise<Round> {
  const r = await runSTime(identity(ctx, peer), ctx.options.quick ? 1 : 5, www, pidsOf(peer));
  return roundFromWindow(peer, r.window, {
    ops: r.connections,
    seconds: r.window.seconds,
    generatorCpuSeconds: r.generatorCpuSeconds,
    p50Ms: null,
    p99Ms: null,
    failed: 0,
  });
}

export async function handshakeScenarios(
  ctx: BenchContext,
  peers: readonly Peer[],
): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  for (const [id, title, www] of [
    ['handshake', '(a) new mTLS connection, handshake only', null],
    ['handshake-request', '(a) new mTLS connection + one GET', LOAD_PATH],
  ] as const) {
    const figures = await measurePeers(ctx, id, peers, (peer) => handshakeRound(ctx, peer, www));
    results.push(
      throughputResult(id, title, 'conn', figures, handshakeNotes(figures, www !== null), 'ms'),
    );
  }
  return results;
}

/** What the node-tls-pipe row is. */
const PIPE_NOTE =
  'node-tls-pipe: a node:tls byte pipe (bench/peers/node-pipe-server.ts) with no HTTP work, no identity and no sanitising: not a proxy, the floor of any proxy built on TLS sockets and streams of the same Node.js.';

function handshakeNotes(figures: readonly PeerFigures[], withRequest: boolean): string[] {
  const direct = figures.find((f) => f.peer === 'direct');
  const notes = [
    `openssl s_time -new${withRequest ? ` -www ${LOAD_PATH} (HTTP/1.0, one request per connection)` : ''}, TLS 1.3, P-256 client certificate; gen CPU is openssl's user time only.`,
  ];
  if (figures.some((f) => f.peer === 'node-tls-pipe')) notes.push(PIPE_NOTE);
  if (direct !== undefined)
    notes.push(
      `generator ceiling: ${Math.round(direct.opsPerSecond)} conn/s against nginx directly (openssl ${direct.generatorCpuPerOpUs.toFixed(0)} µs user CPU per connection, sharing core 1 with nginx).`,
    );
  return notes;
}

/** Connections × streams of the request load: many in flight, as the apiserver's clients keep. */
const LOAD_SHAPE = {
  h1: { connections: 20, streams: 1 },
  'h1.0': { connections: 10, streams: 1 },
  h2: { connections: 10, streams: 10 },
} as const;

type RequestProtocol = keyof typeof LOAD_SHAPE;

const SCENARIO: Record<RequestProtocol, { id: string; title: string; load: string }> = {
  h1: {
    id: 'h1-keepalive',
    title: '(b) HTTP/1.1 keep-alive GET',
    load: 'raw HTTP/1.1',
  },
  'h1.0': {
    id: 'h10-keepalive',
    title: '(b′) HTTP/1.0 keep-alive GET (ab -k)',
    load: 'raw HTTP/1.0 with `Connection: Keep-Alive` as ab -k sends it; a connection the peer closes is opened again;',
  },
  h2: {
    id: 'h2-multiplexed',
    title: '(c) HTTP/2 GET',
    load: 'raw HTTP/2 frames, pre-encoded HPACK',
  },
};

/** One window of keep-alive (h1, h1.0) or multiplexed (h2) GETs against `peer`. */
export async function requestRound(
  ctx: BenchContext,
  peer: Peer,
  protocol: RequestProtocol,
): Promise<Round> {
  const config: HttpLoadConfig = {
    protocol,
    identity: identity(ctx, peer),
    path: LOAD_PATH,
    ...LOAD_SHAPE[protocol],
    warmupMs: ctx.options.quick ? 300 : 1_000,
    durationMs: ctx.options.quick ? 1_000 : 5_000,
    maxRequests: 2_000_000,
  };
  const { result, window } = await runHttpLoad(config, pidsOf(peer));
  return roundFromWindow(peer, window, {
    ops: result.requests,
    seconds: window.seconds,
    generatorCpuSeconds: result.generatorCpuSeconds,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    failed: result.failed,
  });
}

export async function requestScenario(
  ctx: BenchContext,
  peers: readonly Peer[],
  protocol: RequestProtocol,
): Promise<ScenarioResult> {
  const { connections, streams } = LOAD_SHAPE[protocol];
  const { id, load } = SCENARIO[protocol];
  const title = `${SCENARIO[protocol].title}, ${connections} connections${streams > 1 ? ` × ${streams} streams` : ''}`;
  const figures = await measurePeers(ctx, id, peers, (peer) => requestRound(ctx, peer, protocol));
  const direct = figures.find((f) => f.peer === 'direct');
  const notes = [
    `bench/load/http-load (${load} over node:tls, client certificate), closed loop, ${connections * streams} requests in flight.`,
  ];
  if (figures.some((f) => f.peer === 'node-tls-pipe')) notes.push(PIPE_NOTE);
  if (direct !== undefined)
    notes.push(
      `generator: ${direct.generatorCpuPerOpUs.toFixed(1)} µs CPU per request → ceiling ≈ ${Math.round(1e6 / direct.generatorCpuPerOpUs)} req/s alone on a core; against nginx directly (sharing core 1): ${Math.round(direct.opsPerSecond)} req/s.`,
    );
  return throughputResult(id, title, 'req', figures, notes);
}

export async function requestScenarios(
  ctx: BenchContext,
  which: ReadonlySet<string>,
): Promise<ScenarioResult[]> {
  ctx.progress('starting nginx, kube-crl-proxy and HAProxy');
  const stack = await startNginxStack(ctx);
  try {
    const results: ScenarioResult[] = [];
    // --quick leaves out the generator's ceiling (no proxy): the ratios do not use it.
    const peers = ctx.options.quick ? stack.peers.filter((p) => p.name !== 'direct') : stack.peers;
    if (which.has('handshake')) results.push(...(await handshakeScenarios(ctx, peers)));
    if (which.has('h1')) results.push(await requestScenario(ctx, peers, 'h1'));
    if (which.has('h10')) results.push(await requestScenario(ctx, peers, 'h1.0'));
    if (which.has('h2')) results.push(await requestScenario(ctx, peers, 'h2'));
    if (which.has('paired')) results.push(await pairedScenario(ctx, stack.peers));
    return results;
  } finally {
    await stack.stop();
  }
}
