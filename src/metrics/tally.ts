/**
 * Hot-path counts of one series of a prom-client metric, kept as a number and added to the
 * metric when it is read (a scrape, a worker's report to the primary). prom-client hashes the
 * label set on every inc(); the per-connection and per-request paths count into tallies
 * instead. A metric with tallies has `collect: collectTallies`.
 */
import type { Counter, Gauge } from 'prom-client';

type Labels = Record<string, string>;
type Metric = Counter<string> | Gauge<string>;

const tallies = new WeakMap<object, Tally[]>();

export class Tally {
  private pending = 0;

  constructor(
    private readonly metric: Metric,
    private readonly labels: Labels,
  ) {}

  inc(): void {
    this.pending++;
  }

  /** Gauges only. */
  dec(): void {
    this.pending--;
  }

  flush(): void {
    if (this.pending === 0) return;
    this.metric.inc(this.labels, this.pending);
    this.pending = 0;
  }
}

/** A tally of `metric`'s series `labels` (the series exists, at 0, from now on). */
export function tally<T extends string>(
  metric: Counter<T> | Gauge<T>,
  labels: Record<T, string>,
): Tally {
  const created = new Tally(metric as Metric, labels);
  metric.inc(labels as never, 0);
  let list = tallies.get(metric);
  if (list === undefined) {
    list = [];
    tallies.set(metric, list);
  }
  list.push(created);
  return created;
}

/** The `collect` of a metric counted through tallies: brings their counts in. */
export function collectTallies(this: object): void {
  for (const pending of tallies.get(this) ?? []) pending.flush();
}
