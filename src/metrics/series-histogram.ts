/**
 * A histogram whose label sets are bound once (`series(labels)`) and observed into plain
 * counters. prom-client's Histogram validates and hashes the label object on every
 * observe(), a cost per request that stood out in the HTTP/1.1 CPU profile
 * (bench/README.md#figures-behind-design-choices-in-src). This registers with a prom-client Registry like any of its
 * metrics and exports exactly what a prom-client Histogram with the same observations would
 * (test/metrics/series-histogram.test.ts compares the two), cluster aggregation included.
 */
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

/** One exported value, as prom-client's metrics give them to a Registry. */
interface ExportedValue {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName: string;
}

interface ExportedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly values: ExportedValue[];
  readonly aggregator: 'sum';
}

export interface HistogramSeries {
  observe(seconds: number): void;
}

class Series implements HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

export interface SeriesHistogramOptions {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly buckets: readonly number[];
  readonly registers: readonly Registry[];
}

export class SeriesHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly labelNames: readonly string[];
  private readonly bounds: readonly number[];
  private readonly byKey = new Map<string, Series>();

  constructor(options: SeriesHistogramOptions) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.bounds = [...options.buckets].sort((a, b) => a - b);
    // registerMetric is typed for prom-client's own classes; it reads name and calls get().
    for (const registry of options.registers)
      registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series of `labels` (exactly the label names), made on first use and kept. */
  series(labels: Labels): HistogramSeries {
    const names = Object.keys(labels);
    if (names.length !== this.labelNames.length || !this.labelNames.every((n) => n in labels))
      throw new Error(`${this.name}: labels must be exactly ${this.labelNames.join(', ')}`);
    const key = this.labelNames.map((n) => labels[n]).join('\u0000');
    let series = this.byKey.get(key);
    if (series === undefined) {
      series = new Series({ ...labels }, this.bounds);
      this.byKey.set(key, series);
    }
    return series;
  }

  reset(): void {
    for (const series of this.byKey.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }

  /** prom-client's histogram export: cumulative `_bucket` per bound and +Inf, `_sum`, `_count`. */
  async get(): Promise<ExportedMetric> {
    const values: ExportedValue[] = [];
    for (const series of this.byKey.values()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.counts[i] as number;
        values.push({
          labels: { le: bound, ...series.labels },
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      });
      values.push({
        labels: { le: '+Inf', ...series.labels },
        value: series.count,
        metricName: `${this.name}_bucket`,
      });
      values.push({ labels: series.labels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: series.labels, value: series.count, metricName: `${this.name}_count` });
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    };
  }
}
