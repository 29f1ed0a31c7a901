/** Starts the fake apiserver host process and drives it. */
import { LoadProcess } from '../load/ipc.js';
import type { BenchPki } from '../support/pki.js';
import { LOOPBACK } from '../support/ports.js';
import type { BurstArgs, FakeApiserverConfig } from './fake-apiserver-host.js';
import type { Upstream } from './types.js';

export const WATCH_NAMESPACE = 'bench';

export interface FakeApiserverUpstream extends Upstream {
  readonly pid: number;
  /** Changes `updates` pods one after the other; resolves with the seconds it took. */
  burst(updates: number): Promise<number>;
}

export async function startFakeApiserverHost(
  pki: BenchPki,
  pods = 10,
): Promise<FakeApiserverUpstream> {
  const config: FakeApiserverConfig = {
    certFile: pki.upstreamCertFile,
    keyFile: pki.upstreamKeyFile,
    clientCaFile: pki.test.files.clientCa,
    frontProxyCaFile: pki.frontProxyCaFile,
    namespace: WATCH_NAMESPACE,
    pods,
  };
  const host = LoadProcess.start<FakeApiserverConfig, never>(
    '../peers/fake-apiserver-host.js',
    config,
  );
  const { port } = (await host.ready(30_000)) as { port: number };
  return {
    port,
    url: `https://${LOOPBACK}:${port}`,
    pid: host.pid,
    directClient: pki.user,
    async burst(updates) {
      const args: BurstArgs = { updates };
      return (await host.command('burst', args, 300_000)) as number;
    },
    stop: () => host.stop(),
  };
}
