/**
 * The peers of the throughput scenarios: nginx as the upstream (load core), kube-crl-proxy
 * and HAProxy in front of it (proxy core), and the direct path. Started once, checked, shared.
 */

import { directPeer } from '../peers/direct.js';
import { startHaproxy } from '../peers/haproxy.js';
import { startKubeCrlProxy } from '../peers/kube-crl-proxy.js';
import { startNginxUpstream, WHOAMI_PATH } from '../peers/nginx-upstream.js';
import { startNodePipe } from '../peers/node-pipe.js';
import type { Peer } from '../peers/types.js';
import { checkPeer } from '../support/sanity.js';
import type { BenchContext } from './context.js';

export interface NginxStack {
  readonly peers: readonly Peer[];
  readonly nginxPid: number;
  stop(): Promise<void>;
}

export async function startNginxStack(
  ctx: BenchContext,
  haproxyMaxconn?: number,
): Promise<NginxStack> {
  const pki = ctx.pki;
  const nginx = await startNginxUpstream(pki);
  const started: Peer[] = [];
  try {
    started.push(await startKubeCrlProxy(ctx.build, pki, nginx.url));
    started.push(await startHaproxy(pki, { upstreamPort: nginx.port, maxconn: haproxyMaxconn }));
    for (const peer of started) await checkPeer(pki, peer, WHOAMI_PATH, 'bench-user');
    // Not a proxy (no identity, nothing sanitised): what node:tls alone costs, in the same run.
    const pipe = await startNodePipe(pki, nginx.port, ctx.build.node);
    started.push(pipe);
    await checkPeer(pki, pipe, WHOAMI_PATH, null);
    const direct = directPeer(nginx);
    await checkPeer(pki, direct, WHOAMI_PATH, null);
    return {
      peers: [...started, direct],
      nginxPid: nginx.pid,
      async stop() {
        for (const peer of started) await peer.stop();
        await nginx.stop();
      },
    };
  } catch (err) {
    for (const peer of started) await peer.stop();
    await nginx.stop();
    throw err;
  }
}
