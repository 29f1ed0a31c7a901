/**
 * The revocation index against a plain reference (hex strings in a Map): every serial of the
 * input is found with its earliest time, nothing else is, whatever the serials look like —
 * random (the sort on the first four bytes), sharing their first bytes in short runs (the tie
 * fix-up) or in long ones (the radix fallback), already sorted, duplicated, of mixed lengths.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { describe, test } from 'node:test';
import { buildRevocationSet, revokedAt } from '../../src/pki/revocation-set.js';

interface Entries {
  count: number;
  width: number;
  serials: Uint8Array;
  revokedAt: Float64Array;
}

/** Rows right-aligned to `width` (as the CRL reader stores them), times from `time`. */
function entriesOf(
  serials: readonly Uint8Array[],
  width: number,
  time: (i: number) => number,
): Entries {
  const out = new Uint8Array(serials.length * width);
  serials.forEach((s, i) => {
    out.set(s, i * width + width - s.length);
  });
  return {
    count: serials.length,
    width,
    serials: out,
    revokedAt: Float64Array.from(serials, (_, i) => time(i)),
  };
}

const hex = (b: Uint8Array) =>
  Buffer.from(b)
    .toString('hex')
    .replace(/^(00)+(?=..)/, '');

function check(lists: Entries[]): void {
  const expected = new Map<string, number>();
  for (const list of lists)
    for (let i = 0; i < list.count; i++) {
      const key = hex(list.serials.subarray(i * list.width, (i + 1) * list.width));
      const t = list.revokedAt[i] as number;
      expected.set(key, Math.min(t, expected.get(key) ?? Number.POSITIVE_INFINITY));
    }
  const set = buildRevocationSet(lists);
  assert.equal(set.count, expected.size, 'one entry per distinct serial');
  for (let i = 1; i < set.count; i++) {
    const a = set.serials.subarray((i - 1) * set.width, i * set.width);
    const b = set.serials.subarray(i * set.width, (i + 1) * set.width);
    assert.ok(Buffer.compare(a, b) < 0, `rows ${i - 1} and ${i} in strict order`);
  }
  for (const [key, time] of expected)
    assert.equal(revokedAt(set, Buffer.from(key.length % 2 ? `0${key}` : key, 'hex')), time, key);
  for (let i = 0; i < 200; i++) {
    const probe = randomBytes(randomInt(1, 21));
    if (!expected.has(hex(probe))) assert.equal(revokedAt(set, probe), -1);
  }
}

const random = (n: number, width: number) =>
  Array.from({ length: n }, () => randomBytes(randomInt(1, width + 1)));

describe('revocation index', () => {
  test('random serials of mixed lengths, with duplicates and their earliest time', () => {
    for (const n of [1, 2, 3, 50, 5_000]) {
      const serials = random(n, 20);
      const dupes = serials.slice(0, Math.ceil(n / 3));
      check([entriesOf([...serials, ...dupes], 20, (i) => 1_000 + (i % 97))]);
    }
  });

  test('narrow serials (rows of one word) unsorted, with duplicates and their earliest time', () => {
    for (const width of [3, 4]) {
      const serials = random(3_000, width);
      const dupes = serials.slice(0, 1_000).toReversed();
      check([entriesOf([...serials, ...dupes], width, (i) => 5_000 - i)]);
    }
  });

  test('short runs sharing their first four bytes are ordered by their whole value', () => {
    const prefixes = Array.from({ length: 300 }, () => randomBytes(4));
    const serials = Array.from({ length: 3_000 }, (_, i) =>
      Buffer.concat([prefixes[i % 300] as Buffer, randomBytes(12)]),
    );
    check([entriesOf(serials, 16, (i) => i)]);
  });

  test('structured serials (one long shared prefix) take the radix path and stay correct', () => {
    const prefix = randomBytes(8);
    const serials = Array.from({ length: 4_000 }, () => Buffer.concat([prefix, randomBytes(4)]));
    check([entriesOf(serials, 12, (i) => i)]);
  });

  test('already sorted and narrow serials (openssl ca numbering)', () => {
    const serials = Array.from({ length: 3_000 }, (_, i) => {
      const b = Buffer.alloc(3);
      b.writeUIntBE(i + 1, 0, 3);
      return b;
    });
    check([entriesOf(serials, 3, () => 5)]);
    check([entriesOf(serials.toReversed(), 3, () => 5)]);
  });

  test('several CRLs of one issuer with different widths merge into one index', () => {
    const a = random(2_000, 8);
    const b = [...random(2_000, 20), ...a.slice(0, 500)];
    check([entriesOf(a, 8, () => 10), entriesOf(b, 20, () => 7)]);
  });
});
