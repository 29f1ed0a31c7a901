/**
 * (e) Exec byte throughput through each peer to the fake apiserver: WebSocket exec sessions
 * streaming `head -c N /dev/zero` to the client. MB/s and proxy CPU per MB.
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
import { measurePeers, throughputResult } from './throughput.js';

const MB = 1024 * 1024;

export async function execStreamScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const parallel = 4;
  const bytesPerSession = (ctx.options.quick ? 8 : 64) * MB;
  const apiserver = await startFakeApiserverHost(ctx.pki);
  const peers: Peer[] = [];
  try {
    peers.push(await startKubeCrlProxy(ctx.build, ctx.pki, apiserver.url));
    peers.push(await startHaproxy(ctx.pki, { upstreamPort: apiserver.port }));
    peers.push(directPeer(apiserver));
    const figures = await measurePeers(ctx, 'exec', peers, async (peer) => {
      const pids = peer.pid === null ? [] : [peer.pid];
      const config: ExecStreamConfig = {
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
      const load = LoadProcess.start<ExecStreamConfig, ExecStreamResult>(
        './exec-stream.js',
        config,
      );
      try {
        await load.ready(30_000);
        const before = sample(pids);
        load.send({ type: 'go' });
        const result = await load.done(300_000);
        const window = between(before, sample(pids));
        return {
          ops: result.bytes / MB,
          seconds: result.seconds,
          proxyCpuSeconds: peer.pid === null ? null : (window.cpu.get(peer.pid) ?? null),
          coreBusy: window.coreBusy,
          generatorCpuSeconds: result.generatorCpuSeconds,
          p50Ms: null,
          p99Ms: null,
          failed: result.failed,
        };
      } finally {
        await load.stop();
      }
    });
    return throughputResult(
      'exec',
      `(e) exec throughput: ${parallel} WebSocket (v5.channel.k8s.io) sessions × ${bytesPerSession / MB} MB of stdout`,
      'MB',
      figures,
      [
        'Client: the ws package with a client certificate; upstream: the fake apiserver (Node) emulating `head -c N /dev/zero` in 64 KB writes. Both on core 1: the direct row is their ceiling.',
        'Port-forward (SPDY/3.1 inside WebSocket) is not measured yet: it needs a SPDY client in the load generator.',
      ],
      'ms',
    );
  } finally {
    for (const peer of peers) await peer.stop();
    await apiserver.stop();
  }
}
