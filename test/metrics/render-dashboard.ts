/**
 * `npm run render-dashboard [-- OUT.png [SECONDS]]`: starts the proxy, the fake apiserver and
 * a real Prometheus, drives a mixed load with incidents for ~100 s (a revoked credential in a
 * retry loop, failed reloads, the front-proxy-client input refused for a while, revoked users
 * cut, an apiserver restart, exec sessions, a connection flood past --max-connections), queries
 * every panel of grafana/kube-crl-proxy.json from Prometheus exactly as Grafana would, draws
 * the dashboard (render.ts) and has headless Debian chromium take the screenshot
 * (grafana/dashboard.png by default). Needs /usr/bin/prometheus and /usr/bin/chromium.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ALERTS_FILE, GRAFANA_DIR, interpolate, legend, loadDashboard } from './dashboard.js';
import { PROMETHEUS_BIN, type Prometheus, startPrometheus } from './prometheus.js';
import { pageHeight, renderHtml, type Series } from './render.js';
import {
  driveLoad,
  type LoadPlan,
  MAX_CONNECTIONS,
  type Mix,
  startWorld,
  type World,
} from './scenario.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--hide-scrollbars',
  '--force-device-scale-factor=1',
  // Paint the whole page before the screenshot is taken.
  '--run-all-compositor-stages-before-draw',
  '--virtual-time-budget=5000',
];
const WIDTH = 1800;
const SCRAPE_INTERVAL_S = 1;
const STEP_S = 1;
/** Grafana's $__rate_interval: max($__interval + scrape interval, 4 × scrape interval). */
const RATE_INTERVAL = `${Math.max(STEP_S + SCRAPE_INTERVAL_S, 4 * SCRAPE_INTERVAL_S)}s`;

const BASELINE: Mix = {
  'good-h1': 4,
  'good-h1-keepalive': 2,
  'good-h2': 3,
  'no-cert': 1,
  revoked: 0.3,
  'unknown-ca': 0.3,
  'expired-cert': 0.3,
  'crl-expired': 0.5,
  'tls-garbage': 0.2,
};

function renderPlan(durationMs: number): LoadPlan {
  return {
    durationMs,
    workers: 3,
    // A busier stretch early on, a quieter end.
    pauseMs: (p) => (p > 0.18 && p < 0.4 ? 25 : p > 0.88 ? 90 : 50),
    mix: (p) => {
      if (p > 0.45 && p < 0.62) return { ...BASELINE, revoked: 8 }; // a leaked, revoked credential in a retry loop
      if (p > 0.76 && p < 0.86) return { ...BASELINE, 'unknown-ca': 3 }; // a client with a foreign CA
      return BASELINE;
    },
    events: [
      { at: 0.06, event: { kind: 'exec', holdMs: 0.45 * durationMs } },
      { at: 0.12, event: { kind: 'exec', holdMs: 0.65 * durationMs } },
      { at: 0.25, event: { kind: 'cut-revoked-connection' } },
      { at: 0.35, event: { kind: 'failed-reload' } },
      { at: 0.37, event: { kind: 'failed-reload' } },
      { at: 0.5, event: { kind: 'exec', holdMs: 0.25 * durationMs } },
      { at: 0.53, event: { kind: 'refused-input', holdMs: 0.08 * durationMs } },
      { at: 0.64, event: { kind: 'apiserver-outage', ms: 3_000 } },
      { at: 0.72, event: { kind: 'cut-revoked-connection' } },
      { at: 0.82, event: { kind: 'failed-reload' } },
      {
        at: 0.92,
        event: { kind: 'connection-flood', connections: MAX_CONNECTIONS + 40, holdMs: 2_000 },
      },
    ],
  };
}

async function screenshot(html: string, height: number, out: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kcp-render-'));
  try {
    const page = join(dir, 'dashboard.html');
    writeFileSync(page, html);
    const shot = join(dir, 'dashboard.png');
    await new Promise<void>((done, fail) => {
      const child = spawn(
        CHROMIUM,
        [
          ...CHROMIUM_FLAGS,
          `--user-data-dir=${join(dir, 'profile')}`,
          `--window-size=${WIDTH},${height}`,
          `--screenshot=${shot}`,
          pathToFileURL(page).href,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.once('error', fail);
      child.once('exit', (code) => {
        clearTimeout(timer);
        if (code === 0 && existsSync(shot)) done();
        else fail(new Error(`chromium exited with ${code}: ${stderr}`));
      });
    });
    const png = readFileSync(shot);
    if (png.subarray(1, 4).toString('latin1') !== 'PNG') throw new Error('chromium wrote no PNG');
    writeFileSync(out, png);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function panelData(
  prometheus: Prometheus,
  instance: string,
  start: number,
  end: number,
): Promise<Map<number, Series[]>> {
  const data = new Map<number, Series[]>();
  for (const panel of loadDashboard().panels) {
    const series: Series[] = [];
    for (const target of panel.targets ?? []) {
      const expr = interpolate(target.expr, { instances: [instance], rateInterval: RATE_INTERVAL });
      for (const s of await prometheus.range(expr, start, end, STEP_S)) {
        const points = new Map(s.values.map(([t, v]) => [t, Number(v)]));
        const filled: [number, number | null][] = [];
        for (let t = start; t <= end; t += STEP_S) {
          const v = points.get(t);
          filled.push([t, v === undefined || Number.isNaN(v) ? null : v]);
        }
        series.push({ name: legend(target.legendFormat, s.metric), points: filled });
      }
    }
    const byName = panel.type === 'bargauge' || panel.type === 'state-timeline';
    series.sort((a, b) => (byName ? a.name.localeCompare(b.name) : 0));
    data.set(panel.id, series);
  }
  return data;
}

async function main(): Promise<void> {
  const out = resolve(process.argv[2] ?? join(GRAFANA_DIR, 'dashboard.png'));
  const seconds = Number(process.argv[3] ?? 100);
  for (const [bin, hint] of [
    [PROMETHEUS_BIN, 'apt-get install -y prometheus'],
    [CHROMIUM, 'apt-get update && apt-get install -y chromium'],
  ] as const) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: ${hint}`);
  }
  const world: World = await startWorld();
  let prometheus: Prometheus | null = null;
  try {
    prometheus = await startPrometheus({
      targets: [world.adminTarget],
      ruleFiles: [ALERTS_FILE],
      scrapeIntervalSeconds: SCRAPE_INTERVAL_S,
    });
    process.stdout.write(`driving ${seconds} s of mixed load against ${world.proxy.url}…\n`);
    const report = await driveLoad(world, renderPlan(seconds * 1000));
    const { exitCode, signalCode } = world.proxy.child;
    if (exitCode !== null || signalCode !== null) {
      throw new Error(`the proxy exited during the load (${exitCode ?? signalCode}): no picture`);
    }
    await new Promise((r) => setTimeout(r, 3 * SCRAPE_INTERVAL_S * 1000));
    const start = Math.floor(report.startedAt / 1000);
    const end = Math.floor(Date.now() / 1000);
    const dashboard = loadDashboard();
    const html = renderHtml({
      dashboard,
      data: await panelData(prometheus, world.adminTarget, start, end),
      start,
      end,
      width: WIDTH,
      variables: [
        ['Data source', 'Prometheus'],
        ['Instance', world.adminTarget],
      ],
      footer: `Rendered by npm run render-dashboard from a real Prometheus scraping kube-crl-proxy every ${SCRAPE_INTERVAL_S} s under a synthetic load ($__rate_interval = ${RATE_INTERVAL}).`,
    });
    await screenshot(html, pageHeight(dashboard), out);
    const attempts = Object.entries(report.clients)
      .map(([kind, c]) => `${kind} ${c.attempts}`)
      .join(', ');
    process.stdout.write(
      `${out} written. Clients: ${attempts}; cut ${report.cutConnections}, failed reloads ${report.failedReloads}, refused inputs ${report.refusedInputs}, upgrades ${report.upgrades}.\n`,
    );
  } finally {
    await prometheus?.stop();
    await world.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`render-dashboard: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
