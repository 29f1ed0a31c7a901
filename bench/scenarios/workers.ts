/**
 * (i) Both cores: kube-crl-proxy with `--workers 1` and `--workers 2`, allowed on both cores,
 * under the same HTTP/2 and HTTP/1.1 load. On this 2-core machine the load generator and
 * nginx need a core too, so the figure is what a second worker adds when the machine is
 * shared with the load — the generator's own CPU per request is printed with it, and so is
 * how busy the two cores were.
 */
import { execFileSync } from 'node:child_process';
import type { HttpLoadConfig } from '../load/http-load.js';
import { runHttpLoad } from '../load/run-load.js';
import { median } from '../measure/stats.js';
import { startKubeCrlProxy } from '../peers/kube-crl-proxy.js';
import { LOAD_PATH, startNginxUpstream, WHOAMI_PATH } from '../peers/nginx-upstream.js';
import type { ScenarioResult } from '../report/results.js';
import { checkPeer } from '../support/sanity.js';
import type { BenchContext } from './context.js';

/** The proxy's processes: the primary and, with --workers > 1, its worker children. */
function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    // no children (--workers 1)
  }
  return [pid, ...children];
}

interface WorkerRound {
  readonly reqsPerSecond: number;
  readonly proxyCpuPerReqUs: number;
  readonly generatorCpuPerReqUs: number;
  readonly coreBusy: readonly number[];
}

export async function workersScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const nginx = await startNginxUpstream(ctx.pki);
  const rows: string[][] = [];
  const data: unknown[] = [];
  try {
    for (const protocol of ['h2', 'h1'] as const) {
      const byWorkers = new Map<number, WorkerRound[]>([
        [1, []],
        [2, []],
      ]);
      // One round with --quick: it must stay under 3 minutes; the full run takes --rounds.
      const rounds = ctx.options.quick ? 1 : ctx.options.rounds;
      for (let r = 0; r < rounds; r++) {
        for (const workers of [1, 2]) {
          ctx.progress(`workers: ${protocol}, --workers ${workers}, round ${r + 1}/${rounds}`);
          const peer = await startKubeCrlProxy(
            ctx.build,
            ctx.pki,
            nginx.url,
            [`--workers=${workers}`],
            '0,1',
          );
          try {
            await checkPeer(ctx.pki, peer, WHOAMI_PATH, 'bench-user');
            const pids = processTree(peer.pid);
            if (pids.length !== workers + (workers > 1 ? 1 : 0))
              throw new Error(`--workers ${workers}: found processes ${pids.join(', ')}`);
            const config: HttpLoadConfig = {
              protocol,
              identity: {
                port: peer.port,
                certFile: peer.client.certFile,
                keyFile: peer.client.keyFile,
                caFile: ctx.pki.servingCaFile,
              },
              path: LOAD_PATH,
              connections: protocol === 'h1' ? 40 : 20,
              streams: protocol === 'h1' ? 1 : 10,
              warmupMs: ctx.options.quick ? 300 : 1_000,
              durationMs: ctx.options.quick ? 1_500 : 5_000,
              maxRequests: 2_000_000,
            };
            const { result, window } = await runHttpLoad(config, pids);
            if (result.failed > 0) throw new Error(`${result.failed} requests failed`);
            const cpu = pids.reduce((sum, pid) => sum + (window.cpu.get(pid) ?? 0), 0);
            byWorkers.get(workers)?.push({
              reqsPerSecond: result.requests / window.seconds,
              proxyCpuPerReqUs: (cpu / result.requests) * 1e6,
              generatorCpuPerReqUs: (result.generatorCpuSeconds / result.requests) * 1e6,
              coreBusy: window.coreBusy,
            });
          } finally {
            await peer.stop();
          }
        }
      }
      const m = (workers: number, f: (r: WorkerRound) => number) =>
        median((byWorkers.get(workers) ?? []).map(f));
      const one = m(1, (r) => r.reqsPerSecond);
      for (const workers of [1, 2]) {
        const figures = {
          protocol,
          workers,
          reqsPerSecond: m(workers, (r) => r.reqsPerSecond),
          proxyCpuPerReqUs: m(workers, (r) => r.proxyCpuPerReqUs),
          generatorCpuPerReqUs: m(workers, (r) => r.generatorCpuPerReqUs),
          core0Busy: m(workers, (r) => r.coreBusy[0] ?? 0),
          core1Busy: m(workers, (r) => r.coreBusy[1] ?? 0),
        };
        data.push(figures);
        rows.push([
          protocol === 'h2' ? 'HTTP/2' : 'HTTP/1.1',
          String(workers),
          Math.round(figures.reqsPerSecond).toString(),
          `${(figures.reqsPerSecond / one).toFixed(2)}×`,
          figures.proxyCpuPerReqUs.toFixed(1),
          figures.generatorCpuPerReqUs.toFixed(1),
          `${Math.round(figures.core0Busy * 100)}% / ${Math.round(figures.core1Busy * 100)}%`,
        ]);
      }
    }
  } finally {
    await nginx.stop();
  }
  return {
    id: 'workers',
    title: '(i) both cores: --workers 2 vs --workers 1 (proxy allowed on cores 0 and 1)',
    table: {
      columns: [
        'protocol',
        'workers',
        'reqs/s',
        'vs 1 worker',
        'proxy CPU µs/req (all processes)',
        'gen CPU µs/req',
        'core0 / core1 busy',
      ],
      rows,
    },
    ratios: [],
    notes: [
      'The load generator (bench/load/http-load, one Node process) and nginx stay on core 1, so a second worker shares core 1 with them: on 2 cores the gain is bounded by the load side, whose CPU per request is shown (the generator alone would need that much of a core per request). On a control-plane node with more cores the workers take a core each.',
    ],
    data,
  };
}
