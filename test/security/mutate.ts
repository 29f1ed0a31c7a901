import { Flag, FrameType, settingsFrame } from '../../src/proxy/h2/frames.js';
import {
  dataFrame,
  frame,
  type HeaderField,
  headerBlock,
  headersFrame,
  requestFields,
} from './h2-frames.js';

/**
 * Deterministic random mutation for the fuzz batteries: a seeded PRNG and byte-level
 * mutators (bit flips, truncation, insertion, deletion, duplication, length-byte edits,
 * dictionary splices). Same seed, same sequence of mutations.
 */

/** mulberry32: small, fast, good enough to pick mutations reproducibly. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)] as T;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** The seed of a battery: FUZZ_SEED when set (to replay a failure), else the fixed default. */
export function fuzzSeed(fallback: number): number {
  const given = process.env.FUZZ_SEED;
  return given === undefined || given === '' ? fallback : Number(given) >>> 0;
}

export type Mutator = (rng: Rng, input: Buffer) => Buffer;

export const flipBits: Mutator = (rng, input) => {
  const out = Buffer.from(input);
  if (out.length === 0) return out;
  const flips = 1 + rng.int(4);
  for (let i = 0; i < flips; i++) {
    const at = rng.int(out.length);
    out[at] = (out[at] as number) ^ (1 << rng.int(8));
  }
  return out;
};

export const setByte: Mutator = (rng, input) => {
  const out = Buffer.from(input);
  if (out.length === 0) return out;
  out[rng.int(out.length)] = rng.pick([0x00, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff, rng.int(256)]);
  return out;
};

export const truncate: Mutator = (rng, input) => input.subarray(0, rng.int(input.length));

export const insertBytes: Mutator = (rng, input) => {
  const at = rng.int(input.length + 1);
  return Buffer.concat([input.subarray(0, at), rng.bytes(1 + rng.int(8)), input.subarray(at)]);
};

export const deleteRange: Mutator = (rng, input) => {
  if (input.length === 0) return input;
  const at = rng.int(input.length);
  const len = 1 + rng.int(Math.min(32, input.length - at));
  return Buffer.concat([input.subarray(0, at), input.subarray(at + len)]);
};

export const duplicateRange: Mutator = (rng, input) => {
  if (input.length === 0) return input;
  const at = rng.int(input.length);
  const len = 1 + rng.int(Math.min(64, input.length - at));
  const slice = input.subarray(at, at + len);
  return Buffer.concat([input.subarray(0, at + len), slice, input.subarray(at + len)]);
};

export const swapBytes: Mutator = (rng, input) => {
  const out = Buffer.from(input);
  if (out.length < 2) return out;
  const a = rng.int(out.length);
  const b = rng.int(out.length);
  const t = out[a] as number;
  out[a] = out[b] as number;
  out[b] = t;
  return out;
};

/** Replaces the byte at `at` with an edit typical of length fields. */
export function editLengthByte(rng: Rng, input: Buffer, at: number): Buffer {
  const out = Buffer.from(input);
  const value = out[at] as number;
  const edits = [value + 1, value - 1, value ^ 0x80, 0x80, 0x81, 0x84, 0x85, 0xff, 0x00, value * 2];
  out[at] = rng.pick(edits) & 0xff;
  return out;
}

/** Inserts one of `tokens` at a random offset, or replaces a random range with it. */
export function spliceToken(rng: Rng, input: Buffer, tokens: readonly string[]): Buffer {
  const token = Buffer.from(rng.pick(tokens), 'latin1');
  const at = rng.int(input.length + 1);
  const removed = rng.chance(0.3) ? rng.int(Math.min(16, input.length - at) + 1) : 0;
  return Buffer.concat([input.subarray(0, at), token, input.subarray(at + removed)]);
}

export const BYTE_MUTATORS: readonly Mutator[] = [
  flipBits,
  setByte,
  truncate,
  insertBytes,
  deleteRange,
  duplicateRange,
  swapBytes,
];

/**
 * An HTTP/2 POST on stream 1 (with a client identity header) after a SETTINGS frame, damaged:
 * random HPACK bytes, a header block split into HEADERS + CONTINUATION (sometimes on the wrong
 * stream or unfinished), padded/priority flags without their fields, DATA with or without
 * END_STREAM, trailers, a reset with any code, or flipped bytes anywhere (lengths, types,
 * flags, stream ids).
 */
export function mutatedH2Request(rng: Rng, path: string): Buffer {
  const fields: HeaderField[] = requestFields(
    path,
    [
      ['x-remote-user', 'spoof-admin'],
      ['content-type', 'application/json'],
    ],
    'POST',
  );
  let block = headerBlock(fields);
  const frames: Buffer[] = [];
  const roll = rng.next();
  if (roll < 0.3) block = rng.pick(BYTE_MUTATORS)(rng, block);
  if (roll >= 0.3 && roll < 0.5) {
    const cut = rng.int(block.length);
    frames.push(frame(FrameType.Headers, 0, 1, block.subarray(0, cut)));
    frames.push(
      frame(
        FrameType.Continuation,
        rng.chance(0.8) ? Flag.EndHeaders : 0,
        rng.chance(0.8) ? 1 : 3,
        block.subarray(cut),
      ),
    );
  } else {
    const flags = Flag.EndHeaders | (rng.chance(0.2) ? Flag.Padded | Flag.Priority : 0);
    frames.push(frame(FrameType.Headers, flags, 1, block));
  }
  frames.push(dataFrame(1, '{"kind":"Status"}', rng.chance(0.7)));
  if (rng.chance(0.3)) {
    const name = rng.pick(['x-remote-user', ':path', 'content-length', 'x-checksum']);
    frames.push(headersFrame(1, [[name, rng.pick(['spoof', '1', ''])]]));
  }
  if (rng.chance(0.2)) {
    const code = Buffer.alloc(4);
    code.writeUInt32BE(rng.int(14));
    frames.push(frame(FrameType.RstStream, 0, 1, code));
  }
  let out = Buffer.concat([settingsFrame([]), ...frames]);
  if (roll >= 0.5) {
    const rounds = 1 + rng.int(3);
    for (let i = 0; i < rounds; i++) {
      const at = rng.int(out.length);
      out = Buffer.from(out);
      out[at] = rng.chance(0.5) ? rng.int(256) : (out[at] as number) ^ (1 << rng.int(8));
    }
  }
  return out;
}
