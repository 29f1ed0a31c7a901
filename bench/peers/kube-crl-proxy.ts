/**
 * kube-crl-proxy as an operator runs it (the binary, JSON logs on stdout), started pinned to
 * the proxy core with taskset so every thread it ever makes stays there. The flags come from
 * the test PKI helper, its log is read by test/support/proxy-process.ts; it runs the build
 * chosen for the run (support/proxy-build.ts).
 */
import { spawn } from 'node:child_process';
import { proxyArgs } from '../../test/support/pki.js';
import { binLauncher, followLog, type LogLine } from '../../test/support/proxy-process.js';
import { PROXY_CORE, pinnedCommand } from '../support/cores.js';
import type { BenchPki } from '../support/pki.js';
import { stopChild, trackChild } from '../support/processes.js';
import type { ProxyBuild } from '../support/proxy-build.js';
import type { ProxyPeer } from './types.js';

export interface KubeCrlProxyPeer extends ProxyPeer {
  readonly metricsUrl: string;
  readonly logs: readonly LogLine[];
  /** Resolves with the first log line (already seen or future) matching `pred`. */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

export async function startKubeCrlProxy(
  build: ProxyBuild,
  pki: BenchPki,
  upstreamUrl: string,
  extraArgs: string[] = [],
  /** taskset's CPU list for the proxy: the proxy core unless a scenario spreads it. */
  cpuList: string = String(PROXY_CORE),
): Promise<KubeCrlProxyPeer> {
  const args = proxyArgs(pki.test, upstreamUrl, [
    '--log-level=info',
    '--shutdown-grace=1s',
    ...extraArgs,
  ]);
  // KCP_BENCH_CPU_PROF=DIR: a V8 CPU profile of every kube-crl-proxy process, written at exit.
  const profileDir = process.env.KCP_BENCH_CPU_PROF;
  // KCP_BENCH_NODE_FLAGS="--trace-gc ...": more node/V8 flags (those NODE_OPTIONS refuses).
  const extraFlags = (process.env.KCP_BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  // As every launcher runs it: the environment and flags of the binary's own #! line.
  const launcher = binLauncher(build.bin);
  const nodeFlags = [
    ...launcher.nodeFlags,
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    ...extraFlags,
  ];
  const [command, argv] = pinnedCommand(cpuList, build.node, [...nodeFlags, build.bin, ...args]);
  const child = trackChild(
    spawn(command, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...launcher.env },
    }),
  );
  const { logs, waitForLog, stderr } = followLog(child);
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) =>
      reject(new Error(`kube-crl-proxy exited with ${code}: ${stderr()}`)),
    ),
  );
  exited.catch(() => {});
  const ready = await Promise.race([
    waitForLog((l) => l.msg === 'kube-crl-proxy serving', 30_000),
    exited,
  ]);
  const port = (ready.listen as { port: number }).port;
  const adminPort = (ready.metricsListen as { port: number }).port;
  return {
    name: 'kube-crl-proxy',
    port,
    pid: child.pid as number,
    client: pki.user,
    metricsUrl: `http://127.0.0.1:${adminPort}/metrics`,
    logs,
    waitForLog,
    stop: () => stopChild(child, 10_000),
  };
}
