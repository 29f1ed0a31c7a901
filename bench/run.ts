/**
 * `npm run bench [-- --quick] [-- --only a,b] [-- --rounds N] [-- --publish]`: runs the load
 * benchmark of kube-crl-proxy against HAProxy (the seed's setup) and the direct path, prints
 * the tables, writes bench/results/<date>.json and .svg; --publish also refreshes the results
 * section of bench/README.md and bench/ratios.svg. The soak runs only with `--only soak`
 * (`--soak-minutes N`); a scenario that checks and fails makes the exit code 1.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ratioChart } from './report/chart.js';
import { describeMachine } from './report/machine.js';
import { publishReadme } from './report/readme.js';
import type { RunResults, ScenarioResult } from './report/results.js';
import { renderRun, renderScenario } from './report/table.js';
import type { BenchContext, RunOptions } from './scenarios/context.js';
import { crlReloadScenario } from './scenarios/crl-reload.js';
import { execStreamScenarios } from './scenarios/exec-stream.js';
import { memoryScenario } from './scenarios/memory.js';
import { requestScenarios } from './scenarios/requests.js';
import { revocationIndexScenario } from './scenarios/revocation-index.js';
import { MAX_SOAK_MINUTES, soakScenario } from './scenarios/soak.js';
import { watchFanoutScenario } from './scenarios/watch-fanout.js';
import { workersScenario } from './scenarios/workers.js';
import { pinSelfToLoadCore } from './support/cores.js';
import { makeBenchPki } from './support/pki.js';
import { cleanupNow, installCleanupHandlers } from './support/processes.js';
import { buildRevision, workingTreeBuild } from './support/proxy-build.js';
import { checkTools } from './support/tools.js';

/** Scenario ids, in run order, and what they are. */
const SCENARIOS: Record<string, string> = {
  handshake: '(a) new mTLS connections: openssl s_time -new, handshake only and with one GET',
  h1: '(b) HTTP/1.1 keep-alive GETs with a client certificate',
  h10: "(b′) HTTP/1.0 GETs with Connection: keep-alive (ab -k's requests) with a client certificate",
  h2: '(c) HTTP/2 multiplexed GETs with a client certificate',
  watch: '(d) watch fan-out: thousands of HTTP/2 watches, events per second, RSS per watch',
  exec: '(e) exec (WebSocket) and port-forward (SPDY/3.1) byte throughput: MB/s and CPU per MB',
  reload:
    '(f) CRL reload with 10k/100k/1M entries: reload time, stalls, time to refuse a revoked cert',
  memory: '(g) RSS at start, per 10k idle mTLS connections and per 1M revoked serials',
  index: '(h) the revocation index alone: memory of 1M serials, build time, lookup time',
  workers: '(i) --workers 2 vs 1 on both cores, HTTP/2 and HTTP/1.1 throughput',
  paired:
    '(j) side by side: kube-crl-proxy and HAProxy (or node-tls-pipe) loaded in the same seconds, the steadier ratio',
  soak: 'soak (issue 8.6, only with --only soak): CRL swaps every 2 s under 1,000 watches, churn, mixed clients; PASS/FAIL',
};
/** Run only when named in --only. */
const ON_DEMAND = new Set(['soak']);

const USAGE = `usage: npm run bench -- [--quick] [--only ${Object.keys(SCENARIOS).join(',')}] [--rounds N] [--soak-minutes N] [--proxy-rev REV] [--proxy-node NODE] [--publish]
${Object.entries(SCENARIOS)
  .map(([id, what]) => `  ${id.padEnd(10)} ${what}`)
  .join('\n')}`;

function parseOptions(): {
  options: RunOptions;
  only: string[];
  publish: boolean;
  proxyRev: string | null;
  /** The node binary the proxy (and node-tls-pipe) run on, e.g. /usr/bin/node for Node 20. */
  proxyNode: string;
} {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true, default: [] },
      rounds: { type: 'string' },
      'soak-minutes': { type: 'string' },
      publish: { type: 'boolean', default: false },
      'proxy-rev': { type: 'string' },
      'proxy-node': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const only = values.only.flatMap((o) => o.split(',')).filter(Boolean);
  for (const id of only)
    if (!(id in SCENARIOS)) throw new Error(`unknown scenario '${id}'\n${USAGE}`);
  const rounds = values.rounds === undefined ? (values.quick ? 3 : 5) : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds: a positive integer');
  const soakMinutes =
    values['soak-minutes'] === undefined ? (values.quick ? 1 : 10) : Number(values['soak-minutes']);
  if (!Number.isInteger(soakMinutes) || soakMinutes < 1 || soakMinutes > MAX_SOAK_MINUTES)
    throw new Error(`--soak-minutes: an integer from 1 to ${MAX_SOAK_MINUTES}`);
  return {
    options: { quick: values.quick, rounds, soakMinutes },
    only,
    publish: values.publish,
    proxyRev: values['proxy-rev'] ?? null,
    proxyNode: values['proxy-node'] ?? process.execPath,
  };
}

/** Resolves with the exit code: 1 when a checking scenario failed. */
async function main(): Promise<number> {
  const started = performance.now();
  const { options, only, publish, proxyRev, proxyNode } = parseOptions();
  checkTools();
  installCleanupHandlers();
  // Before pinning: nproc counts the cores this process may use.
  const machine = describeMachine();
  pinSelfToLoadCore();
  // --quick leaves out the workers scenario too: on 2 cores it measures the load side.
  const skipped = options.quick ? new Set([...ON_DEMAND, 'workers']) : ON_DEMAND;
  const selected = new Set(
    only.length > 0 ? only : Object.keys(SCENARIOS).filter((id) => !skipped.has(id)),
  );
  const build =
    proxyRev === null ? workingTreeBuild(proxyNode) : buildRevision(proxyRev, proxyNode);
  const pki = await makeBenchPki();
  const ctx: BenchContext = {
    pki,
    build,
    options,
    progress: (message) =>
      process.stderr.write(
        `[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`,
      ),
  };
  const scenarios: ScenarioResult[] = [];
  /** A failed scenario is reported as such; the others still run and are written. */
  const attempt = async (id: string, run: () => Promise<ScenarioResult[]>) => {
    try {
      add(await run());
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      ctx.progress(`${id}: FAILED: ${message}`);
      add([
        {
          id,
          title: `${id}: failed`,
          table: { columns: ['error'], rows: [[message.split('\n')[0] ?? '']] },
          ratios: [],
          notes: [],
          data: { error: message },
          verdict: 'FAIL',
        },
      ]);
    }
  };
  const add = (results: ScenarioResult[]) => {
    for (const result of results) {
      scenarios.push(result);
      process.stdout.write(`\n${renderScenario(result)}`);
    }
  };
  try {
    if (['handshake', 'h1', 'h10', 'h2', 'paired'].some((id) => selected.has(id)))
      await attempt('requests', () => requestScenarios(ctx, selected));
    if (selected.has('watch')) await attempt('watch', async () => [await watchFanoutScenario(ctx)]);
    if (selected.has('exec')) await attempt('exec', () => execStreamScenarios(ctx));
    if (selected.has('reload')) await attempt('reload', async () => [await crlReloadScenario(ctx)]);
    if (selected.has('memory')) await attempt('memory', async () => [await memoryScenario(ctx)]);
    if (selected.has('workers')) await attempt('workers', async () => [await workersScenario(ctx)]);
    if (selected.has('index'))
      await attempt('index', async () => [await revocationIndexScenario(ctx)]);
    if (selected.has('soak')) await attempt('soak', async () => [await soakScenario(ctx)]);
  } finally {
    pki.cleanup();
  }
  const run: RunResults = {
    machine,
    options: { ...options, only },
    proxy: build.label,
    wallSeconds: (performance.now() - started) / 1000,
    scenarios,
  };
  process.stdout.write(`\n${renderRun(run)}`);
  writeResults(run, publish);
  return scenarios.some((s) => s.verdict === 'FAIL') ? 1 : 0;
}

function writeResults(run: RunResults, publish: boolean): void {
  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const stamp = run.machine.date.replace(/[:]/g, '-').replace(/\..*/, '');
  const base = `${dir}${stamp}${run.options.quick ? '-quick' : ''}`;
  writeFileSync(`${base}.json`, `${JSON.stringify(run, null, 2)}\n`);
  const ratios = run.scenarios.flatMap((s) => s.ratios);
  const subtitle = `${run.machine.date.slice(0, 10)}, ${run.machine.nproc}× ${run.machine.cpuModel}, proxy pinned to one core, median of ${run.options.rounds} rounds`;
  const chart = ratioChart(ratios, subtitle);
  writeFileSync(`${base}.svg`, chart);
  process.stderr.write(`results: ${base}.json, ${base}.svg\n`);
  if (publish)
    publishReadme(run, chart, `results/${stamp}${run.options.quick ? '-quick' : ''}.json`);
}

main().then(
  (code) => {
    cleanupNow();
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(
      `bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    cleanupNow();
    process.exit(1);
  },
);
