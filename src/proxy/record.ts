/**
 * Requests in the metrics: requests_total and request_duration_seconds, counted the same way
 * by every forwarder.
 */
import { methodLabel, requestDuration, requests } from '../metrics/metrics.js';
import type { ClientProtocol } from './connection.js';

interface RequestLabels {
  readonly method: string;
  readonly code: string;
  readonly protocol: ClientProtocol;
}

/** Label sets by protocol and status code, made once: prom-client keeps a reference. */
const durationLabels = new Map<string, { code: string; protocol: ClientProtocol }>();
/** requests_total increments gathered over one turn of the event loop, by label set. */
const pendingCounts = new Map<string, { labels: RequestLabels; count: number }>();
let countsScheduled = false;

/**
 * Counts a request in requests_total and, unless `started` is -1 (watches, logs -f), its
 * duration. prom-client hashes the label set on every call: the counter is added to once per
 * label set and turn of the event loop rather than once per request.
 */
export function recordRequest(
  protocol: ClientProtocol,
  method: string,
  code: number,
  started: number,
): void {
  const label = methodLabel(method);
  const key = `${protocol} ${label} ${code}`;
  const pending = pendingCounts.get(key);
  if (pending === undefined)
    pendingCounts.set(key, { labels: { method: label, code: String(code), protocol }, count: 1 });
  else pending.count++;
  if (!countsScheduled) {
    countsScheduled = true;
    setImmediate(flushCounts);
  }
  if (started < 0) return;
  const durationKey = `${protocol} ${code}`;
  let labels = durationLabels.get(durationKey);
  if (labels === undefined) {
    labels = { code: String(code), protocol };
    durationLabels.set(durationKey, labels);
  }
  requestDuration.observe(labels, (performance.now() - started) / 1000);
}

function flushCounts(): void {
  countsScheduled = false;
  for (const pending of pendingCounts.values()) {
    if (pending.count === 0) continue;
    requests.inc(pending.labels, pending.count);
    pending.count = 0;
  }
}
