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
import { Upstream } from '../proxy/upstream.js';
import { upstreamReadiness } from './readiness.js';
import { ProxyServer } from './server.js';
import type { RunningProxy } from './single.js';
import { type SnapshotData, SnapshotSource } from './snapshot-source.js';

type ToWorker = { readonly type: 'snapshot'; readonly data: SnapshotData };
type ToPrimary =
  | { readonly type: 'hello' }
  | { readonly type: 'listening'; readonly address: HostPort }
  | { readonly type: 'listen-failed'; readonly error: string };

/** A worker that dies is replaced after this pause (so a crash loop cannot spin). */
const RESPAWN_DELAY_MS = 1_000;

export async function startPrimary(config: Config, log: Logger): Promise<RunningProxy> {
  const source = new SnapshotSource(config, log);
  await source.start();
  cluster.setupPrimary({ serialization: 'advanced' });
  let stopping = false;
  const listening = new Set<number>();
  let firstAddress: HostPort | null = null;

  const fork = (): Promise<HostPort> => {
    const worker = cluster.fork();
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
        reject(new Error(`worker exited with ${code ?? signal} before listening`));
        if (stopping) return;
        log.error({ worker: worker.id, code, signal }, 'worker exited; starting a replacement');
        setTimeout(() => {
          if (!stopping)
            fork().catch((err) =>
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
    const addresses = await Promise.all(Array.from({ length: config.workers }, () => fork()));
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
  const aggregator = new AggregatorRegistry();
  const metrics = {
    contentType: controlRegistry.contentType,
    async metrics() {
      return `${await controlRegistry.metrics()}\n${await aggregator.clusterMetrics()}`;
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

function send(worker: Worker, message: ToWorker): void {
  if (worker.isConnected()) worker.send(message);
}

/** A worker: serves clients with the snapshots the primary sends. Resolves with a closer. */
export function startWorker(config: Config, log: Logger): Promise<{ close(): Promise<void> }> {
  AggregatorRegistry.setRegistries([servingRegistry]);
  // Constructing one is what makes prom-client answer the primary's metric requests.
  new AggregatorRegistry();
  const reply = (message: ToPrimary) => process.send?.(message);
  return new Promise((resolve) => {
    let server: ProxyServer | null = null;
    let starting = false;
    process.on('message', (message: ToWorker) => {
      if (message.type !== 'snapshot') return;
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
