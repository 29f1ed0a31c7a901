/**
 * A real Prometheus (Debian's /usr/bin/prometheus) for the tests and the dashboard render: its
 * own config and storage in a temp dir, loopback only, short scrape and evaluation intervals,
 * and a typed client for the parts of the HTTP API the tests use.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { stringify as toYaml } from 'yaml';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';
export const PROMTOOL_BIN = '/usr/bin/promtool';
/** The job name the alert rules expect (KubeCrlProxyDown). */
export const JOB = 'kube-crl-proxy';

export interface PrometheusOptions {
  /** host:port of each admin listener to scrape. */
  readonly targets: readonly string[];
  readonly ruleFiles?: readonly string[];
  readonly scrapeIntervalSeconds?: number;
}

export type Labels = Readonly<Record<string, string>>;

export interface InstantSample {
  readonly metric: Labels;
  readonly value: [number, string];
}

export interface RangeSeries {
  readonly metric: Labels;
  readonly values: readonly [number, string][];
}

export interface RuleState {
  readonly name: string;
  readonly type: 'alerting' | 'recording';
  readonly health: string;
  readonly lastError?: string;
  readonly state?: 'inactive' | 'pending' | 'firing';
  readonly alerts?: readonly { readonly labels: Labels; readonly state: string }[];
}

interface ApiResponse<T> {
  readonly status: 'success' | 'error';
  readonly data: T;
  readonly error?: string;
}

export interface Prometheus {
  readonly url: string;
  readonly process: ChildProcess;
  instant(expr: string, time?: number): Promise<InstantSample[]>;
  range(expr: string, start: number, end: number, stepSeconds: number): Promise<RangeSeries[]>;
  labelValues(label: string, match: string): Promise<string[]>;
  rules(): Promise<RuleState[]>;
  /** Polls `expr` until `accept` holds for its result; bounded by timeoutMs. */
  waitFor(
    expr: string,
    accept: (samples: InstantSample[]) => boolean,
    timeoutMs: number,
  ): Promise<InstantSample[]>;
  stop(): Promise<void>;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('no port'));
        else resolve(address.port);
      });
    });
  });
}

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  if (!existsSync(PROMETHEUS_BIN)) {
    throw new Error(`${PROMETHEUS_BIN} is missing: apt-get install -y prometheus (see .ci/run)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'kcp-prometheus-'));
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(
    configFile,
    toYaml({
      global: {
        scrape_interval: interval,
        scrape_timeout: interval,
        evaluation_interval: interval,
      },
      rule_files: options.ruleFiles ?? [],
      scrape_configs: [{ job_name: JOB, static_configs: [{ targets: options.targets }] }],
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', () => {});

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => true), delay(5000, false)]);
      if (!killed) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const api = async <T>(path: string, params: Record<string, string>): Promise<T> => {
    const response = await fetch(`${url}${path}?${new URLSearchParams(params)}`, {
      signal: AbortSignal.timeout(10_000),
    }).catch((err: unknown) => {
      const cause =
        err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
      const status = child.exitCode ?? child.signalCode ?? 'running';
      throw new Error(`Prometheus ${path}: ${cause} (prometheus: ${status}; stderr: ${stderr})`);
    });
    const body = (await response.json()) as ApiResponse<T>;
    if (body.status !== 'success') {
      throw new Error(
        `Prometheus ${path} ${JSON.stringify(params)}: ${body.error ?? response.status}`,
      );
    }
    return body.data;
  };

  const instant = async (expr: string, time?: number) => {
    const data = await api<{ resultType: string; result: InstantSample[] }>('/api/v1/query', {
      query: expr,
      ...(time === undefined ? {} : { time: String(time) }),
    });
    if (data.resultType !== 'vector')
      throw new Error(`${expr}: a ${data.resultType}, not a vector`);
    return data.result;
  };

  const prometheus: Prometheus = {
    url,
    process: child,
    instant,
    async range(expr, start, end, stepSeconds) {
      const data = await api<{ result: RangeSeries[] }>('/api/v1/query_range', {
        query: expr,
        start: String(start),
        end: String(end),
        step: String(stepSeconds),
      });
      return data.result;
    },
    labelValues: (label, match) =>
      api<string[]>(`/api/v1/label/${encodeURIComponent(label)}/values`, { 'match[]': match }),
    async rules() {
      const data = await api<{ groups: { rules: RuleState[] }[] }>('/api/v1/rules', {});
      return data.groups.flatMap((g) => g.rules);
    },
    async waitFor(expr, accept, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last: InstantSample[] = [];
      while (Date.now() < deadline) {
        last = await instant(expr);
        if (accept(last)) return last;
        await delay(250);
      }
      throw new Error(
        `Prometheus: ${expr} did not reach the expected value within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
      );
    },
    stop,
  };

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`prometheus exited before it was ready: ${stderr}`);
    }
    const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return prometheus;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus was not ready within 20 s: ${stderr}`);
    }
    await delay(100);
  }
}

/** The value of an instant sample as a number. */
export function sampleValue(sample: InstantSample | undefined): number {
  return sample === undefined ? Number.NaN : Number(sample.value[1]);
}
