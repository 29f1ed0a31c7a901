/**
 * (e) Upgrade byte throughput through each peer to the fake apiserver: WebSocket exec
 * sessions streaming `head -c N /dev/zero` to the client, and SPDY/3.1 port-forward sessions
 * echoing N bytes through the fake's echo server. MB/s and proxy CPU per MB.
 */
import type { ExecStreamConfig, ExecStreamResult } from '../load/exec-stream.js';
import { LoadProcess } from '../load/ipc.js';
import { between, sample } from '../measure/proc.js';
import { directPeer } from '../peers/direct.js';
import { startFakeApiserverHost, WATCH_NAMESPACE } from '../peers/fake-apiserver.js';
import { startHaproxy } from '../peers/haproxy.js';
import { startKubeCrlProxy } from '../peers/kube-crl-proxy.js';
import type { Peer } from '../peers/types.js';
import type { ScenarioResult } from '../report/results.js';
import type { BenchContext } from './context.js';
import { measurePeers, roundFromWindow, throughputResult } from './throughput.js';

const MB = 1024 * 1024;

type Mode = ExecStreamConfig['mode'];

function measureMode(
  ctx: BenchContext,
  peers: readonly Peer[],
  mode: Mode,
  bytesPerSession: number,
  parallel: number,
  errors: Map<string, Set<string>>,
) {
  return measurePeers(ctx, mode, peers, async (peer) => {
    const pids = peer.pid === null ? [] : [peer.pid];
    const config: ExecStreamConfig = {
      mode,
      identity: {
        port: peer.port,
        certFile: peer.client.certFile,
        keyFile: peer.client.keyFile,
        caFile: ctx.pki.servingCaFile,
      },
      podPath: `/api/v1/namespaces/${WATCH_NAMESPACE}/pods/pod-0`,
      bytesPerSession,
      parallel,
    };
    const load = LoadProcess.start<ExecStreamConfig, ExecStreamResult>('./exec-stream.js', config);
    try {
      await load.ready(30_000);
      const before = sample(pids);
      load.send({ type: 'go' });
      const result = await load.done(300_000);
      const window = between(before, sample(pids));
      for (const why of result.errors)
        errors.set(peer.name, (errors.get(peer.name) ?? new Set()).add(why));
      return roundFromWindow(peer, window, {
        ops: result.bytes / MB,
        seconds: result.seconds,
        generatorCpuSeconds: result.generatorCpuSeconds,
        p50Ms: null,
        p99Ms: null,
        failed: result.failed,
      });
    } finally {
      await load.stop();
    }
  });
}

export async function execStreamScenarios(ctx: BenchContext): Promise<ScenarioResult[]> {
  const parallel = 4;
  const execBytes = (ctx.options.quick ? 8 : 64) * MB;
  const forwardBytes = (ctx.options.quick ? 4 : 32) * MB;
  const apiserver = await startFakeApiserverHost(ctx.pki);
  const peers: Peer[] = [];
  try {
    peers.push(await startKubeCrlProxy(ctx.build, ctx.pki, apiserver.url));
    peers.push(await startHaproxy(ctx.pki, { upstreamPort: apiserver.port }));
    peers.push(directPeer(apiserver));
    const execErrors = new Map<string, Set<string>>();
    const forwardErrors = new Map<string, Set<string>>();
    const exec = await measureMode(ctx, peers, 'exec', execBytes, parallel, execErrors);
    const forward = await measureMode(
      ctx,
      peers,
      'port-forward',
      forwardBytes,
      parallel,
      forwardErrors,
    );
    const failures = (errors: Map<string, Set<string>>) =>
      [...errors].map(([peer, why]) => `${peer}: sessions failed: ${[...why].join('; ')}`);
    return [
      throughputResult(
        'exec',
        `(e) exec throughput: ${parallel} WebSocket (v5.channel.k8s.io) sessions × ${execBytes / MB} MB of stdout`,
        'MB',
        exec,
        [
          'Client: the ws package with a client certificate; upstream: the fake apiserver (Node) emulating `head -c N /dev/zero` in 64 KB writes. Both on core 1: the direct row is their ceiling.',
          ...failures(execErrors),
        ],
        'ms',
      ),
      throughputResult(
        'port-forward',
        `(e) port-forward throughput: ${parallel} SPDY/3.1 sessions × ${forwardBytes / MB} MB echoed (MB counted once; each crosses the proxy both ways)`,
        'MB',
        forward,
        [
          "Client: kubectl's fallback transport (Upgrade: SPDY/3.1, the test suite's SPDY client, 64 KB DATA frames, the socket's backpressure); upstream: the fake apiserver's port-forward to its own TCP echo server. kubectl's default (SPDY inside WebSocket) is the same byte tunnel through the proxy.",
          ...failures(forwardErrors),
        ],
        'ms',
      ),
    ];
  } finally {
    for (const peer of peers) await peer.stop();
    await apiserver.stop();
  }
}
