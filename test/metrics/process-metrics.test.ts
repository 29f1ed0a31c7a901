/**
 * prom-client's process metrics under their standard names (process_*, nodejs_*: what Node.js
 * dashboards query), and a live scrape of the real proxy that `promtool check metrics` accepts
 * without a word, with one process and with a primary and two workers. With workers, each
 * process's metrics stay apart (label `process`) instead of being summed, while the proxy's
 * own serving counters are still summed over the workers.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { requestH1 } from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { eventually } from '../support/wait.js';
import { exportedSamples, type Sample } from './promql.js';
import { promtool } from './promtool.js';

const cluster = new TestCluster();

before(() => cluster.start());

after(() => cluster.stop());

/** A selection of prom-client's default metrics with the type each must be exported as. */
const STANDARD: readonly [string, string][] = [
  ['process_cpu_seconds_total', 'counter'],
  ['process_start_time_seconds', 'gauge'],
  ['process_resident_memory_bytes', 'gauge'],
  ['process_open_fds', 'gauge'],
  ['process_max_fds', 'gauge'],
  ['nodejs_eventloop_lag_p99_seconds', 'gauge'],
  ['nodejs_heap_size_used_bytes', 'gauge'],
  ['nodejs_active_handles', 'gauge'],
  ['nodejs_gc_duration_seconds', 'histogram'],
  ['nodejs_version_info', 'gauge'],
];

function start(workers: number): Promise<ProxyProcess> {
  return cluster.proxy([`--workers=${workers}`]);
}

async function scrape(proxy: ProxyProcess): Promise<string> {
  const res = await fetch(`${proxy.adminUrl}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The soft "Max open files" limit of a process, as the kernel reports it. */
function maxOpenFiles(pid: number): number {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  return Number(line?.split(/\s{2,}/)[1]);
}

/** The child processes of `pid` (the cluster workers of the primary). */
function childrenOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
    readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number),
  );
}

function processesOf(samples: readonly Sample[], name: string): string[] {
  return samples
    .filter((s) => s.name === name)
    .map((s) => s.labels.process ?? '(none)')
    .sort();
}

async function checkMetricsIsClean(text: string): Promise<void> {
  const result = await promtool(['check', 'metrics'], { stdin: text });
  assert.deepEqual(
    { code: result.code, output: result.output.trim() },
    { code: 0, output: '' },
    'promtool check metrics',
  );
}

/** Standard names and types; none of the default metrics under the project's prefix. */
function checkStandardNames(text: string): void {
  for (const [name, type] of STANDARD) {
    assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `${name} is a ${type}`);
  }
  assert.doesNotMatch(text, /^kube_crl_proxy_(process|nodejs)_/m);
  assert.doesNotMatch(text, /^nodejs_active_\w+_total/m, 'no gauge named _total');
}

describe('process metrics: standard names, promtool check metrics clean on a live scrape', () => {
  test('--workers 1: one set of process metrics, no process label', async () => {
    const proxy = await start(1);
    const status = (
      await requestH1(`${proxy.url}/api`, {
        ca: cluster.pki.clusterCa.certPem,
        cert: cluster.alice,
      })
    ).status;
    assert.equal(status, 200);
    const text = await scrape(proxy);
    await checkMetricsIsClean(text);
    checkStandardNames(text);
    const samples = exportedSamples(text);
    for (const [name] of STANDARD.filter(([, type]) => type !== 'histogram')) {
      assert.ok(
        samples.some((s) => s.name === name && s.labels.process === undefined),
        `${name} without a process label`,
      );
    }
    const maxFds = samples.find((s) => s.name === 'process_max_fds');
    assert.equal(maxFds?.value, maxOpenFiles(proxy.child.pid as number));
  });

  test('--workers 2: per process (primary, worker-1, worker-2), serving counters summed', async () => {
    const proxy = await start(2);
    const primary = proxy.child.pid as number;
    const requests = 6;
    for (let i = 0; i < requests; i++) {
      const res = await requestH1(`${proxy.url}/api`, {
        ca: cluster.pki.clusterCa.certPem,
        cert: cluster.alice,
      });
      assert.equal(res.status, 200);
    }
    const text = await scrape(proxy);
    await checkMetricsIsClean(text);
    checkStandardNames(text);
    const samples = exportedSamples(text);
    const all = ['primary', 'worker-1', 'worker-2'];
    for (const name of [
      'process_cpu_seconds_total',
      'process_start_time_seconds',
      'process_resident_memory_bytes',
      'process_open_fds',
      'process_max_fds',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      assert.deepEqual(processesOf(samples, name), all, name);
    }
    // The limit of each process, not the sum of three (prom-client's cluster aggregation).
    const limit = maxOpenFiles(primary);
    for (const s of samples.filter((x) => x.name === 'process_max_fds')) {
      assert.equal(s.value, limit, `process_max_fds{process="${s.labels.process}"}`);
    }
    // The proxy's own counters: one series, the sum over the workers.
    const accepted = samples.filter(
      (s) => s.name === 'kube_crl_proxy_handshakes_total' && s.labels.reason === 'client_cert',
    );
    assert.deepEqual(
      accepted.map((s) => [s.labels, s.value]),
      [[{ outcome: 'accepted', reason: 'client_cert' }, requests]],
    );
    const forwarded = samples
      .filter((s) => s.name === 'kube_crl_proxy_requests_total')
      .reduce((n, s) => n + s.value, 0);
    assert.equal(forwarded, requests);

    // A worker that dies is replaced in its slot: the same three process labels, no worker-3.
    const workers = childrenOf(primary);
    assert.equal(workers.length, 2, `workers of ${primary}: ${workers}`);
    const [victim] = workers as [number, number];
    process.kill(victim, 'SIGKILL');
    await proxy.waitForLog((l) => l.msg === 'worker exited; starting a replacement');
    await eventually(
      async () => {
        const now = childrenOf(primary);
        if (now.length !== 2 || now.includes(victim)) return false;
        const labels = processesOf(
          exportedSamples(await scrape(proxy)),
          'process_start_time_seconds',
        );
        return JSON.stringify(labels) === JSON.stringify(all);
      },
      20_000,
      'the replacement worker reports as worker-1 or worker-2',
    );
    await checkMetricsIsClean(await scrape(proxy));
  });
});
