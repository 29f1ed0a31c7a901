/**
 * The revoked serials of one issuer: a sorted, de-duplicated, fixed-width byte buffer with a
 * parallel array of revocation times. Rows are whole 32-bit words (shorter serials are
 * left-padded with zero bytes, as every serial narrower than the widest is), so the build moves
 * rows as words; a lookup is a binary search of byte-wise comparisons (memory and lookup cost
 * at 1M serials: bench/README.md#figures-behind-design-choices-in-src). Built once per CRL load (in the worker), transferable
 * to the main thread and to cluster workers without copying, never mutated.
 */
import type { RevokedEntries } from './crl.js';

export interface RevocationSet {
  readonly count: number;
  readonly width: number;
  readonly serials: Uint8Array;
  readonly revokedAt: Float64Array;
}

export const EMPTY_REVOCATION_SET: RevocationSet = {
  count: 0,
  width: 1,
  serials: new Uint8Array(0),
  revokedAt: new Float64Array(0),
};

/** Merges the entries of one issuer's CRLs; a serial listed twice keeps its earliest time. */
export function buildRevocationSet(
  lists: readonly Pick<RevokedEntries, 'count' | 'width' | 'serials' | 'revokedAt'>[],
): RevocationSet {
  const total = lists.reduce((n, l) => n + l.count, 0);
  if (total === 0) return EMPTY_REVOCATION_SET;
  const widest = lists.reduce((w, l) => Math.max(w, l.width), 1);
  const width = Math.ceil(widest / WORD) * WORD;
  const serials = new Uint8Array(total * width);
  const times = new Float64Array(total);
  let row = 0;
  for (const list of lists) {
    times.set(list.revokedAt.subarray(0, list.count), row);
    if (list.width === width) {
      serials.set(list.serials.subarray(0, list.count * width), row * width);
      row += list.count;
      continue;
    }
    // Narrower rows are right-aligned: the leading bytes stay zero.
    const pad = width - list.width;
    for (let i = 0; i < list.count; i++, row++)
      for (let k = 0, from = i * list.width, to = row * width + pad; k < list.width; k++)
        serials[to + k] = list.serials[from + k] as number;
  }
  const order = isSorted(serials, width, total)
    ? identityOrder(total)
    : (prefixOrder(serials, width, total) ?? radixOrder(serials, width, total));
  return dedupeInOrder(serials, times, width, order);
}

const WORD = 4;

/** Longest run of rows sharing their first four bytes that is finished by insertion sort. */
const MAX_TIE_RUN = 32;

/**
 * The common case, random serials (what CAs issue): a stable LSD radix sort of the rows on
 * their first four bytes, two passes of 16 bits, then the rare rows that share those bytes
 * ordered by their whole value. On random serials this beats the engine's sort of a
 * Float64Array of keys and the byte-wise radix sort, which makes a pass per byte
 * (bench/README.md#figures-behind-design-choices-in-src). Null when the serials are structured so that
 * long runs share their first bytes: the byte-wise radix sort, linear whatever the data,
 * takes those.
 */
function prefixOrder(serials: Uint8Array, width: number, count: number): Uint32Array | null {
  let prefixes = new Uint32Array(count);
  let order = new Uint32Array(count);
  for (let row = 0, base = 0; row < count; row++, base += width) {
    prefixes[row] =
      (((serials[base] as number) << 24) |
        ((serials[base + 1] as number) << 16) |
        ((serials[base + 2] as number) << 8) |
        (serials[base + 3] as number)) >>>
      0;
    order[row] = row;
  }
  let prefixesOut = new Uint32Array(count);
  let orderOut = new Uint32Array(count);
  const starts = new Uint32Array(0x10001);
  for (const shift of [0, 16]) {
    starts.fill(0);
    for (let i = 0; i < count; i++) {
      const digit = ((prefixes[i] as number) >>> shift) & 0xffff;
      starts[digit + 1] = (starts[digit + 1] as number) + 1;
    }
    for (let d = 0; d < 0x10000; d++)
      starts[d + 1] = (starts[d + 1] as number) + (starts[d] as number);
    for (let i = 0; i < count; i++) {
      const prefix = prefixes[i] as number;
      const digit = (prefix >>> shift) & 0xffff;
      const slot = starts[digit] as number;
      starts[digit] = slot + 1;
      prefixesOut[slot] = prefix;
      orderOut[slot] = order[i] as number;
    }
    [prefixes, prefixesOut] = [prefixesOut, prefixes];
    [order, orderOut] = [orderOut, order];
  }
  // Rows of one word are their prefix: a run is one serial listed several times (dedupe's job).
  if (width === WORD) return order;
  let runStart = 0;
  for (let i = 1; i <= count; i++) {
    if (i < count && prefixes[i] === prefixes[runStart]) continue;
    if (i - runStart > MAX_TIE_RUN) return null;
    if (i - runStart > 1) insertionSort(serials, width, order, runStart, i);
    runStart = i;
  }
  return order;
}

function insertionSort(
  serials: Uint8Array,
  width: number,
  order: Uint32Array,
  from: number,
  to: number,
): void {
  for (let i = from + 1; i < to; i++) {
    const row = order[i] as number;
    let j = i - 1;
    while (
      j >= from &&
      compareRows(serials, (order[j] as number) * width, serials, row * width, width) > 0
    ) {
      order[j + 1] = order[j] as number;
      j--;
    }
    order[j + 1] = row;
  }
}

/**
 * LSD radix sort of fixed-width rows, returning the row order. Linear in rows × width, which
 * for a 1M-entry CRL is a fraction of what a comparison sort costs in JS.
 */
function radixOrder(serials: Uint8Array, width: number, count: number): Uint32Array {
  let order = identityOrder(count);
  let scratch = new Uint32Array(count);
  const counts = new Uint32Array(257);
  for (let byte = width - 1; byte >= 0; byte--) {
    counts.fill(0);
    for (let i = 0; i < count; i++) {
      const b = serials[(order[i] as number) * width + byte] as number;
      counts[b + 1] = (counts[b + 1] as number) + 1;
    }
    if (counts[(serials[byte] as number) + 1] === count) continue; // every row has the same byte here
    for (let b = 0; b < 256; b++) counts[b + 1] = (counts[b + 1] as number) + (counts[b] as number);
    for (let i = 0; i < count; i++) {
      const row = order[i] as number;
      const b = serials[row * width + byte] as number;
      const slot = counts[b] as number;
      scratch[slot] = row;
      counts[b] = slot + 1;
    }
    [order, scratch] = [scratch, order];
  }
  return order;
}

function identityOrder(count: number) {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  return order;
}

function isSorted(serials: Uint8Array, width: number, count: number): boolean {
  for (let i = 1; i < count; i++) {
    if (compareRows(serials, (i - 1) * width, serials, i * width, width) > 0) return false;
  }
  return true;
}

function compareRows(
  a: Uint8Array,
  aOff: number,
  b: Uint8Array,
  bOff: number,
  width: number,
): number {
  for (let k = 0; k < width; k++) {
    const d = (a[aOff + k] as number) - (b[bOff + k] as number);
    if (d !== 0) return d;
  }
  return 0;
}

/** The rows in `order`, a serial listed twice kept once with its earliest time; copied as words. */
function dedupeInOrder(
  serials: Uint8Array,
  times: Float64Array,
  width: number,
  order: Uint32Array,
): RevocationSet {
  const words = width / WORD;
  const rows = new Uint32Array(serials.buffer, serials.byteOffset, order.length * words);
  const outRows = new Uint32Array(order.length * words);
  const outTimes = new Float64Array(order.length);
  let n = 0;
  for (let i = 0; i < order.length; i++) {
    const from = (order[i] as number) * words;
    const time = times[order[i] as number] as number;
    if (n > 0 && sameRow(outRows, (n - 1) * words, rows, from, words)) {
      if (time < (outTimes[n - 1] as number)) outTimes[n - 1] = time;
      continue;
    }
    for (let k = 0, to = n * words; k < words; k++) outRows[to + k] = rows[from + k] as number;
    outTimes[n] = time;
    n++;
  }
  const outSerials = new Uint8Array(outRows.buffer);
  return {
    count: n,
    width,
    serials: n === order.length ? outSerials : outSerials.slice(0, n * width),
    revokedAt: n === order.length ? outTimes : outTimes.slice(0, n),
  };
}

function sameRow(a: Uint32Array, aOff: number, b: Uint32Array, bOff: number, words: number) {
  for (let k = 0; k < words; k++) if (a[aOff + k] !== b[bOff + k]) return false;
  return true;
}

/** Magnitude bytes of a hex serial as Node reports it (`3BCA…`, no 0x, any case). */
export function serialBytes(hex: string): Uint8Array {
  const even = hex.length % 2 === 1 ? `0${hex}` : hex;
  const bytes = Buffer.from(even, 'hex');
  if (bytes.length * 2 !== even.length) throw new TypeError(`not a hex serial: ${hex}`);
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  return bytes.subarray(start);
}

/**
 * Magnitude bytes of a serial as operators type it (openssl and kubectl print them so): hex in
 * any case, an optional 0x, optional colons. Null when it is not that.
 */
export function parseSerialText(text: string): Uint8Array | null {
  const hex = text.trim().replace(/^0x/i, '').replace(/:/g, '');
  return /^[0-9a-fA-F]+$/.test(hex) ? serialBytes(hex) : null;
}

/** Hex of serial bytes, uppercase, without leading zero bytes: as serials are shown to operators. */
export function serialHex(bytes: Uint8Array): string {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, bytes.length - start)
    .toString('hex')
    .toUpperCase();
}

/** Revocation time (ms) of `serial` in `set`, or -1 when it is not revoked. */
export function revokedAt(set: RevocationSet, serial: Uint8Array): number {
  const { width, serials, count } = set;
  if (count === 0) return -1;
  let start = 0;
  while (start < serial.length - 1 && serial[start] === 0) start++;
  const len = serial.length - start;
  if (len > width) return -1;
  const pad = width - len;
  let lo = 0;
  let hi = count - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const base = mid * width;
    let cmp = 0;
    for (let k = 0; k < pad; k++) {
      if (serials[base + k] !== 0) {
        cmp = 1;
        break;
      }
    }
    if (cmp === 0) {
      for (let k = 0; k < len; k++) {
        const d = (serials[base + pad + k] as number) - (serial[start + k] as number);
        if (d !== 0) {
          cmp = d;
          break;
        }
      }
    }
    if (cmp === 0) return set.revokedAt[mid] as number;
    if (cmp < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
