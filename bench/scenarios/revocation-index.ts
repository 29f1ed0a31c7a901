/**
 * (h) The revocation index itself, without a proxy: memory of 1M serials and the cost of one
 * lookup (what every handshake and every re-verification after a swap pays). Serials are 20
 * random bytes, the longest RFC 5280 allows, so the figures are the worst case; the module is
 * the measured build's own (`--proxy-rev` applies).
 */
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { median } from '../measure/stats.js';
import type { ScenarioResult } from '../report/results.js';
import type { BenchContext } from './context.js';

interface Entries {
  readonly count: number;
  readonly width: number;
  readonly serials: Uint8Array;
  readonly revokedAt: Float64Array;
}

interface IndexModule {
  buildRevocationSet(lists: readonly Entries[]): Entries;
  revokedAt(set: Entries, serial: Uint8Array): number;
}

const WIDTH = 20;
const LOOKUPS = 1_000_000;

function entries(count: number): Entries {
  const serials = randomBytes(count * WIDTH);
  for (let i = 0; i < count; i++) serials[i * WIDTH] = (serials[i * WIDTH] as number) | 0x01; // no leading zero byte
  const revokedAt = new Float64Array(count).fill(Date.UTC(2026, 0, 1));
  return { count, width: WIDTH, serials: new Uint8Array(serials), revokedAt };
}

/** ns per lookup over LOOKUPS probes, half present, half absent; checks every answer. */
function lookupNs(mod: IndexModule, set: Entries, source: Entries): number {
  const probes: Uint8Array[] = [];
  const absent = randomBytes(WIDTH * 1024);
  for (let i = 0; i < 1024; i++) {
    const row = (i * 7919) % source.count;
    probes.push(source.serials.subarray(row * WIDTH, (row + 1) * WIDTH));
    probes.push(absent.subarray(i * WIDTH, (i + 1) * WIDTH));
  }
  let hits = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < LOOKUPS; i++)
    if (mod.revokedAt(set, probes[i & 2047] as Uint8Array) >= 0) hits++;
  const ns = Number(process.hrtime.bigint() - started) / LOOKUPS;
  // Every even probe is a revoked serial; an odd one is absent unless 20 random bytes collide.
  if (hits < LOOKUPS / 2 || hits > LOOKUPS / 2 + 2)
    throw new Error(`revocation index answered ${hits} hits of ${LOOKUPS} (expected half)`);
  return ns;
}

export async function revocationIndexScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const modulePath = join(dirname(ctx.build.bin), '..', 'dist', 'src', 'pki', 'revocation-set.js');
  const mod = (await import(pathToFileURL(modulePath).href)) as IndexModule;
  const sizes = ctx.options.quick ? [100_000, 1_000_000] : [10_000, 100_000, 1_000_000];
  const rows: string[][] = [];
  const data: unknown[] = [];
  for (const count of sizes) {
    ctx.progress(`revocation index: ${count} serials`);
    const source = entries(count);
    const builds: number[] = [];
    const lookups: number[] = [];
    let bytes = 0;
    for (let r = 0; r < ctx.options.rounds; r++) {
      const started = performance.now();
      const set = mod.buildRevocationSet([source]);
      builds.push(performance.now() - started);
      bytes = set.serials.byteLength + set.revokedAt.byteLength;
      lookups.push(lookupNs(mod, set, source));
    }
    const figures = {
      serials: count,
      indexBytes: bytes,
      buildMs: median(builds),
      lookupNs: median(lookups),
    };
    data.push(figures);
    rows.push([
      count.toLocaleString('en-US'),
      (bytes / 1024 / 1024).toFixed(1),
      figures.buildMs.toFixed(0),
      figures.lookupNs.toFixed(0),
    ]);
  }
  return {
    id: 'index',
    title: '(h) revocation index: memory of the serials and the cost of one lookup',
    table: { columns: ['serials', 'index MB', 'build ms (sort + dedupe)', 'lookup ns'], rows },
    ratios: [],
    notes: [
      `Serials of ${WIDTH} random bytes (the RFC 5280 maximum: the worst case); index MB = the sorted serial buffer + the revocation times, the whole per-issuer index. Lookup: ${LOOKUPS.toLocaleString('en-US')} lookups, half revoked serials, half absent, every answer checked; run in the suite's process on the load core. Build runs in the CRL worker thread in the proxy (after parsing and the signature check, which (f) includes).`,
    ],
    data,
  };
}
