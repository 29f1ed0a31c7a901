/**
 * Requests in the metrics: requests_total and request_duration_seconds, counted the same way
 * by every forwarder.
 */
import { methodLabel, onRequestsRead, requestDuration, requests } from '../metrics/metrics.js';
import type { HistogramSeries } from '../metrics/series-histogram.js';
import type { ClientProtocol } from './connection.js';

interface RequestLabels {
  readonly method: string;
  readonly code: string;
  readonly protocol: ClientProtocol;
}

interface Pending {
  readonly labels: RequestLabels;
  count: number;
}

/** Duration series by protocol and status code, bound once. */
const durationSeries: Record<ClientProtocol, Map<number, HistogramSeries>> = {
  h2: new Map(),
  'http/1.1': new Map(),
};
/**
 * requests_total increments gathered by method and code; they go into the counter whenever it
 * is read (a scrape, a worker's report to the primary), not once per request.
 */
const pendingCounts: Record<ClientProtocol, Map<string, Map<number, Pending>>> = {
  h2: new Map(),
  'http/1.1': new Map(),
};
onRequestsRead(flushCounts);

/**
 * Counts a request in requests_total and, unless `started` is -1 (watches, logs -f), its
 * duration. prom-client hashes the label set on every call: the counter is added to once per
 * label set and read rather than once per request.
 */
export function recordRequest(
  protocol: ClientProtocol,
  method: string,
  code: number,
  started: number,
): void {
  const label = methodLabel(method);
  const byMethod = pendingCounts[protocol];
  let byCode = byMethod.get(label);
  if (byCode === undefined) {
    byCode = new Map();
    byMethod.set(label, byCode);
  }
  const pending = byCode.get(code);
  if (pending === undefined)
    byCode.set(code, { labels: { method: label, code: String(code), protocol }, count: 1 });
  else pending.count++;
  if (started < 0) return;
  const byStatus = durationSeries[protocol];
  let series = byStatus.get(code);
  if (series === undefined) {
    series = requestDuration.series({ code: String(code), protocol });
    byStatus.set(code, series);
  }
  series.observe((performance.now() - started) / 1000);
}

function flushCounts(): void {
  for (const byMethod of Object.values(pendingCounts))
    for (const byCode of byMethod.values())
      for (const pending of byCode.values()) {
        if (pending.count === 0) continue;
        requests.inc(pending.labels, pending.count);
        pending.count = 0;
      }
}
