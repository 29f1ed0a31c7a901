/** Starts the Node TLS byte pipe (node-pipe-server.ts) pinned to the proxy core. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Launcher } from '../../test/support/proxy-process.js';
import { PROXY_CORE, pinnedCommand } from '../support/cores.js';
import type { BenchPki } from '../support/pki.js';
import { stopChild, trackChild } from '../support/processes.js';
import type { NodePipeConfig } from './node-pipe-server.js';
import type { ProxyPeer } from './types.js';

/**
 * `node`: the node binary kube-crl-proxy runs on in this run, so the floor is that runtime's.
 * `launcher`: the node flags and environment to run it with; Node's defaults when absent (the
 * throughput scenarios), kube-crl-proxy's own in the memory scenario, so that the two differ
 * by their code alone.
 */
export async function startNodePipe(
  pki: BenchPki,
  upstreamPort: number,
  node: string,
  launcher: Launcher = { env: {}, nodeFlags: [] },
): Promise<ProxyPeer> {
  const files = pki.test.files;
  const config: NodePipeConfig = {
    // The leaf with its issuer (the cluster CA), as kube-crl-proxy serves it: with the leaf
    // alone, OpenSSL would build that chain again on every handshake (see servedChainPem).
    servingCertFile: pki.test.write(
      'node-pipe-serving-chain.crt',
      pki.test.serving.certPem + pki.test.clusterCa.certPem,
    ),
    servingKeyFile: files.servingKey,
    clientCaFile: files.clientCa,
    upstreamPort,
    upstreamCaFile: files.upstreamCa,
    proxyClientCertFile: files.proxyClientCert,
    proxyClientKeyFile: files.proxyClientKey,
  };
  const script = fileURLToPath(new URL('./node-pipe-server.js', import.meta.url));
  const [command, args] = pinnedCommand(String(PROXY_CORE), node, [
    ...launcher.nodeFlags,
    script,
    JSON.stringify(config),
  ]);
  const child = trackChild(
    spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...launcher.env },
    }),
  );
  let output = '';
  child.stderr?.on('data', (d: Buffer) => {
    output += d;
  });
  const port = await new Promise<number>((resolve, reject) => {
    let line = '';
    child.stdout?.on('data', (d: Buffer) => {
      line += d;
      const nl = line.indexOf('\n');
      if (nl >= 0) resolve((JSON.parse(line.slice(0, nl)) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`node pipe exited with ${code}: ${output}`)));
  });
  return {
    name: 'node-tls-pipe',
    port,
    pid: child.pid as number,
    client: pki.user,
    stop: () => stopChild(child),
  };
}
