/** Starts the fake apiserver host process and drives it. */
import { LoadProcess } from '../load/ipc.js';
import type { BenchPki } from '../support/pki.js';
import { LOOPBACK } from '../support/ports.js';
import type {
  BurstArgs,
  FakeApiserverConfig,
  FakeAudit,
  SteadyArgs,
} from './fake-apiserver-host.js';
import type { Upstream } from './types.js';

export const WATCH_NAMESPACE = 'bench';

export interface FakeApiserverUpstream extends Upstream {
  readonly pid: number;
  /** Changes `updates` pods one after the other; resolves with the seconds it took. */
  burst(updates: number): Promise<number>;
  /** Changes pods at a steady rate from now on (0 stops); resolves with the changes so far. */
  steady(perSecond: number): Promise<number>;
  /** Who the fake has seen so far. */
  audit(): Promise<FakeAudit>;
}

export async function startFakeApiserverHost(
  pki: BenchPki,
  pods = 10,
  soak: { readonly maxRecordedRequests: number; readonly streamPod: string } | null = null,
): Promise<FakeApiserverUpstream> {
  const config: FakeApiserverConfig = {
    certFile: pki.upstreamCertFile,
    keyFile: pki.upstreamKeyFile,
    clientCaFile: pki.test.files.clientCa,
    frontProxyCaFile: pki.frontProxyCaFile,
    namespace: WATCH_NAMESPACE,
    pods,
    ...soak,
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
    async steady(perSecond) {
      const args: SteadyArgs = { perSecond };
      return (await host.command('steady', args, 10_000)) as number;
    },
    async audit() {
      return (await host.command('audit', undefined, 30_000)) as FakeAudit;
    },
    stop: () => host.stop(),
  };
}
