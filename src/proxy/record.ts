/**
 * Requests in the metrics: requests_total and request_duration_seconds, counted the same way
 * by every forwarder.
 */
import { methodLabel, requestDuration, requests } from '../metrics/metrics.js';
import type { HistogramSeries } from '../metrics/series-histogram.js';
import { type Tally, tally } from '../metrics/tally.js';
import type { ClientProtocol } from './connection.js';

/** Duration series by protocol and status code, bound once. */
const durationSeries: Record<ClientProtocol, Map<number, HistogramSeries>> = {
  h2: new Map(),
  'http/1.1': new Map(),
};
/** requests_total series by protocol, method and code. */
const counted: Record<ClientProtocol, Map<string, Map<number, Tally>>> = {
  h2: new Map(),
  'http/1.1': new Map(),
};

/** `started` of a request whose duration is not measured (watches, logs -f, upgrades). */
export const UNTIMED = -1;

/**
 * Counts a request in requests_total and, unless `started` is UNTIMED (watches, logs -f,
 * upgrades), its duration.
 */
export function recordRequest(
  protocol: ClientProtocol,
  method: string,
  code: number,
  started: number,
): void {
  const label = methodLabel(method);
  const byMethod = counted[protocol];
  let byCode = byMethod.get(label);
  if (byCode === undefined) {
    byCode = new Map();
    byMethod.set(label, byCode);
  }
  let series = byCode.get(code);
  if (series === undefined) {
    series = tally(requests, { method: label, code: String(code), protocol });
    byCode.set(code, series);
  }
  series.inc();
  if (started < 0) return;
  const byStatus = durationSeries[protocol];
  let duration = byStatus.get(code);
  if (duration === undefined) {
    duration = requestDuration.series({ code: String(code), protocol });
    byStatus.set(code, duration);
  }
  duration.observe((performance.now() - started) / 1000);
}
