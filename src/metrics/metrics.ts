/**
 * Every metric of kube-crl-proxy, declared together: the names grafana/ and docs/operating.md
 * rely on (test/metrics checks the dashboard and the alerts against them). Help texts
 * are the documentation. Label values are bounded: reasons, protocols, result, status codes,
 * normalised methods and CA names (one per CA of the bundle) — never serials, users or paths.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { SeriesHistogram } from './series-histogram.js';
import { collectTallies } from './tally.js';

/**
 * Metrics of the processes that serve clients (with the process metrics). With --workers > 1
 * each worker has its own and the primary aggregates them on the admin port.
 */
export const servingRegistry = new Registry();
// prom-client's process_* and nodejs_* under their standard names (no prefix): the names
// every Node.js dashboard queries.
collectDefaultMetrics({ register: servingRegistry });
// Gauges named _total, which Prometheus reserves for counters (`promtool check metrics` flags
// them); the same numbers are the sum over `type` of nodejs_active_handles, _requests and
// _resources.
for (const name of [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]) {
  servingRegistry.removeSingleMetric(name);
}

/** Our own metrics' prefix; the rest of servingRegistry is prom-client's process metrics. */
export const METRIC_PREFIX = 'kube_crl_proxy_';

/** Metrics of the process that loads the inputs and answers on the admin port. */
export const controlRegistry = new Registry();

export const handshakes = new Counter({
  name: 'kube_crl_proxy_handshakes_total',
  help: 'Client TLS connections by verdict: outcome="accepted" (reason "client_cert" or "no_cert") or "rejected" with the reason (revoked, unknown_ca, cert_expired, no_cert, crl_missing, crl_expired, denied, ...).',
  labelNames: ['outcome', 'reason'] as const,
  registers: [servingRegistry],
  collect: collectTallies,
});

export const tlsErrors = new Counter({
  name: 'kube_crl_proxy_tls_handshake_errors_total',
  help: 'Client connections that failed before a TLS handshake completed (protocol errors, timeouts, resets).',
  registers: [servingRegistry],
});

export const connectionsDropped = new Counter({
  name: 'kube_crl_proxy_connections_dropped_total',
  help: 'Client connections closed at once because --max-connections were already open.',
  registers: [servingRegistry],
});

export const crlReloads = new Counter({
  name: 'kube_crl_proxy_crl_reloads_total',
  help: 'Loads of the inputs (CRLs, CA bundle, certificates) by result: success when every input was accepted; failure when an input was refused for a reason not reported by the load before (it keeps its last good value; the other inputs apply).',
  labelNames: ['result'] as const,
  registers: [controlRegistry],
});

export const crlEntries = new Gauge({
  name: 'kube_crl_proxy_crl_entries',
  help: 'Revoked serials in force per issuing CA.',
  labelNames: ['issuer'] as const,
  registers: [controlRegistry],
});

export const crlNextUpdate = new Gauge({
  name: 'kube_crl_proxy_crl_next_update_timestamp_seconds',
  help: 'nextUpdate of the CRL in force per issuing CA, as a Unix timestamp (absent when the CRL has none).',
  labelNames: ['issuer'] as const,
  registers: [controlRegistry],
});

export const crlThisUpdate = new Gauge({
  name: 'kube_crl_proxy_crl_this_update_timestamp_seconds',
  help: 'thisUpdate of the CRL in force per issuing CA, as a Unix timestamp: time() minus it is the age of the revocation data enforced.',
  labelNames: ['issuer'] as const,
  registers: [controlRegistry],
});

export const crlUrlFetches = new Counter({
  name: 'kube_crl_proxy_crl_url_fetches_total',
  help: 'Fetches of --crl-url CRLs by result: success (a new CRL put in force), not_modified (HTTP 304: the copy in force is current), failure (no answer, an HTTP error, a limit passed, or a CRL refused by the checks; the copy in force stays).',
  labelNames: ['result'] as const,
  registers: [controlRegistry],
});

export const crlUrlLastSuccess = new Gauge({
  name: 'kube_crl_proxy_crl_url_last_success_timestamp_seconds',
  help: 'Unix time of the last fetch of this --crl-url that gave the copy in force (a new CRL put in force, or a 304); after a restart from the cached copy, the time that copy was fetched.',
  labelNames: ['url'] as const,
  registers: [controlRegistry],
});

export const crlUrlLastFetchSuccess = new Gauge({
  name: 'kube_crl_proxy_crl_url_last_fetch_success',
  help: '1 when the last fetch of this --crl-url gave the copy in force (success or not_modified), 0 when it failed (the copy in force stays).',
  labelNames: ['url'] as const,
  registers: [controlRegistry],
});

export const crlLastSuccess = new Gauge({
  name: 'kube_crl_proxy_crl_last_success_timestamp_seconds',
  help: 'Unix time of the last load that accepted the CRLs (the crl input).',
  registers: [controlRegistry],
});

export const snapshotLoadDuration = new Gauge({
  name: 'kube_crl_proxy_crl_last_load_duration_seconds',
  help: 'Wall time of the last successful load of the inputs (read, parse, verify, index).',
  registers: [controlRegistry],
});

export const ready = new Gauge({
  name: 'kube_crl_proxy_ready',
  help: '1 when /readyz would answer 200 (a snapshot is in force and the apiserver answered recently), else 0; evaluated every few seconds.',
  registers: [controlRegistry],
});

export const crlLastReloadSuccess = new Gauge({
  name: 'kube_crl_proxy_crl_last_reload_success',
  help: '1 when the last load of the inputs refused none of them, 0 while any input is refused (kube_crl_proxy_input_last_reload_success says which; each refused input keeps its last good value).',
  registers: [controlRegistry],
});

export const inputLastReloadSuccess = new Gauge({
  name: 'kube_crl_proxy_input_last_reload_success',
  help: '1 when the last load of this input succeeded (or found it unchanged), 0 while its files are refused and its last good value stays in force. input: client-ca, crl, serving, proxy-client, upstream-ca, deny (only with --deny-file).',
  labelNames: ['input'] as const,
  registers: [controlRegistry],
});

export const inputLastSuccess = new Gauge({
  name: 'kube_crl_proxy_input_last_success_timestamp_seconds',
  help: 'Unix time of the last load that accepted this input (its value in force was read then or is unchanged since).',
  labelNames: ['input'] as const,
  registers: [controlRegistry],
});

export const certificateExpiry = new Gauge({
  name: 'kube_crl_proxy_certificate_expiry_timestamp_seconds',
  help: 'notAfter, as a Unix timestamp, of the certificate in force per input: the serving and front-proxy-client certificates, and the earliest-expiring CA of --client-ca-file (client-ca) and of --upstream-ca-file (upstream-ca).',
  labelNames: ['input'] as const,
  registers: [controlRegistry],
});

export const snapshotGeneration = new Gauge({
  name: 'kube_crl_proxy_snapshot_generation',
  help: 'Generation of the input snapshot in force; increases by one at every successful reload.',
  registers: [controlRegistry],
});

export const revokedConnectionsClosed = new Counter({
  name: 'kube_crl_proxy_revoked_connections_closed_total',
  help: 'Open client connections closed because their certificate is no longer accepted: a new snapshot (a CRL, the CA bundle or the deny file changed), a CRL past its nextUpdate, or a certificate expired.',
  registers: [servingRegistry],
});

export const requests = new Counter({
  name: 'kube_crl_proxy_requests_total',
  help: 'Requests forwarded (or answered by the proxy) by method, status code and client protocol.',
  labelNames: ['method', 'code', 'protocol'] as const,
  registers: [servingRegistry],
  collect: collectTallies,
});

export const requestDuration = new SeriesHistogram({
  name: 'kube_crl_proxy_request_duration_seconds',
  help: 'Time from request head to the end of the response, by status code and client protocol, for ordinary requests; watches, logs -f and upgrades are excluded (they are long by design).',
  labelNames: ['code', 'protocol'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [servingRegistry],
});

export const activeConnections = new Gauge({
  name: 'kube_crl_proxy_active_connections',
  help: 'Open client connections by negotiated protocol.',
  labelNames: ['protocol'] as const,
  registers: [servingRegistry],
  collect: collectTallies,
});

export const activeUpgrades = new Gauge({
  name: 'kube_crl_proxy_active_upgrades',
  help: 'Open upgraded tunnels (exec, attach, port-forward) by kind: websocket or spdy.',
  labelNames: ['kind'] as const,
  registers: [servingRegistry],
});

export const upstreamErrors = new Counter({
  name: 'kube_crl_proxy_upstream_errors_total',
  help: 'Failures talking to the apiserver by kind: connect, tls, timeout, reset, protocol.',
  labelNames: ['kind'] as const,
  registers: [servingRegistry],
});

/**
 * Creates the series a dashboard or alert expects to see before the first event (a counter
 * that appears only at its first increment hides that increment from increase()).
 */
export function zeroSeries<T extends string>(
  metric: Counter<T> | Gauge<T>,
  combinations: ReadonlyArray<Record<T, string>>,
): void {
  for (const labels of combinations) metric.inc(labels as never, 0);
}

const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'CONNECT',
]);

/** Keeps the method label bounded. */
export function methodLabel(method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : 'OTHER';
}
