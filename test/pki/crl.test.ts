import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Authority, crlPem, sequentialSerials } from '../../src/demo/pki-factory.js';
import { InputError } from '../../src/errors.js';
import { NO_REASON, parseCrl, UNREADABLE_REASON, verifyCrlSignature } from '../../src/pki/crl.js';
import * as der from '../../src/pki/der.js';
import { buildRevocationSet, revokedAt, serialBytes } from '../../src/pki/revocation-set.js';
import {
  loadTrustData,
  readTrustFiles,
  type TrustInputs,
  warningsAt,
} from '../../src/pki/trust.js';
import { TrustLoader } from '../../src/pki/trust-loader.js';
import { TrustStore } from '../../src/pki/trust-store.js';

let dir: string;
let ca: Authority;
let rsaCa: Authority;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kcp-crl-'));
  ca = await Authority.create({ commonName: 'kubernetes' });
  rsaCa = await Authority.create({
    commonName: 'rsa-ca',
    organizations: ['acme'],
    keyAlgorithm: 'rsa',
  });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe('CRL reader', () => {
  test('reads issuer, number, dates and every revoked serial with its time', () => {
    const when = new Date('2026-11-01T00:00:00Z');
    const crl = parseCrl(
      ca.crl({
        revoked: [
          { serial: '3BCA', revokedAt: when, reason: 1 },
          { serial: '00FF01', revokedAt: when },
        ],
        crlNumber: 42,
        thisUpdate: new Date('2026-11-20T00:00:00Z'),
        nextUpdate: new Date('2026-12-20T00:00:00Z'),
      }),
    );
    assert.equal(crl.issuer, 'CN=kubernetes');
    assert.equal(crl.crlNumber, '42');
    assert.equal(crl.thisUpdate, Date.parse('2026-11-20T00:00:00Z'));
    assert.equal(crl.nextUpdate, Date.parse('2026-12-20T00:00:00Z'));
    assert.equal(crl.entries.count, 2);
    const set = buildRevocationSet([crl.entries]);
    assert.equal(revokedAt(set, serialBytes('3BCA')), when.getTime());
    assert.equal(
      revokedAt(set, serialBytes('FF01')),
      when.getTime(),
      'leading zero bytes do not matter',
    );
    assert.equal(revokedAt(set, serialBytes('3BCB')), -1);
  });

  test('signature verifies with the issuer key only (EC and RSA)', () => {
    const ec = parseCrl(ca.crl({ revoked: [{ serial: '01' }] }));
    const rsa = parseCrl(rsaCa.crl({ revoked: [{ serial: '01' }] }));
    assert.equal(verifyCrlSignature(ec, ca.cert.x509.publicKey), true);
    assert.equal(verifyCrlSignature(ec, rsaCa.cert.x509.publicKey), false);
    assert.equal(verifyCrlSignature(rsa, rsaCa.cert.x509.publicKey), true);
    assert.equal(verifyCrlSignature(rsa, ca.cert.x509.publicKey), false);
    const tampered = Buffer.from(ca.crl({ revoked: [{ serial: '0102' }] }));
    tampered[tampered.indexOf(Buffer.from([0x01, 0x02]))] = 0x03; // change the revoked serial
    assert.equal(verifyCrlSignature(parseCrl(tampered), ca.cert.x509.publicKey), false);
  });

  test('openssl agrees with what we write', () => {
    const path = file(
      'check.crl',
      crlPem(ca.crl({ revoked: [{ serial: 'ABCDEF0123' }], crlNumber: 7 })),
    );
    const caPath = file('check-ca.crt', ca.certPem);
    const text = execFileSync(
      'openssl',
      ['crl', '-in', path, '-CAfile', caPath, '-noout', '-text'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    assert.match(text, /Serial Number: ABCDEF0123/);
    assert.match(text, /X509v3 CRL Number: \n\s+7/);
  });

  test('reads a CRL made by `openssl ca -gencrl` (RSA, sha256)', () => {
    const root = join(dir, 'openssl-ca');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'index.txt'), '');
    writeFileSync(join(root, 'crlnumber'), '1000\n');
    writeFileSync(
      join(root, 'ca.cnf'),
      [
        '[ca]',
        'default_ca = local',
        '[local]',
        `dir = ${root}`,
        'database = $dir/index.txt',
        'new_certs_dir = $dir',
        'certificate = $dir/ca.crt',
        'private_key = $dir/ca.key',
        'serial = $dir/serial',
        'crlnumber = $dir/crlnumber',
        'default_md = sha256',
        'default_crl_days = 7',
        'default_days = 30',
        'policy = any',
        '[any]',
        'commonName = supplied',
        '[req]',
        'distinguished_name = dn',
        '[dn]',
        '[v3_ca]',
        'basicConstraints = critical,CA:true',
        'keyUsage = critical,keyCertSign,cRLSign',
        'subjectKeyIdentifier = hash',
        '',
      ].join('\n'),
    );
    writeFileSync(join(root, 'serial'), '1A2B3C\n');
    const run = (...args: string[]) =>
      execFileSync('openssl', args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    run(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-subj',
      '/CN=openssl-ca',
      '-days',
      '30',
      '-config',
      'ca.cnf',
      '-extensions',
      'v3_ca',
    );
    run(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'u.key',
      '-out',
      'u.csr',
      '-subj',
      '/CN=user',
      '-config',
      'ca.cnf',
    );
    run('ca', '-batch', '-config', 'ca.cnf', '-in', 'u.csr', '-out', 'u.crt', '-notext');
    run('ca', '-config', 'ca.cnf', '-revoke', 'u.crt', '-crl_reason', 'keyCompromise');
    run('ca', '-config', 'ca.cnf', '-gencrl', '-out', 'ca.crl');
    const data = loadTrustData(
      {
        clientCaFile: join(root, 'ca.crt'),
        crlFiles: [join(root, 'ca.crl')],
        crlMissingPolicy: 'reject',
      },
      null,
    );
    assert.equal(data.crls.length, 1);
    assert.equal(data.crls[0]?.crlNumber, String(0x1000));
    const store = new TrustStore(data);
    const entry = store.entries[0];
    assert.ok(entry);
    assert.ok(TrustStore.revokedAt(entry, serialBytes('1A2B3C')) > 0);
    assert.equal(TrustStore.revokedAt(entry, serialBytes('1A2B3D')), -1);
  });

  test('malformed input is an error, never a CRL', () => {
    const good = ca.crl({ revoked: [...sequentialSerials(50)] });
    for (const cut of [1, 10, good.length / 2, good.length - 1]) {
      assert.throws(
        () => parseCrl(good.subarray(0, Math.floor(cut))),
        /malformed DER|CertificateList|CRL/,
      );
    }
    assert.throws(() => parseCrl(randomBytes(300)), /malformed DER|expected|CRL/);
    assert.throws(() => parseCrl(Buffer.concat([good, Buffer.from([0])])), /trailing bytes/);
  });

  test('delta and indirect CRLs are refused with a reason', () => {
    const delta = der.seq(der.oid('2.5.29.27'), der.boolean(true), der.octetString(der.integer(1)));
    assert.throws(
      () => parseCrl(ca.crl({ extraExtensions: [delta] })),
      /delta CRLs are not supported/,
    );
    const idp = der.seq(
      der.oid('2.5.29.28'),
      der.boolean(true),
      der.octetString(der.seq(der.tlv(0x84, Buffer.from([0xff])))),
    );
    assert.throws(
      () => parseCrl(ca.crl({ extraExtensions: [idp] })),
      /indirect CRLs are not supported/,
    );
    const unknownCritical = der.seq(
      der.oid('1.2.3.4.5'),
      der.boolean(true),
      der.octetString(der.integer(1)),
    );
    assert.throws(
      () => parseCrl(ca.crl({ extraExtensions: [unknownCritical] })),
      /unsupported critical CRL extension 1\.2\.3\.4\.5/,
    );
  });

  test('entry extensions: reason codes, invalidity dates and unknown non-critical ones are read; the rest refused', () => {
    const ext = (oid: string, critical: boolean, value: Uint8Array) =>
      critical
        ? der.seq(der.oid(oid), der.boolean(true), der.octetString(value))
        : der.seq(der.oid(oid), der.octetString(value));
    const invalidity = ext('2.5.29.24', true, der.time(Date.parse('2026-10-01T00:00:00Z')));
    const unknown = ext('1.2.3.4.5', false, der.integer(7));
    const when = new Date('2026-11-01T00:00:00Z');
    const entries = (spec: Partial<{ reason: number; extensions: Uint8Array[] }>) =>
      parseCrl(
        ca.crl({
          revoked: [
            { serial: '0A', revokedAt: when },
            { serial: 'BEEF', revokedAt: when, ...spec },
          ],
        }),
      ).entries;

    const read = entries({ reason: 1, extensions: [invalidity, unknown] });
    assert.equal(read.count, 2);
    assert.equal(revokedAt(buildRevocationSet([read]), serialBytes('BEEF')), when.getTime());
    assert.deepEqual([...read.reasons], [NO_REASON, 1], 'no reason code, then keyCompromise');
    assert.deepEqual([...entries({ reason: 6 }).reasons], [NO_REASON, 6]);
    const longReason = ext('2.5.29.21', false, der.tlv(der.Tag.enumerated, Buffer.from([0, 1])));
    assert.deepEqual(
      [...entries({ extensions: [longReason] }).reasons],
      [NO_REASON, UNREADABLE_REASON],
    );

    const refused: Array<[Partial<{ reason: number; extensions: Uint8Array[] }>, RegExp]> = [
      [{ reason: 8 }, /removeFromCRL entry in a base CRL/],
      [{ extensions: [ext('2.5.29.29', false, der.seq())] }, /indirect CRLs are not supported/],
      [
        { extensions: [ext('1.2.3.4.5', true, der.integer(7))] },
        /unsupported critical CRL entry extension 1\.2\.3\.4\.5/,
      ],
      [
        { extensions: [der.seq(der.oid('2.5.29.21'), der.integer(1))] },
        /extension value must be an OCTET STRING/,
      ],
      [{ extensions: [der.seq(der.oid('2.5.29.21'))] }, /extension without id or value/],
      [{ extensions: [der.seq()] }, /extension without id or value/],
      [
        {
          extensions: [
            der.seq(
              der.oid('1.2.3.4.5'),
              der.boolean(false),
              der.octetString(der.integer(1)),
              der.integer(2),
            ),
          ],
        },
        /more than an id, a critical flag and a value/,
      ],
      [
        {
          extensions: [
            der.seq(der.tlv(0x06, Buffer.from([0x55, 0x9d])), der.octetString(der.integer(1))),
          ],
        },
        /unterminated OID arc/,
      ],
      [
        { extensions: [der.seq(der.integer(1), der.octetString(der.integer(1)))] },
        /expected OBJECT IDENTIFIER/,
      ],
      [{ extensions: [ext('2.5.29.21', false, der.integer(1))] }, /expected reasonCode/],
    ];
    for (const [spec, message] of refused)
      assert.throws(() => entries(spec), message, String(message));
  });
});

describe('revocation set', () => {
  test('merges CRLs, sorts random serials of mixed widths and keeps the earliest time', () => {
    const serials = Array.from({ length: 5000 }, () =>
      randomBytes(1 + Math.floor(Math.random() * 19)).toString('hex'),
    );
    const a = parseCrl(
      ca.crl({
        revoked: serials
          .slice(0, 3000)
          .map((serial) => ({ serial, revokedAt: new Date(2_000_000_000_000) })),
      }),
    );
    const b = parseCrl(
      ca.crl({
        revoked: serials
          .slice(2000)
          .map((serial) => ({ serial, revokedAt: new Date(1_000_000_000_000) })),
      }),
    );
    const set = buildRevocationSet([a.entries, b.entries]);
    const key = (s: string) => Buffer.from(serialBytes(s)).toString('hex');
    const earliest = new Map<string, number>();
    serials.forEach((serial, i) => {
      const time = i >= 2000 ? 1_000_000_000_000 : 2_000_000_000_000;
      earliest.set(
        key(serial),
        Math.min(time, earliest.get(key(serial)) ?? Number.POSITIVE_INFINITY),
      );
    });
    const unique = new Set(earliest.keys());
    assert.equal(set.count, unique.size);
    for (const serial of serials)
      assert.equal(revokedAt(set, serialBytes(serial)), earliest.get(key(serial)), serial);
    for (let i = 0; i < 2000; i++) {
      const probe = randomBytes(12).toString('hex');
      if (!unique.has(Buffer.from(serialBytes(probe)).toString('hex')))
        assert.equal(revokedAt(set, serialBytes(probe)), -1);
    }
  });

  test('a 1M-entry CRL loads, verifies and answers lookups', () => {
    const path = file('big.crl', ca.crl({ revoked: sequentialSerials(1_000_000, 0x100000) }));
    const caPath = file('big-ca.crt', ca.certPem);
    const data = loadTrustData(
      { clientCaFile: caPath, crlFiles: [path], crlMissingPolicy: 'reject' },
      null,
    );
    const store = new TrustStore(data);
    const entry = store.entries[0];
    assert.ok(entry);
    assert.equal(entry.revocations?.set.count, 1_000_000);
    assert.ok(TrustStore.revokedAt(entry, serialBytes((0x100000).toString(16))) > 0);
    assert.ok(TrustStore.revokedAt(entry, serialBytes((0x100000 + 999_999).toString(16))) > 0);
    assert.equal(TrustStore.revokedAt(entry, serialBytes((0x100000 + 1_000_000).toString(16))), -1);
    assert.ok(
      entry.revocations.set.serials.byteLength <= 8_000_000,
      'serials are stored compactly',
    );
  });
});

describe('trust loading', () => {
  test('PEM with several CRLs, DER files and a directory all load', () => {
    const other = parseCrl(rsaCa.crl({ revoked: [{ serial: 'AA' }] }));
    assert.ok(other);
    const bundle = file('bundle.crt', ca.certPem + rsaCa.certPem);
    const both = file(
      'both.pem',
      crlPem(ca.crl({ revoked: [{ serial: '01' }] })) +
        crlPem(rsaCa.crl({ revoked: [{ serial: 'AA' }] })),
    );
    const fromPem = loadTrustData(
      { clientCaFile: bundle, crlFiles: [both], crlMissingPolicy: 'reject' },
      null,
    );
    assert.equal(fromPem.issuers.length, 2);
    const crlDir = join(dir, 'crls');
    mkdirSync(crlDir, { recursive: true });
    writeFileSync(join(crlDir, 'k8s.crl'), ca.crl({ revoked: [{ serial: '01' }] }));
    writeFileSync(join(crlDir, 'rsa.pem'), crlPem(rsaCa.crl({ revoked: [{ serial: 'AA' }] })));
    writeFileSync(join(crlDir, '..data'), 'not a CRL: Secret mount machinery is skipped');
    const fromDir = loadTrustData(
      { clientCaFile: bundle, crlFiles: [crlDir], crlMissingPolicy: 'reject' },
      null,
    );
    assert.deepEqual(
      fromDir.issuers.map((i) => i.set.count),
      [1, 1],
    );
  });

  test('refusals name the flag, the file and the problem', () => {
    const caFile = file('one.crt', ca.certPem);
    const forged = file('forged.crl', crlPem(ca.crl({ signingKey: rsaCa.cert.privateKey })));
    const stranger = file('stranger.crl', crlPem(rsaCa.crl({})));
    const cases: Array<[() => unknown, RegExp]> = [
      [
        () =>
          loadTrustData(
            { clientCaFile: caFile, crlFiles: [forged], crlMissingPolicy: 'reject' },
            null,
          ),
        /--crl-file: .*forged\.crl: CRL signature of "CN=kubernetes" does not verify/,
      ],
      [
        () =>
          loadTrustData(
            { clientCaFile: caFile, crlFiles: [stranger], crlMissingPolicy: 'reject' },
            null,
          ),
        /CRL issuer "O=acme, CN=rsa-ca" is not a CA of --client-ca-file/,
      ],
      [
        () =>
          loadTrustData({ clientCaFile: caFile, crlFiles: [], crlMissingPolicy: 'reject' }, null),
        /--crl-file: no CRL for CA "CN=kubernetes"/,
      ],
      [
        () =>
          loadTrustData(
            { clientCaFile: file('empty.crl', ''), crlFiles: [], crlMissingPolicy: 'allow' },
            null,
          ),
        /--client-ca-file: .*empty\.crl: is empty/,
      ],
      [
        () =>
          loadTrustData(
            { clientCaFile: join(dir, 'missing.crt'), crlFiles: [], crlMissingPolicy: 'allow' },
            null,
          ),
        /cannot read: no such file/,
      ],
    ];
    for (const [run, message] of cases) {
      assert.throws(
        run,
        (err: unknown) => err instanceof InputError && message.test(err.message),
        String(message),
      );
    }
  });

  test('a lower CRL number than the one in force is a rollback', () => {
    const caFile = file('rb.crt', ca.certPem);
    const crlFile = file('rb.crl', crlPem(ca.crl({ crlNumber: 5 })));
    const first = loadTrustData(
      { clientCaFile: caFile, crlFiles: [crlFile], crlMissingPolicy: 'reject' },
      null,
    );
    writeFileSync(crlFile, crlPem(ca.crl({ crlNumber: 4 })));
    assert.throws(
      () =>
        loadTrustData(
          { clientCaFile: caFile, crlFiles: [crlFile], crlMissingPolicy: 'reject' },
          first,
        ),
      /CRL number 4 .* lower than the one in force \(5\): refusing a rollback/,
    );
    writeFileSync(crlFile, crlPem(ca.crl({ crlNumber: 6 })));
    assert.equal(
      loadTrustData(
        { clientCaFile: caFile, crlFiles: [crlFile], crlMissingPolicy: 'reject' },
        first,
      ).issuers[0]?.crlNumber,
      '6',
    );
  });
});

describe('reloading inputs that did not change', () => {
  test('the digest read from disk is the digest of the bytes a load parsed (files and directories)', () => {
    const bundle = file('dg.crt', ca.certPem + rsaCa.certPem);
    const crlDir = join(dir, 'dg-crls');
    mkdirSync(crlDir, { recursive: true });
    writeFileSync(join(crlDir, 'k8s.crl'), ca.crl({ revoked: [{ serial: '01' }] }));
    writeFileSync(join(crlDir, 'rsa.pem'), crlPem(rsaCa.crl({ revoked: [{ serial: 'AA' }] })));
    const inputs = {
      clientCaFile: bundle,
      crlFiles: [crlDir],
      crlMissingPolicy: 'reject',
    } as const;
    const loaded = loadTrustData(inputs, null);
    assert.match(loaded.inputDigest, /^[0-9a-f]{64}$/);
    assert.equal(readTrustFiles(inputs).digest, loaded.inputDigest);
    // Any change of bytes, of the file set or of the policy is another digest.
    assert.notEqual(
      readTrustFiles({ ...inputs, crlMissingPolicy: 'allow' }).digest,
      loaded.inputDigest,
    );
    writeFileSync(join(crlDir, 'rsa.pem'), crlPem(rsaCa.crl({ revoked: [{ serial: 'AB' }] })));
    const changed = readTrustFiles(inputs).digest;
    assert.notEqual(changed, loaded.inputDigest);
    writeFileSync(join(crlDir, 'extra.crl'), ca.crl({ revoked: [{ serial: '02' }] }));
    assert.notEqual(readTrustFiles(inputs).digest, changed);
  });

  test('with gc exposed, as the binary runs node, a load leaves nothing of the files it read', () => {
    const caFile = file('gc.crt', ca.certPem);
    const crlFile = file('gc.crl', crlPem(ca.crl({ revoked: sequentialSerials(300_000) })));
    const inputs: TrustInputs = {
      clientCaFile: caFile,
      crlFiles: [crlFile],
      crlMissingPolicy: 'reject',
    };
    // A process of its own: what one load adds to its resident memory, the index included.
    const probe = file(
      'gc-probe.mjs',
      `
      import { readFileSync } from 'node:fs';
      import { TrustLoader } from ${JSON.stringify(new URL('../../src/pki/trust-loader.js', import.meta.url))};
      const rss = () => Number(/^VmRSS:\\s+(\\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      const settle = () => new Promise((resolve) => setTimeout(resolve, 100));
      const loader = new TrustLoader();
      await loader.load(${JSON.stringify({ ...inputs, crlFiles: [] })}, null);
      await settle();
      const before = rss();
      const loaded = await loader.load(${JSON.stringify(inputs)}, null);
      if (loaded.data?.issuers[0]?.set.count !== 300000) throw new Error('not loaded');
      await settle();
      process.stdout.write(String(rss() - before));
      await loader.close();`,
    );
    const growth = (nodeFlags: string[]) =>
      Number(execFileSync(process.execPath, [...nodeFlags, probe], { encoding: 'utf8' }));
    const fileBytes = readFileSync(crlFile).length;
    assert.ok(growth(['--expose-gc']) < growth([]) - fileBytes);
  });

  test('the worker answers "unchanged" without parsing, and parses again after any change', async () => {
    const caFile = file('un.crt', ca.certPem);
    const crlFile = file('un.crl', crlPem(ca.crl({ crlNumber: 7, revoked: [{ serial: '0A' }] })));
    const inputs = {
      clientCaFile: caFile,
      crlFiles: [crlFile],
      crlMissingPolicy: 'reject',
    } as const;
    const loader = new TrustLoader();
    try {
      const first = await loader.load(inputs, null);
      assert.equal(first.unchanged, false);
      assert.ok(first.data !== null);
      const again = await loader.load(inputs, first.data);
      assert.equal(again.unchanged, true);
      // The revocations in force, not a new parse of them.
      assert.equal(again.data?.issuers[0]?.set, first.data.issuers[0]?.set);
      writeFileSync(crlFile, crlPem(ca.crl({ crlNumber: 8, revoked: [{ serial: '0B' }] })));
      const next = await loader.load(inputs, first.data);
      assert.equal(next.unchanged, false);
      assert.ok(next.data !== null);
      assert.equal(next.data.issuers[0]?.crlNumber, '8');
      assert.deepEqual(next.problems, []);
      // A file that became unreadable is refused, and its CA keeps the revocations in force.
      rmSync(crlFile);
      const gone = await loader.load(inputs, next.data);
      assert.equal(gone.problems.length, 1);
      assert.equal(gone.problems[0]?.file, crlFile);
      assert.match(gone.problems[0]?.problem ?? '', /no such file/);
      assert.equal(gone.data?.issuers[0]?.set, next.data.issuers[0]?.set);
      assert.equal(gone.data?.issuers[0]?.crlNumber, '8');
    } finally {
      await loader.close();
    }
  });

  test('warnings are those of a load now: a CRL expired since is reported', () => {
    const caFile = file('ex.crt', ca.certPem);
    const nextUpdate = new Date(Date.now() + 60_000);
    const crlFile = file('ex.crl', crlPem(ca.crl({ nextUpdate })));
    const data = loadTrustData(
      { clientCaFile: caFile, crlFiles: [crlFile], crlMissingPolicy: 'reject' },
      null,
    );
    assert.deepEqual(data.warnings, []);
    assert.equal(warningsAt(data, Date.now()), data.warnings);
    const later = nextUpdate.getTime() + 1000;
    const fresh = loadTrustData(
      { clientCaFile: caFile, crlFiles: [crlFile], crlMissingPolicy: 'reject' },
      null,
      later,
    );
    assert.equal(fresh.warnings.length, 1);
    assert.deepEqual(warningsAt(data, later), fresh.warnings);
    assert.deepEqual(warningsAt(fresh, later), fresh.warnings);
  });
});
