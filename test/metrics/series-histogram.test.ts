/**
 * SeriesHistogram exports exactly what prom-client's Histogram exports for the same
 * observations: in the Prometheus text, in the JSON a cluster worker sends, and once the
 * primary has aggregated several workers' JSON.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { SeriesHistogram } from '../../src/metrics/series-histogram.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const OPTIONS = { name: 'x_duration_seconds', help: 'help text', labelNames: ['code', 'protocol'] };

/** Observations on bounds, between them, below the first and above the last. */
function observations(seed: number): [Record<string, string>, number][] {
  const labels = [
    { code: '200', protocol: 'h2' },
    { code: '404', protocol: 'http/1.1' },
    { code: '200', protocol: 'http/1.1' },
  ];
  const values = [0, 0.001, 0.0011, 0.25, 0.2500001, 59.9, 60, 61, 1e6, 0.0004];
  const out: [Record<string, string>, number][] = [];
  for (let i = 0; i < 200; i++)
    out.push([
      labels[(i * 7 + seed) % labels.length] as Record<string, string>,
      (values[(i * 3 + seed) % values.length] as number) * (1 + (i % 5) / 1000),
    ]);
  return out;
}

/**
 * JSON as a cluster worker sends it to the primary, without the exemplar fields prom-client
 * sets to null/undefined on every value (exemplars are not enabled anywhere).
 */
function asSent(json: unknown): unknown {
  return JSON.parse(JSON.stringify(json, (key, value) => (key === 'exemplar' ? undefined : value)));
}

function pair(seed: number) {
  const ours = new Registry();
  const theirs = new Registry();
  const series = new SeriesHistogram({ ...OPTIONS, buckets: BUCKETS, registers: [ours] });
  const reference = new Histogram({ ...OPTIONS, buckets: BUCKETS, registers: [theirs] });
  for (const [labels, value] of observations(seed)) {
    series.series(labels).observe(value);
    reference.observe(labels, value);
  }
  return { ours, theirs, series };
}

describe('SeriesHistogram', () => {
  test('the same text and JSON as prom-client Histogram', async () => {
    const { ours, theirs } = pair(1);
    assert.equal(await ours.metrics(), await theirs.metrics());
    assert.deepEqual(
      asSent(await ours.getMetricsAsJSON()),
      asSent(await theirs.getMetricsAsJSON()),
    );
    assert.equal(
      await Registry.merge([ours, new Registry()]).metrics(),
      await theirs.metrics(),
      'merged with another registry (single mode)',
    );
  });

  test('the same after cluster aggregation of several workers', async () => {
    const workers = [pair(1), pair(2), pair(3)];
    const aggregate = async (side: 'ours' | 'theirs') =>
      AggregatorRegistry.aggregate(
        await Promise.all(workers.map((w) => w[side].getMetricsAsJSON())),
      ).metrics();
    assert.equal(await aggregate('ours'), await aggregate('theirs'));
  });

  test('reset zeroes every series; bad labels and values are refused', async () => {
    const { ours, series } = pair(1);
    series.reset();
    assert.match(await ours.metrics(), /x_duration_seconds_count\{code="200",protocol="h2"\} 0/);
    assert.doesNotMatch(await ours.metrics(), /_count\{[^}]*\} [1-9]/);
    assert.throws(() => series.series({ code: '200' }), /labels must be exactly code, protocol/);
    assert.throws(
      () => series.series({ code: '200', protocol: 'h2' }).observe(Number.NaN),
      /not a valid number/,
    );
  });
});
