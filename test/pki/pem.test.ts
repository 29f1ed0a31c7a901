/**
 * The PEM reader works on the file's bytes (no string of a 47 MB CRL): what it decodes must
 * be exactly what Node's base64 decoder makes of the same body, whatever the line layout,
 * and anything that is not a clean base64 body is refused with a message naming the block.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { readInput } from '../../src/pki/files.js';
import { PemError, readBlocks, toPem } from '../../src/pki/pem.js';

/** A DER SEQUENCE of `n` content bytes (long-form length when needed). */
function sequence(n: number): Buffer {
  const content = randomBytes(n);
  if (n < 0x80) return Buffer.concat([Buffer.from([0x30, n]), content]);
  const len: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) len.unshift(v % 256);
  return Buffer.concat([Buffer.from([0x30, 0x80 | len.length, ...len]), content]);
}

function pemWith(label: string, body: string): Buffer {
  return Buffer.from(`-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`, 'latin1');
}

/** Base64 of `der` laid out as `width`-character lines joined by `eol`. */
function layout(der: Buffer, width: number, eol: string): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += width) lines.push(b64.slice(i, i + width));
  return lines.join(eol);
}

function refusal(bytes: Buffer): string {
  try {
    readBlocks(bytes, ['X509 CRL']);
  } catch (err) {
    assert.ok(err instanceof PemError, `a PemError, not ${String(err)}`);
    return err.message;
  }
  assert.fail('accepted');
}

describe('PEM reader', () => {
  test('decodes what Node decodes, for any size and line layout', () => {
    for (let round = 0; round < 200; round++) {
      const der = sequence(randomInt(0, 3000));
      const width = [4, 64, 76, randomInt(1, 120)][round % 4] as number;
      const eol = ['\n', '\r\n', ' ', '\n\t'][randomInt(0, 4)] as string;
      const body = layout(der, width, eol);
      const [block] = readBlocks(pemWith('X509 CRL', body), ['X509 CRL']);
      assert.ok(block !== undefined);
      assert.deepEqual(block.der, Buffer.from(body, 'base64'));
      assert.deepEqual(block.der, der);
    }
  });

  test('several blocks, text between them, other labels skipped, DER concatenations', () => {
    const a = sequence(300);
    const b = sequence(40);
    const c = sequence(5);
    const file = Buffer.concat([
      Buffer.from('issuer=CN=test\nsome notes -----BEGIN lower----- -----BEGIN\n'),
      Buffer.from(toPem('X509 CRL', a)),
      Buffer.from('between\n'),
      Buffer.from(toPem('CERTIFICATE', b)),
      Buffer.from(toPem('X509 CRL', c).trimEnd()),
    ]);
    const blocks = readBlocks(file, ['X509 CRL']);
    assert.deepEqual(
      blocks.map((x) => x.der),
      [a, c],
    );
    assert.deepEqual(
      readBlocks(file, ['CERTIFICATE']).map((x) => x.der),
      [b],
    );
    const der = Buffer.concat([a, b]);
    assert.deepEqual(
      readBlocks(der, ['X509 CRL']).map((x) => x.der),
      [a, b],
    );
    assert.deepEqual(readBlocks(Buffer.from('-----BEGIN X509 CRL-----\nMAA=\n'), ['X509 CRL']), []);
    assert.deepEqual(readBlocks(Buffer.from('plain text'), ['X509 CRL']), []);
  });

  test('a body that is not clean base64 is refused, naming the block', () => {
    const der = sequence(30);
    const b64 = der.toString('base64');
    const cases: [string, Buffer, RegExp][] = [
      [
        'END label differs',
        Buffer.from(`-----BEGIN X509 CRL-----\n${b64}\n-----END CERTIFICATE-----\n`),
        /BEGIN X509 CRL ends with END CERTIFICATE/,
      ],
      [
        'PEM headers',
        pemWith('X509 CRL', `Proc-Type: 4,ENCRYPTED\n\n${b64}`),
        /PEM block X509 CRL has headers or characters outside base64/,
      ],
      [
        'a non-ASCII space',
        pemWith('X509 CRL', `${b64.slice(0, 8)}\u00a0${b64.slice(8)}`),
        /characters outside base64/,
      ],
      ['base64 after padding', pemWith('X509 CRL', 'MAA=MAA='), /base64 after its padding/],
      [
        'a lone last digit',
        pemWith('X509 CRL', b64.slice(0, 41)),
        /truncated or misplaced base64 padding/,
      ],
      [
        'padding that does not end a group',
        pemWith('X509 CRL', 'MAA=='),
        /truncated or misplaced base64 padding/,
      ],
      ['padding alone', pemWith('X509 CRL', '=='), /truncated or misplaced base64 padding/],
      ['an empty body', pemWith('X509 CRL', ' \n '), /PEM block X509 CRL is empty/],
      [
        'bytes after the DER element',
        pemWith('X509 CRL', Buffer.concat([der, Buffer.from([0])]).toString('base64')),
        /has 1 bytes after its DER element/,
      ],
    ];
    for (const [what, bytes, message] of cases) {
      assert.match(refusal(bytes), message, what);
    }
  });

  test('unpadded base64 decodes as Node decodes it', () => {
    for (const n of [1, 2, 3, 4, 5, 100]) {
      const der = sequence(n);
      const body = der.toString('base64').replace(/=+$/, '');
      const [block] = readBlocks(pemWith('X509 CRL', body), ['X509 CRL']);
      assert.deepEqual(block?.der, der);
    }
  });
});

describe('input files', () => {
  test('are read whole, in 1 MiB reads, whatever their size', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcp-read-'));
    try {
      for (const size of [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3_500_000]) {
        const file = join(dir, `f${size}`);
        const bytes = randomBytes(size);
        writeFileSync(file, bytes);
        assert.deepEqual(readInput('crl-file', file), bytes, `${size} bytes`);
      }
      assert.throws(() => readInput('crl-file', dir), /crl-file.*is a directory/);
      assert.throws(() => readInput('crl-file', join(dir, 'none')), /crl-file.*no such file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
