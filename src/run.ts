/**
 * Assembles a running proxy from a Config: load and check every input (any failure is a
 * ConfigError before anything listens), then the upstream, the proxy layer, the client
 * listener and the admin listener. Holds the one current snapshot and swaps it on reload.
 */
import { randomBytes } from 'node:crypto';
import type { Config, HostPort } from './config/config.js';
import { errorMessage, InputError } from './errors.js';
import { type Logger, RateLimitedLog } from './log.js';
import { AdminServer } from './metrics/admin.js';
import {
  crlEntries,
  crlLastSuccess,
  crlNextUpdate,
  crlReloads,
  registry,
  snapshotLoadDuration,
} from './metrics/metrics.js';
import { type Credentials, loadCredentials } from './pki/credentials.js';
import { TrustStore } from './pki/trust.js';
import { TrustLoader } from './pki/trust-loader.js';
import { ProxyLayer } from './proxy/proxy.js';
import { Upstream } from './proxy/upstream.js';
import { ClientListener } from './tls/listener.js';
import { checkCertificate, type VerifyPolicy } from './tls/verify.js';

/** Everything that changes at run time, replaced as one object. */
export interface Snapshot {
  readonly generation: number;
  readonly credentials: Credentials;
  readonly trust: TrustStore;
  readonly loadedAt: number;
}

export interface RunningProxy {
  readonly address: HostPort;
  readonly adminAddress: HostPort;
  snapshot(): Snapshot;
  /** Re-reads every input; on failure the snapshot in force stays and the error is thrown. */
  reload(): Promise<Snapshot>;
  close(): Promise<void>;
}

/** The apiserver counts as answering if a TLS connection succeeded this recently. */
const UPSTREAM_FRESH_MS = 15_000;

export async function startProxy(config: Config, log: Logger): Promise<RunningProxy> {
  const policy: VerifyPolicy = {
    requireClientCert: config.requireClientCert,
    crlMissingPolicy: config.crlMissingPolicy,
    crlExpiredPolicy: config.crlExpiredPolicy,
  };
  const loader = new TrustLoader();
  const load = async (previous: Snapshot | null): Promise<Snapshot> => {
    const started = performance.now();
    const credentials = loadCredentials(config.files);
    const { data } = await loader.load(
      {
        clientCaFile: config.files.clientCaFile,
        crlFiles: config.files.crlFiles,
        crlMissingPolicy: config.crlMissingPolicy,
      },
      previous?.trust.data ?? null,
    );
    const snapshot: Snapshot = {
      generation: (previous?.generation ?? 0) + 1,
      credentials,
      trust: new TrustStore(data),
      loadedAt: Date.now(),
    };
    for (const warning of [...credentials.warnings, ...data.warnings])
      log.warn({ generation: snapshot.generation }, warning);
    recordSnapshotMetrics(snapshot, (performance.now() - started) / 1000);
    return snapshot;
  };

  let current: Snapshot;
  try {
    current = await load(null);
  } catch (err) {
    await loader.close();
    crlReloads.inc({ result: 'failure' });
    throw err instanceof InputError ? err.toConfigError() : err;
  }

  const upstream = new Upstream({
    target: config.upstream,
    poolSize: config.upstreamPoolSize,
    timeoutMs: config.upstreamTimeoutMs,
    log,
  });
  upstream.setCredentials(current.credentials);
  const proxy = new ProxyLayer(config, upstream, log);
  const rejectLog = new RateLimitedLog(log, 10, 50);
  const listener = new ClientListener(
    { address: config.listen, policy, trust: () => current.trust, handler: proxy, log, rejectLog },
    current.credentials,
    current.trust,
    randomBytes(48),
  );
  const admin = new AdminServer(
    config.metricsListen,
    registry,
    {
      async check() {
        if (Date.now() - upstream.lastContactAt > UPSTREAM_FRESH_MS) {
          try {
            await upstream.probe();
          } catch (err) {
            return `the apiserver did not answer: ${errorMessage(err)}`;
          }
        }
        return null;
      },
    },
    log,
  );
  const listenOn = async (flag: string, start: () => Promise<HostPort>): Promise<HostPort> => {
    try {
      return await start();
    } catch (err) {
      upstream.close();
      await listener.stopAccepting();
      await loader.close();
      throw new InputError(flag, null, `cannot listen: ${errorMessage(err)}`).toConfigError();
    }
  };
  const address = await listenOn('listen', () => listener.listen());
  const adminAddress = await listenOn('metrics-listen', () => admin.listen());
  crlReloads.inc({ result: 'success' });
  const suppressedReport = setInterval(
    () => rejectLog.flush('rejected clients not logged (rate limit)'),
    10_000,
  );
  suppressedReport.unref();
  log.info(
    {
      listen: address,
      metricsListen: adminAddress,
      upstream: config.upstream.url,
      issuers: current.trust.data.issuers.length,
    },
    'kube-crl-proxy serving',
  );

  const apply = (next: Snapshot) => {
    const previous = current;
    current = next;
    listener.update(next.credentials, next.trust, randomBytes(48));
    if (!sameUpstreamCredentials(next.credentials, previous.credentials))
      upstream.setCredentials(next.credentials);
    const closed = proxy.closeRefused((peer) =>
      checkCertificate(peer, next.trust, policy, Date.now()),
    );
    log.info({ generation: next.generation, closedConnections: closed }, 'snapshot in force');
  };

  return {
    address,
    adminAddress,
    snapshot: () => current,
    async reload() {
      try {
        const next = await load(current);
        crlReloads.inc({ result: 'success' });
        apply(next);
        return next;
      } catch (err) {
        crlReloads.inc({ result: 'failure' });
        log.error(
          { err: errorMessage(err) },
          'reload failed; the last good snapshot stays in force',
        );
        throw err;
      }
    },
    async close() {
      clearInterval(suppressedReport);
      await listener.stopAccepting();
      for (const connection of proxy.registry.connections()) connection.terminate('shutting down');
      upstream.close();
      await admin.close();
      await loader.close();
    },
  };
}

function sameUpstreamCredentials(a: Credentials, b: Credentials): boolean {
  return (
    a.proxyClientCertPem === b.proxyClientCertPem &&
    a.proxyClientKeyPem === b.proxyClientKeyPem &&
    a.upstreamCaPem === b.upstreamCaPem
  );
}

function recordSnapshotMetrics(snapshot: Snapshot, seconds: number): void {
  crlEntries.reset();
  crlNextUpdate.reset();
  for (const entry of snapshot.trust.entries) {
    const issuer = entry.cert.subject;
    crlEntries.set({ issuer }, entry.revocations?.set.count ?? 0);
    const nextUpdate = entry.revocations?.nextUpdate;
    if (nextUpdate !== undefined && nextUpdate !== null)
      crlNextUpdate.set({ issuer }, nextUpdate / 1000);
  }
  crlLastSuccess.set(snapshot.loadedAt / 1000);
  snapshotLoadDuration.set(seconds);
}
