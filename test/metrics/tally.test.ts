import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Gauge, Registry } from 'prom-client';
import { collectTallies, tally } from '../../src/metrics/tally.js';

function registryWith(collect: boolean) {
  const registry = new Registry();
  const counter = new Counter({
    name: 'things_total',
    help: 'things',
    labelNames: ['kind'] as const,
    registers: [registry],
    ...(collect ? { collect: collectTallies } : {}),
  });
  const gauge = new Gauge({
    name: 'open_things',
    help: 'open things',
    labelNames: ['kind'] as const,
    registers: [registry],
    ...(collect ? { collect: collectTallies } : {}),
  });
  return { registry, counter, gauge };
}

test('tallies read exactly as direct increments do, in the text and in the JSON', async () => {
  const direct = registryWith(false);
  const tallied = registryWith(true);
  const a = tally(tallied.counter, { kind: 'a' });
  const b = tally(tallied.counter, { kind: 'b' });
  const open = tally(tallied.gauge, { kind: 'a' });
  // A tally's series exists from its creation, as these do.
  direct.counter.inc({ kind: 'a' }, 0);
  direct.counter.inc({ kind: 'b' }, 0);
  direct.gauge.inc({ kind: 'a' }, 0);
  for (let i = 0; i < 5; i++) {
    a.inc();
    direct.counter.inc({ kind: 'a' });
    open.inc();
    direct.gauge.inc({ kind: 'a' });
  }
  open.dec();
  direct.gauge.dec({ kind: 'a' });
  assert.equal(await tallied.registry.metrics(), await direct.registry.metrics());
  // Counts made after a read arrive with the next read, once.
  for (let i = 0; i < 3; i++) a.inc();
  b.inc();
  direct.counter.inc({ kind: 'a' }, 3);
  direct.counter.inc({ kind: 'b' });
  assert.deepEqual(
    await tallied.registry.getMetricsAsJSON(),
    await direct.registry.getMetricsAsJSON(),
  );
  assert.deepEqual(
    await tallied.registry.getMetricsAsJSON(),
    await direct.registry.getMetricsAsJSON(),
  );
  const text = await tallied.registry.metrics();
  assert.match(text, /things_total\{kind="a"\} 8/);
  assert.match(text, /things_total\{kind="b"\} 1/);
  assert.match(text, /open_things\{kind="a"\} 4/);
});

test('a series exists, at 0, from its tally on', async () => {
  const { registry, counter } = registryWith(true);
  tally(counter, { kind: 'never' });
  assert.match(await registry.metrics(), /things_total\{kind="never"\} 0/);
});
