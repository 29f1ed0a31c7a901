/**
 * The relay's HPACK: RFC 7541 Appendix C vectors (C.2–C.6, with and without Huffman) through
 * the decoder, the encoder and the response status reader; the Huffman code itself; a seeded
 * random round trip through encoder → decoder (and status reader: `:status`, and whether the
 * content-type is JSON) with table size changes; and the decoder on garbage: only HpackError,
 * bounded work and memory.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encodeWithoutTable,
  FieldFlag,
  HpackDecoder,
  HpackEncoder,
  HpackError,
  Indexing,
  ResponseStatusReader,
  writeInteger,
} from '../../src/proxy/h2/hpack.js';
import {
  HUFFMAN_CODES,
  HUFFMAN_LENGTHS,
  huffmanDecode,
  huffmanDecodedLength,
  huffmanEncode,
  huffmanEncodedLength,
  maxDecodedLength,
} from '../../src/proxy/h2/huffman.js';
import { isJsonMediaType } from '../../src/proxy/streaming.js';
import { fuzzSeed, Rng } from '../security/mutate.js';

type Field = [string, string];

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

function decode(decoder: HpackDecoder, block: Buffer): Field[] {
  decoder.decode(block, 0, block.length, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const out: Field[] = [];
  for (let i = 0; i < decoder.count; i++)
    out.push([decoder.names[i] as string, decoder.values[i] as string]);
  return out;
}

function encode(encoder: HpackEncoder, fields: readonly Field[], indexing: Indexing): Buffer {
  let bound = 12;
  for (const [name, value] of fields) bound += HpackEncoder.bound(name, value);
  const out = Buffer.alloc(bound);
  let pos = encoder.beginBlock(out, 0);
  for (const [name, value] of fields) pos = encoder.encodeField(name, value, indexing, out, pos);
  return out.subarray(0, pos);
}

interface Vector {
  readonly block: string;
  readonly fields: readonly Field[];
  /** Dynamic table after the block, newest first, and its size. */
  readonly table: readonly Field[];
  readonly size: number;
}

const AUTHORITY: Field = [':authority', 'www.example.com'];
const NO_CACHE: Field = ['cache-control', 'no-cache'];
const CUSTOM: Field = ['custom-key', 'custom-value'];
const REQUEST_FIELDS: readonly (readonly Field[])[] = [
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], AUTHORITY],
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], AUTHORITY, NO_CACHE],
  [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], AUTHORITY, CUSTOM],
];
const REQUEST_TABLES: readonly (readonly [readonly Field[], number])[] = [
  [[AUTHORITY], 57],
  [[NO_CACHE, AUTHORITY], 110],
  [[CUSTOM, NO_CACHE, AUTHORITY], 164],
];
const requests = (blocks: readonly string[]): Vector[] =>
  blocks.map((block, i) => ({
    block,
    fields: REQUEST_FIELDS[i] as readonly Field[],
    table: (REQUEST_TABLES[i] as [readonly Field[], number])[0],
    size: (REQUEST_TABLES[i] as [readonly Field[], number])[1],
  }));

/** C.3: requests without Huffman coding. */
const C3 = requests([
  '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
  '8286 84be 5808 6e6f 2d63 6163 6865',
  '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
]);
/** C.4: the same requests with Huffman coding. */
const C4 = requests([
  '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
  '8286 84be 5886 a8eb 1064 9cbf',
  '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
]);

const PRIVATE: Field = ['cache-control', 'private'];
const DATE_21: Field = ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'];
const DATE_22: Field = ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'];
const LOCATION: Field = ['location', 'https://www.example.com'];
const GZIP: Field = ['content-encoding', 'gzip'];
const COOKIE: Field = ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'];
const RESPONSE_FIELDS: readonly (readonly Field[])[] = [
  [[':status', '302'], PRIVATE, DATE_21, LOCATION],
  [[':status', '307'], PRIVATE, DATE_21, LOCATION],
  [[':status', '200'], PRIVATE, DATE_22, LOCATION, GZIP, COOKIE],
];
const RESPONSE_TABLES: readonly (readonly [readonly Field[], number])[] = [
  [[LOCATION, DATE_21, PRIVATE, [':status', '302']], 222],
  [[[':status', '307'], LOCATION, DATE_21, PRIVATE], 222],
  [[COOKIE, GZIP, DATE_22], 215],
];
const responses = (blocks: readonly string[]): Vector[] =>
  blocks.map((block, i) => ({
    block,
    fields: RESPONSE_FIELDS[i] as readonly Field[],
    table: (RESPONSE_TABLES[i] as [readonly Field[], number])[0],
    size: (RESPONSE_TABLES[i] as [readonly Field[], number])[1],
  }));

/** C.5: responses without Huffman coding, table size 256. */
const C5 = responses([
  '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
  '4803 3330 37c1 c0bf',
  '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
]);
/** C.6: the same responses with Huffman coding. */
const C6 = responses([
  '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
  '4883 640e ffc1 c0bf',
  '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
]);
/** A dynamic table size update to 256: 001 11111, then 225 as 0xe1 0x01. */
const SIZE_256 = '3fe101';

describe('RFC 7541 Appendix C', () => {
  test('C.1: integer representation', () => {
    const out = Buffer.alloc(8);
    assert.deepEqual([...out.subarray(0, writeInteger(out, 0, 10, 5, 0))], [0x0a]);
    assert.deepEqual([...out.subarray(0, writeInteger(out, 0, 1337, 5, 0))], [0x1f, 0x9a, 0x0a]);
    assert.deepEqual([...out.subarray(0, writeInteger(out, 0, 42, 8, 0))], [0x2a]);
  });

  test('C.2: one field of each representation', () => {
    const cases: ReadonlyArray<readonly [string, Field, readonly Field[], number]> = [
      [
        '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572',
        ['custom-key', 'custom-header'],
        [['custom-key', 'custom-header']],
        55,
      ],
      ['040c 2f73 616d 706c 652f 7061 7468', [':path', '/sample/path'], [], 0],
      ['1008 7061 7373 776f 7264 0673 6563 7265 74', ['password', 'secret'], [], 0],
      ['82', [':method', 'GET'], [], 0],
    ];
    for (const [block, field, table, size] of cases) {
      const decoder = new HpackDecoder();
      assert.deepEqual(decode(decoder, hex(block)), [field]);
      assert.deepEqual(decoder.snapshot().entries, table);
      assert.equal(decoder.snapshot().size, size);
    }
    const neverIndexed = new HpackDecoder();
    decode(neverIndexed, hex(cases[2]?.[0] as string));
    assert.equal(neverIndexed.flags[0], FieldFlag.NeverIndexed, 'C.2.3 is marked never-indexed');
  });

  for (const [label, vectors, prefix] of [
    ['C.3: requests without Huffman', C3, ''],
    ['C.4: requests with Huffman', C4, ''],
    ['C.5: responses without Huffman (table 256)', C5, SIZE_256],
    ['C.6: responses with Huffman (table 256)', C6, SIZE_256],
  ] as const) {
    test(`${label}: decoded fields and table after each block`, () => {
      const decoder = new HpackDecoder();
      if (prefix !== '') assert.deepEqual(decode(decoder, hex(prefix)), []);
      for (const vector of vectors) {
        assert.deepEqual(decode(decoder, hex(vector.block)), vector.fields);
        assert.deepEqual(decoder.snapshot().entries, vector.table);
        assert.equal(decoder.snapshot().size, vector.size);
      }
    });

    test(`${label}: encoded exactly as the RFC encodes them`, () => {
      const huffman = label.includes('with Huffman');
      const encoder = new HpackEncoder(4096, huffman);
      if (prefix !== '') encoder.setLimit(256);
      vectors.forEach((vector, i) => {
        const expected = (i === 0 ? prefix : '') + vector.block.replace(/\s+/g, '');
        assert.equal(
          encode(encoder, vector.fields, Indexing.Incremental).toString('hex'),
          expected,
          `block ${i + 1}`,
        );
      });
    });

    test(`${label}: the status reader follows the table`, () => {
      const reader = new ResponseStatusReader();
      if (prefix !== '') assert.equal(reader.read(hex(prefix), 0, 3), 0);
      for (const vector of vectors) {
        const block = hex(vector.block);
        const status = vector.fields.find(([name]) => name === ':status')?.[1];
        assert.equal(reader.read(block, 0, block.length), Number(status ?? 0));
        assert.equal(reader.snapshot().length, vector.table.length);
        assert.equal(reader.snapshot().size, vector.size);
      }
    });
  }
});

describe('Huffman code (RFC 7541 Appendix B)', () => {
  test('canonical codes match the table', () => {
    const spot: ReadonlyArray<readonly [number, number, number]> = [
      [0, 0x1ff8, 13],
      [32, 0x14, 6],
      [48, 0x0, 5],
      [97, 0x3, 5],
      [126, 0x1ffd, 13],
      [127, 0xffffffc, 28],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ];
    for (const [symbol, code, length] of spot) {
      assert.equal(HUFFMAN_CODES[symbol], code, `code of ${symbol}`);
      assert.equal(HUFFMAN_LENGTHS[symbol], length, `length of ${symbol}`);
    }
  });

  test('every octet round-trips, alone and in strings', () => {
    const all = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
    const rng = new Rng(7541);
    const texts = [all, ...Array.from({ length: 256 }, (_, i) => String.fromCharCode(i))];
    for (let i = 0; i < 500; i++) texts.push(rng.bytes(rng.int(64)).toString('latin1'));
    for (const text of texts) {
      const length = huffmanEncodedLength(text);
      const encoded = Buffer.alloc(length);
      assert.equal(huffmanEncode(text, encoded, 0), length);
      const out = Buffer.alloc(maxDecodedLength(length));
      const n = huffmanDecode(encoded, 0, length, out);
      assert.equal(out.toString('latin1', 0, n), text);
      assert.equal(huffmanDecodedLength(encoded, 0, length), text.length);
    }
  });

  test('EOS, padding longer than 7 bits and padding that is not EOS are refused', () => {
    const out = Buffer.alloc(16);
    // 32 one-bits hold a whole EOS.
    assert.equal(huffmanDecode(hex('ffffffff'), 0, 4, out), -1);
    // '0' (00000) then eight bits of ones: padding too long.
    assert.equal(huffmanDecode(hex('07ff'), 0, 2, out), -1);
    // '0' (00000) padded with zeros.
    assert.equal(huffmanDecode(hex('00'), 0, 1, out), -1);
    // '0' padded with ones: fine.
    assert.equal(huffmanDecode(hex('07'), 0, 1, out), 1);
  });
});

describe('dynamic table size updates', () => {
  test('an update after a field, or above the allowed size, is a compression error', () => {
    assert.throws(() => decode(new HpackDecoder(), hex('82 3fe101')), HpackError);
    const decoder = new HpackDecoder();
    decoder.setAllowedTableSize(100);
    assert.throws(() => decode(decoder, hex(SIZE_256)), HpackError);
  });

  test('a lower bound requires an update at the start of the next block', () => {
    const decoder = new HpackDecoder();
    decode(decoder, hex(C3[0]?.block as string));
    decoder.setAllowedTableSize(0);
    assert.throws(() => decode(decoder, hex('82')), HpackError);
    const ok = new HpackDecoder();
    decode(ok, hex(C3[0]?.block as string));
    ok.setAllowedTableSize(0);
    assert.deepEqual(decode(ok, hex('20 82')), [[':method', 'GET']]);
    assert.deepEqual(ok.snapshot(), { entries: [], size: 0, maxSize: 0 });
  });

  test('the encoder signals a smaller limit (the smallest, then the final) and keeps within it', () => {
    const encoder = new HpackEncoder();
    const decoder = new HpackDecoder();
    const fields: Field[] = [
      ['x-a', 'a'.repeat(100)],
      ['x-b', 'b'.repeat(100)],
    ];
    decode(decoder, encode(encoder, fields, Indexing.Incremental));
    encoder.setLimit(0);
    encoder.setLimit(200);
    decoder.setAllowedTableSize(200);
    const block = encode(encoder, fields, Indexing.Incremental);
    assert.equal(block.subarray(0, 4).toString('hex'), '203fa901', 'update to 0, then to 200');
    assert.deepEqual(decode(decoder, block), fields);
    assert.ok(decoder.snapshot().size <= 200);
  });

  test('fields written without a table leave the peer table untouched', () => {
    const decoder = new HpackDecoder();
    for (const vector of C3) decode(decoder, hex(vector.block));
    const before = decoder.snapshot();
    const out = Buffer.alloc(128);
    let pos = encodeWithoutTable(':status', '503', out, 0);
    pos = encodeWithoutTable(':status', '400', out, pos);
    pos = encodeWithoutTable('content-type', 'application/json', out, pos);
    pos = encodeWithoutTable('x-kube-crl-proxy', 'yes', out, pos);
    assert.deepEqual(decode(decoder, out.subarray(0, pos)), [
      [':status', '503'],
      [':status', '400'],
      ['content-type', 'application/json'],
      ['x-kube-crl-proxy', 'yes'],
    ]);
    assert.deepEqual(decoder.snapshot(), before);
  });
});

describe('seeded random round trip', () => {
  const SEED = fuzzSeed(0x5eed_1541);
  const BUDGET_MS = 4000;
  const MIN_BLOCKS = 3000;
  const NAMES = [
    ':path',
    ':authority',
    'accept',
    'user-agent',
    'content-type',
    'authorization',
    'cookie',
    'x-remote-user',
    'x-request-id',
    'x-long',
  ];

  const CONTENT_TYPES = [
    'application/json',
    'application/json;as=Table;v=v1;g=meta.k8s.io',
    'application/vnd.kubernetes.protobuf;stream=watch',
    'text/plain',
  ];

  function randomValue(rng: Rng, recent: string[]): string {
    if (recent.length > 0 && rng.chance(0.4)) return rng.pick(recent);
    const length = rng.chance(0.05) ? 200 + rng.int(3000) : rng.int(40);
    const value = rng.chance(0.5)
      ? rng.bytes(length).toString('latin1')
      : Array.from({ length }, () => rng.pick([...'abcdefghij0123456789/-.: '])).join('');
    recent.push(value);
    if (recent.length > 20) recent.shift();
    return value;
  }

  test(`thousands of blocks through encoder → decoder and status reader (seed ${SEED})`, () => {
    const rng = new Rng(SEED);
    const started = performance.now();
    let blocks = 0;
    while (performance.now() - started < BUDGET_MS && blocks < 20_000) {
      // One connection: encoder, decoder and status reader share every block, in order.
      const encoder = new HpackEncoder(4096, rng.chance(0.5));
      const decoder = new HpackDecoder();
      const reader = new ResponseStatusReader();
      const recent: string[] = [];
      for (let b = 0; b < 50; b++, blocks++) {
        if (rng.chance(0.05)) {
          // A SETTINGS_HEADER_TABLE_SIZE change, acknowledged before the next block.
          const limit = rng.pick([0, 64, 256, 1000, 4096, 8192]);
          encoder.setLimit(limit);
          decoder.setAllowedTableSize(limit);
          reader.setAllowedTableSize(limit);
        }
        const fields: Field[] = [];
        const status = rng.chance(0.5) ? String(100 + rng.int(500)) : null;
        if (status !== null) fields.push([':status', status]);
        for (let n = rng.int(12); n > 0; n--) {
          const name = rng.chance(0.8)
            ? rng.pick(NAMES)
            : `x-${rng.int(1000).toString(36)}${rng.chance(0.1) ? '-'.repeat(rng.int(300)) : ''}`;
          const value =
            name === 'content-type' && rng.chance(0.7)
              ? rng.pick(CONTENT_TYPES)
              : randomValue(rng, recent);
          fields.push([name, value]);
        }
        const indexing = rng.pick([
          Indexing.Incremental,
          Indexing.Incremental,
          Indexing.Without,
          Indexing.Never,
        ]);
        const block = encode(encoder, fields, indexing);
        assert.deepEqual(decode(decoder, block), fields, `block ${blocks}`);
        if (indexing === Indexing.Never)
          assert.ok(
            decoder.flags.slice(0, decoder.count).every((f) => (f & FieldFlag.NeverIndexed) !== 0),
          );
        assert.equal(reader.read(block, 0, block.length), status === null ? 0 : Number(status));
        const contentType = fields.find(([name]) => name === 'content-type');
        assert.equal(
          reader.jsonContent,
          contentType !== undefined && isJsonMediaType(contentType[1]),
          `block ${blocks}: a JSON content-type is told apart`,
        );
        const table = decoder.snapshot();
        assert.ok(table.size <= table.maxSize);
        assert.equal(reader.snapshot().size, table.size, 'the status reader keeps step');
      }
    }
    assert.ok(blocks >= MIN_BLOCKS, `only ${blocks} blocks in ${BUDGET_MS} ms`);
    console.log(`# hpack round trip: seed ${SEED}, ${blocks} blocks`);
  });
});

describe('decoder robustness', () => {
  const SEED = fuzzSeed(0x5eed_0bad);

  function decodesOrRefuses(block: Buffer): void {
    const decoder = new HpackDecoder();
    const reader = new ResponseStatusReader();
    for (const run of [
      () => decoder.decode(block, 0, block.length, 65536, 256),
      () => reader.read(block, 0, block.length),
    ]) {
      try {
        run();
      } catch (err) {
        if (!(err instanceof HpackError)) throw err;
      }
    }
  }

  test(`garbage and mutated blocks: only HpackError (seed ${SEED})`, () => {
    const rng = new Rng(SEED);
    const valid = [...C3, ...C4, ...C5, ...C6].map((v) => hex(v.block));
    const started = performance.now();
    let cases = 0;
    while (performance.now() - started < 3000 && cases < 50_000) {
      if (rng.chance(0.5)) {
        decodesOrRefuses(rng.bytes(rng.int(200)));
      } else {
        const block = Buffer.from(rng.pick(valid));
        for (let flips = 1 + rng.int(4); flips > 0; flips--)
          block[rng.int(block.length)] = rng.int(256);
        decodesOrRefuses(rng.chance(0.3) ? block.subarray(0, rng.int(block.length)) : block);
      }
      cases++;
    }
    assert.ok(cases >= 5000, `only ${cases} cases`);
  });

  test('specific malformations are HpackErrors', () => {
    for (const block of [
      '80', // index 0
      'ff ff ff ff ff ff', // integer overflow
      'ff', // truncated integer
      'be', // index beyond an empty table
      '40 0a 61', // name longer than the block
      '04 84 ff ff ff ff', // Huffman value holding EOS
      '00', // literal without its name
    ]) {
      assert.throws(() => decode(new HpackDecoder(), hex(block)), HpackError, block);
    }
  });

  test('a block that expands without bound is decoded in full but kept within the limits', () => {
    // One 4000-octet entry, then 60,000 one-octet references to it: 240 MB if kept.
    const length = Buffer.alloc(4);
    const insert = Buffer.concat([
      hex('400178'),
      length.subarray(0, writeInteger(length, 0, 4000, 7, 0)),
      Buffer.alloc(4000, 0x61),
    ]);
    const block = Buffer.concat([insert, Buffer.alloc(60_000, 0xbe)]);
    const decoder = new HpackDecoder();
    const started = performance.now();
    decoder.decode(block, 0, block.length, 65536, 256);
    assert.ok(decoder.overLimit);
    assert.ok(decoder.count <= 16, `${decoder.count} fields kept`);
    assert.ok(decoder.listSize > 200_000_000);
    assert.ok(performance.now() - started < 1000, 'decoded quickly');
  });
});
