/**
 * With --workers > 1 the admin port shows prom-client's process metrics (process_*, nodejs_*)
 * once per process, told apart by a `process` label, while the proxy's own serving metrics are
 * summed over the workers. prom-client's cluster aggregation would sum the process metrics too
 * (process_max_fds × the number of processes; CPU counters that drop when a worker is replaced,
 * read by rate() as a reset), average the event-loop percentiles of all processes (a stuck
 * worker averaged away) and omit process_start_time_seconds.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { METRIC_PREFIX } from './metrics.js';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** The label of the per-process series: `primary`, `worker-1` … `worker-N`. */
export const PROCESS_LABEL = 'process';

/** The name of worker slot `slot` (1-based; a replacement worker takes the slot it replaces). */
export function workerProcessName(slot: number): string {
  return `worker-${slot}`;
}

/**
 * `metrics` of one process with its process metrics labelled `process="<name>"`; the proxy's
 * own metrics are left as they are, for the aggregation to sum.
 */
export function labelProcessMetrics(metrics: MetricsJson, name: string): MetricsJson {
  return metrics.map((metric) => {
    if (metric.name.startsWith(METRIC_PREFIX)) return metric;
    return {
      ...metric,
      // Every series now has labels no other process has, so the aggregation passes each one
      // through; 'sum' also replaces prom-client's 'omit' of process_start_time_seconds.
      aggregator: 'sum',
      values: metric.values.map((value) => ({
        ...value,
        labels: { ...value.labels, [PROCESS_LABEL]: name },
      })),
    };
  });
}
