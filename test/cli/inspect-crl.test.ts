/**
 * `inspect-crl` runs the real binary on CRLs made in code: several per file, DER and PEM, a
 * directory, a forged signature, a big CRL, serial look-ups; exit 0 / 1 / 2.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { InspectCrlReport } from '../../src/cli/inspect-crl-command.js';
import { Authority, crlPem, sequentialSerials } from '../../src/demo/pki-factory.js';
import { makePki, type TestPki } from '../support/pki.js';
import { runBin } from '../support/proxy-process.js';

const DAY = 86_400_000;
const BIG = 300_000;

let pki: TestPki;
let impostor: Authority;
const files: Record<string, string> = {};
/** Whole seconds: CRL times are encoded to the second. */
const thisUpdate = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
const nextUpdate = new Date(thisUpdate.getTime() + 7 * DAY);

before(async () => {
  pki = await makePki();
  impostor = await Authority.create({ commonName: 'impostor' });
  const ca = pki.clusterCa;
  files.two = pki.write(
    'two.crl',
    crlPem(
      ca.crl({
        revoked: [{ serial: '0ABC', revokedAt: new Date('2026-11-01T00:00:00Z') }],
        crlNumber: 41,
        thisUpdate,
        nextUpdate,
      }),
    ) + crlPem(ca.crl({ crlNumber: 42, thisUpdate, nextUpdate: null })),
  );
  files.forged = pki.write('forged.crl', crlPem(ca.crl({ signingKey: impostor.cert.privateKey })));
  files.big = pki.write(
    'big.crl',
    ca.crl({ revoked: sequentialSerials(BIG), crlNumber: 7, thisUpdate, nextUpdate }),
  );
  const dir = join(pki.dir, 'crl.d');
  mkdirSync(dir);
  writeFileSync(join(dir, 'b.crl'), crlPem(ca.crl({ crlNumber: 2 })));
  writeFileSync(join(dir, 'a.crl'), ca.crl({ crlNumber: 1 }));
  writeFileSync(join(dir, '.hidden'), 'ignored, as a Secret mount keeps ..data here');
  files.dir = dir;
  files.garbage = pki.write('garbage.crl', 'not a CRL\n');
});
after(() => pki.cleanup());

async function inspectJson(...args: string[]): Promise<[number | null, InspectCrlReport]> {
  const result = await runBin(['inspect-crl', ...args, '--output=json']);
  assert.equal(result.stderr, '');
  return [result.code, JSON.parse(result.stdout) as InspectCrlReport];
}

describe('inspect-crl', () => {
  test('several CRLs in one PEM file, signatures verified against the bundle', async () => {
    const [code, report] = await inspectJson(
      files.two as string,
      `--client-ca-file=${pki.files.clientCa}`,
    );
    assert.equal(code, 0);
    assert.equal(report.crls.length, 2);
    const [first, second] = report.crls;
    assert.deepEqual(
      [first?.index, first?.issuer, first?.crlNumber, first?.entries, first?.expired],
      [0, 'CN=kubernetes', '41', 1, false],
    );
    assert.equal(first?.nextUpdate, nextUpdate.toISOString().replace('.000Z', 'Z'));
    assert.ok((first?.secondsToNextUpdate ?? 0) > 6 * 86_400, 'about 7 days left');
    assert.equal(first?.signatureAlgorithm, 'ecdsa-with-SHA256');
    assert.equal(first?.signature.status, 'verified');
    assert.equal(first?.signature.by?.subject, 'CN=kubernetes');
    assert.equal(first?.authorityKeyId?.length, 40);
    assert.deepEqual(
      [second?.crlNumber, second?.nextUpdate, second?.secondsToNextUpdate],
      ['42', null, null],
    );

    const text = await runBin([
      'inspect-crl',
      files.two as string,
      `--client-ca-file=${pki.files.clientCa}`,
    ]);
    assert.equal(text.code, 0);
    assert.match(
      text.stdout,
      /two\.crl \(CRL 1 of 2\)\n {2}issuer: +CN=kubernetes\n {2}CRL number: +41\n/,
    );
    assert.match(text.stdout, /nextUpdate: +\S+Z \(in 6d 23h\)/);
    assert.match(
      text.stdout,
      /signature: +ecdsa-with-SHA256, verified by CN=kubernetes \(SHA-256 /,
    );
    assert.match(text.stdout, /nextUpdate: +none \(never goes stale\)/);
  });

  test('without --client-ca-file the signature is not checked', async () => {
    const [code, report] = await inspectJson(files.two as string);
    assert.equal(code, 0);
    assert.deepEqual(report.crls[0]?.signature, { status: 'not_checked', by: null, problem: null });
    assert.equal(report.clientCaFile, null);
  });

  test('a forged signature is INVALID, exit 1', async () => {
    const [code, report] = await inspectJson(
      files.forged as string,
      `--client-ca-file=${pki.files.clientCa}`,
    );
    assert.equal(code, 1);
    assert.equal(report.crls[0]?.signature.status, 'invalid');
    assert.match(report.crls[0]?.signature.problem ?? '', /does not verify/);
    const other = await inspectJson(
      files.two as string,
      `--client-ca-file=${pki.files.proxyClientCert}`,
    );
    assert.equal(other[0], 1, 'a bundle without that CA');
  });

  test('--serial: revoked (with its time) or not, colons and case ignored', async () => {
    const [, revoked] = await inspectJson(files.two as string, '--serial=0a:bc');
    assert.deepEqual(revoked.crls[0]?.serial, {
      serial: '0ABC',
      revoked: true,
      revokedAt: '2026-11-01T00:00:00Z',
    });
    assert.deepEqual(revoked.crls[1]?.serial, { serial: '0ABC', revoked: false, revokedAt: null });
    const text = await runBin(['inspect-crl', files.two as string, '--serial=ABC']);
    assert.match(text.stdout, /serial 0ABC: +REVOKED at 2026-11-01T00:00:00Z/);
  });

  test('--at past nextUpdate: expired', async () => {
    const at = new Date(nextUpdate.getTime() + 3_600_000).toISOString();
    const [code, report] = await inspectJson(files.two as string, `--at=${at}`);
    assert.equal(code, 0);
    assert.equal(report.crls[0]?.expired, true);
    assert.equal(report.crls[0]?.secondsToNextUpdate, -3600);
    const text = await runBin(['inspect-crl', files.two as string, `--at=${at}`]);
    assert.match(text.stdout, /\(EXPIRED 1h 0m ago\)/);
  });

  test(`a DER CRL of ${BIG} entries, with a serial look-up`, async () => {
    const started = Date.now();
    const [code, report] = await inspectJson(
      files.big as string,
      `--client-ca-file=${pki.files.clientCa}`,
      `--serial=${(BIG - 1).toString(16)}`,
    );
    assert.equal(code, 0);
    assert.equal(report.crls[0]?.entries, BIG);
    assert.equal(report.crls[0]?.signature.status, 'verified');
    assert.equal(report.crls[0]?.serial?.revoked, true);
    assert.ok(Date.now() - started < 20_000, 'well within 20 s on a shared 2-core machine');
  });

  test('a directory, as --crl-file reads it (dot files skipped, name order)', async () => {
    const [code, report] = await inspectJson(files.dir as string);
    assert.equal(code, 0);
    assert.deepEqual(
      report.crls.map((c) => [c.file.split('/').pop(), c.crlNumber]),
      [
        ['a.crl', '1'],
        ['b.crl', '2'],
      ],
    );
  });

  test('bad input exits 2 with one line', async () => {
    const cases: [string[], RegExp][] = [
      [[join(pki.dir, 'nope.crl')], /nope\.crl: cannot read: no such file/],
      [[files.garbage as string], /garbage\.crl: contains no CRL/],
      [[pki.files.clientCa], /ca\.crt: contains no CRL/],
      [[files.two as string, '--serial=xyz'], /--serial: "xyz" is not a hexadecimal serial/],
      [
        [files.two as string, `--client-ca-file=${join(pki.dir, 'nope.crt')}`],
        /--client-ca-file: .*nope\.crt: cannot read/,
      ],
    ];
    const results = await Promise.all(cases.map(([args]) => runBin(['inspect-crl', ...args])));
    results.forEach((result, i) => {
      const [args, message] = cases[i] as [string[], RegExp];
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stdout, '');
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, message);
    });
  });
});
