/**
 * One process does everything: loads and watches the inputs, serves clients, answers on the
 * admin port. (`--workers 1`, the default, and the demo.)
 */
import { Registry } from 'prom-client';
import type { Config, HostPort } from '../config/config.js';
import { ConfigError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { AdminServer } from '../metrics/admin.js';
import { controlRegistry, servingRegistry } from '../metrics/metrics.js';
import { upstreamReadiness } from './readiness.js';
import { ProxyServer } from './server.js';
import { SnapshotSource } from './snapshot-source.js';

export interface RunningProxy {
  readonly address: HostPort;
  readonly adminAddress: HostPort;
  /** Re-reads every input now (SIGHUP); a failure keeps the snapshot in force. */
  reload(): Promise<void>;
  /** Graceful stop (--shutdown-grace), then the admin port and the watcher. */
  close(): Promise<void>;
}

export async function startSingle(config: Config, log: Logger): Promise<RunningProxy> {
  const source = new SnapshotSource(config, log);
  const data = await source.start();
  let started: Awaited<ReturnType<typeof ProxyServer.start>>;
  try {
    started = await ProxyServer.start(config, data, log);
  } catch (err) {
    await source.close();
    throw new ConfigError(
      'listen',
      `cannot listen on ${config.listen.host}:${config.listen.port}: ${errorMessage(err)}`,
    );
  }
  const { server, address } = started;
  source.on('snapshot', (next) => server.apply(next));
  const readiness = upstreamReadiness(server.upstream);
  const admin = new AdminServer(
    config.metricsListen,
    Registry.merge([controlRegistry, servingRegistry]),
    readiness,
    log,
  );
  let adminAddress: HostPort;
  try {
    adminAddress = await admin.listen();
  } catch (err) {
    readiness.stop();
    server.close();
    await source.close();
    throw new ConfigError(
      'metrics-listen',
      `cannot listen on ${config.metricsListen.host}:${config.metricsListen.port}: ${errorMessage(err)}`,
    );
  }
  log.info(
    {
      listen: address,
      metricsListen: adminAddress,
      upstream: config.upstream.url,
      workers: 1,
      generation: data.generation,
    },
    'kube-crl-proxy serving',
  );
  return {
    address,
    adminAddress,
    reload: () => source.reload('signal'),
    async close() {
      await server.drain(config.shutdownGraceMs);
      readiness.stop();
      await admin.close();
      await source.close();
    },
  };
}
