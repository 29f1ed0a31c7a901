/**
 * The relay's requests in the metrics: requests_total and request_duration_seconds, as the
 * other forwarders count them (protocol "h2").
 */
import { methodLabel, requestDuration, requests } from '../../metrics/metrics.js';

/** Label sets by status code, made once: prom-client keeps a reference, never changes them. */
const durationLabels = new Map<number, { code: string; protocol: 'h2' }>();
/** requests_total increments gathered over one turn of the event loop, by method and code. */
const pendingCounts = new Map<string, Map<number, { labels: RequestLabels; count: number }>>();
let countsScheduled = false;

interface RequestLabels {
  readonly method: string;
  readonly code: string;
  readonly protocol: 'h2';
}

/**
 * Counts a request in requests_total and, unless `started` is -1 (watches, logs -f), its
 * duration. prom-client hashes the label set on every call: the counter is added to once per
 * label set and turn of the event loop rather than once per request.
 */
export function recordRequest(method: string, code: number, started: number): void {
  const label = methodLabel(method);
  let byCode = pendingCounts.get(label);
  if (byCode === undefined) {
    byCode = new Map();
    pendingCounts.set(label, byCode);
  }
  const pending = byCode.get(code);
  if (pending === undefined)
    byCode.set(code, { labels: { method: label, code: String(code), protocol: 'h2' }, count: 1 });
  else pending.count++;
  if (!countsScheduled) {
    countsScheduled = true;
    setImmediate(flushCounts);
  }
  if (started < 0) return;
  let labels = durationLabels.get(code);
  if (labels === undefined) {
    labels = { code: String(code), protocol: 'h2' };
    durationLabels.set(code, labels);
  }
  requestDuration.observe(labels, (performance.now() - started) / 1000);
}

function flushCounts(): void {
  countsScheduled = false;
  for (const byCode of pendingCounts.values())
    for (const pending of byCode.values()) {
      if (pending.count === 0) continue;
      requests.inc(pending.labels, pending.count);
      pending.count = 0;
    }
}
