/**
 * `--workers N` (N > 1): Node 20 has no reusePort, so the cluster module spreads client
 * connections over N worker processes. The primary alone loads, verifies and watches the
 * inputs — a CRL is parsed once, not once per worker — and sends each snapshot (its serial
 * buffers included) to every worker; it also answers on the admin port, with the workers'
 * metrics aggregated.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Config, HostPort } from '../config/config.js';
import { ConfigError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { AdminServer } from '../metrics/admin.js';
import { controlRegistry, servingRegistry } from '../metrics/metrics.js';
import {
  labelProcessMetrics,
  type MetricsJson,
  workerProcessName,
} from '../metrics/per-process.js';
import { Upstream } from '../proxy/upstream.js';
import { upstreamReadiness } from './readiness.js';
import { ProxyServer } from './server.js';
import type { RunningProxy } from './single.js';
import { type SnapshotData, SnapshotSource } from './snapshot-source.js';

type ToWorker =
  | { readonly type: 'snapshot'; readonly data: SnapshotData }
  | { readonly type: 'metrics-request'; readonly requestId: number };
type ToPrimary =
  | { readonly type: 'hello' }
  | { readonly type: 'listening'; readonly address: HostPort }
  | { readonly type: 'listen-failed'; readonly error: string }
  | { readonly type: 'metrics'; readonly requestId: number; readonly metrics: MetricsJson };

/** A worker that does not answer a metrics request within this is left out of that scrape. */
const METRICS_TIMEOUT_MS = 2_000;

/** A worker that dies is replaced after this pause (so a crash loop cannot spin). */
const RESPAWN_DELAY_MS = 1_000;

export async function startPrimary(config: Config, log: Logger): Promise<RunningProxy> {
  const source = new SnapshotSource(config, log);
  await source.start();
  cluster.setupPrimary({ serialization: 'advanced' });
  let stopping = false;
  const listening = new Set<number>();
  let firstAddress: HostPort | null = null;
  /** Worker id → slot (1..N): a replacement takes its predecessor's slot and metric label. */
  const slots = new Map<number, number>();

  const fork = (slot: number): Promise<HostPort> => {
    const worker = cluster.fork();
    slots.set(worker.id, slot);
    return new Promise((resolve, reject) => {
      worker.on('message', (message: ToPrimary) => {
        // The worker says hello once it listens for messages (earlier ones would be lost).
        if (message.type === 'hello') {
          send(worker, { type: 'snapshot', data: source.current });
        } else if (message.type === 'listening') {
          listening.add(worker.id);
          resolve(message.address);
        } else if (message.type === 'listen-failed') {
          reject(
            new ConfigError(
              'listen',
              `cannot listen on ${config.listen.host}:${config.listen.port}: ${message.error}`,
            ),
          );
        }
      });
      worker.once('exit', (code, signal) => {
        listening.delete(worker.id);
        slots.delete(worker.id);
        reject(new Error(`worker exited with ${code ?? signal} before listening`));
        if (stopping) return;
        log.error({ worker: worker.id, code, signal }, 'worker exited; starting a replacement');
        setTimeout(() => {
          if (!stopping)
            fork(slot).catch((err) =>
              log.error({ err: errorMessage(err) }, 'replacement worker failed'),
            );
        }, RESPAWN_DELAY_MS).unref();
      });
    });
  };

  const stopWorkers = async () => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter(
      (w): w is Worker => w !== undefined,
    );
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once('exit', () => resolve());
            w.process.kill('SIGTERM');
          }),
      ),
    );
  };

  try {
    const addresses = await Promise.all(
      Array.from({ length: config.workers }, (_, i) => fork(i + 1)),
    );
    firstAddress = addresses[0] as HostPort;
  } catch (err) {
    await stopWorkers();
    await source.close();
    throw err;
  }
  source.on('snapshot', (data) => {
    for (const worker of Object.values(cluster.workers ?? {}))
      if (worker !== undefined) send(worker, { type: 'snapshot', data });
  });

  // The primary dials the apiserver itself (no pool) to judge readiness.
  const probe = new Upstream({
    target: config.upstream,
    poolSize: 0,
    timeoutMs: config.upstreamTimeoutMs,
    log,
  });
  probe.setCredentials(source.current.credentials);
  source.on('snapshot', (data) => probe.setCredentials(data.credentials));
  const readiness = upstreamReadiness(probe, () =>
    listening.size < config.workers
      ? `${listening.size} of ${config.workers} workers are serving`
      : null,
  );
  // Workers' serving metrics summed with the primary's (all zero: it serves no client); the
  // process metrics of each process apart, the primary's included (it loads the inputs).
  const metrics = {
    contentType: controlRegistry.contentType,
    async metrics() {
      const workers = await collectWorkerMetrics();
      const parts = [
        await controlRegistry.getMetricsAsJSON(),
        labelProcessMetrics(await servingRegistry.getMetricsAsJSON(), 'primary'),
        ...workers.flatMap(({ workerId, metrics }) => {
          const slot = slots.get(workerId);
          return slot === undefined ? [] : [labelProcessMetrics(metrics, workerProcessName(slot))];
        }),
      ];
      return AggregatorRegistry.aggregate(parts as MetricsJson[]).metrics();
    },
  };
  const admin = new AdminServer(config.metricsListen, metrics, readiness, log);
  let adminAddress: HostPort;
  try {
    adminAddress = await admin.listen();
  } catch (err) {
    await stopWorkers();
    await source.close();
    throw new ConfigError(
      'metrics-listen',
      `cannot listen on ${config.metricsListen.host}:${config.metricsListen.port}: ${errorMessage(err)}`,
    );
  }
  log.info(
    {
      listen: firstAddress,
      metricsListen: adminAddress,
      upstream: config.upstream.url,
      workers: config.workers,
      generation: source.current.generation,
    },
    'kube-crl-proxy serving',
  );
  return {
    address: firstAddress,
    adminAddress,
    reload: () => source.reload('signal'),
    async close() {
      readiness.stop();
      probe.close();
      await stopWorkers();
      await admin.close();
      await source.close();
    },
  };
}

let metricsRequests = 0;

/** Asks every live worker for its serving metrics (as JSON, for prom-client's aggregation). */
function collectWorkerMetrics(): Promise<{ workerId: number; metrics: MetricsJson }[]> {
  const requestId = ++metricsRequests;
  const workers = Object.values(cluster.workers ?? {}).filter(
    (w): w is Worker => w?.isConnected() === true,
  );
  return Promise.all(
    workers.map(
      (worker) =>
        new Promise<{ workerId: number; metrics: MetricsJson }>((resolve) => {
          const done = (metrics: MetricsJson) => {
            clearTimeout(timer);
            worker.off('message', onMessage);
            resolve({ workerId: worker.id, metrics });
          };
          const onMessage = (message: ToPrimary) => {
            if (message.type === 'metrics' && message.requestId === requestId)
              done(message.metrics);
          };
          const timer = setTimeout(() => done([]), METRICS_TIMEOUT_MS);
          worker.on('message', onMessage);
          send(worker, { type: 'metrics-request', requestId });
        }),
    ),
  );
}

function send(worker: Worker, message: ToWorker): void {
  if (worker.isConnected()) worker.send(message);
}

/** A worker: serves clients with the snapshots the primary sends. Resolves with a closer. */
export function startWorker(config: Config, log: Logger): Promise<{ close(): Promise<void> }> {
  const reply = (message: ToPrimary) => process.send?.(message);
  return new Promise((resolve) => {
    let server: ProxyServer | null = null;
    let starting = false;
    process.on('message', (message: ToWorker) => {
      if (message.type === 'metrics-request') {
        servingRegistry.getMetricsAsJSON().then((metrics) =>
          reply({
            type: 'metrics',
            requestId: message.requestId,
            metrics: metrics as MetricsJson,
          }),
        );
        return;
      }
      if (server !== null) {
        server.apply(message.data);
        return;
      }
      if (starting) return;
      starting = true;
      ProxyServer.start(config, message.data, log).then(
        (started) => {
          server = started.server;
          reply({ type: 'listening', address: started.address });
          resolve({ close: () => started.server.drain(config.shutdownGraceMs) });
        },
        (err) => {
          reply({ type: 'listen-failed', error: errorMessage(err) });
          process.exit(1);
        },
      );
    });
    reply({ type: 'hello' });
  });
}
