/**
 * `kube-crl-proxy crl revoke|renew|list`, run as the real binary on CA files made in code (EC and
 * RSA) and by openssl (P-384, Ed25519, a kubeadm-like CA without cRLSign): every CRL written is
 * checked by `openssl crl -verify` and by the proxy's own loader; refusals exit 2 and leave the
 * file as it was; a 100k-entry CRL is revoked into, renewed and listed (times reported, not
 * asserted).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CrlListReport } from '../../src/cli/crl-command.js';
import { Authority, crlPem, type IssuedCert } from '../../src/demo/pki-factory.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { parseCrl } from '../../src/pki/crl.js';
import { readBlocks } from '../../src/pki/pem.js';
import { revokedAt, serialBytes } from '../../src/pki/revocation-set.js';
import { loadTrustData } from '../../src/pki/trust.js';
import { TrustStore } from '../../src/pki/trust-store.js';
import { makePki, type TestPki } from '../support/pki.js';
import { type ExitResult, runBin } from '../support/proxy-process.js';

const OPENSSL = '/usr/bin/openssl';
const HOUR = 3_600_000;

let pki: TestPki;
/** A CA as files, the way an operator has it. */
interface CaFiles {
  readonly name: string;
  readonly cert: string;
  readonly key: string;
}
let ec: CaFiles;
let rsa: CaFiles;
let rsaCa: Authority;
let alice: IssuedCert;
let bob: IssuedCert;
let carolRsa: IssuedCert;
let stranger: Authority;
let count = 0;

before(async () => {
  pki = await makePki();
  ec = {
    name: 'EC P-256',
    cert: pki.files.clientCa,
    key: pki.write('ca.key', pki.clusterCa.cert.keyPem),
  };
  rsaCa = await Authority.create({ commonName: 'rsa-ca', keyAlgorithm: 'rsa' });
  rsa = {
    name: 'RSA 2048',
    cert: pki.write('rsa-ca.crt', rsaCa.certPem),
    key: pki.write('rsa-ca.key', rsaCa.cert.keyPem),
  };
  alice = await pki.user('alice', ['dev']);
  bob = await pki.user('bob');
  carolRsa = await rsaCa.issue({ commonName: 'carol' });
  stranger = await Authority.create({ commonName: 'stranger' });
});
after(() => pki?.cleanup());

/** A fresh path for a CRL file (not created). */
function crlPath(name = 'ca'): string {
  const dir = join(pki.dir, `crl-${++count}`);
  mkdirSync(dir);
  return join(dir, `${name}.crl`);
}

function crlCommand(
  command: 'revoke' | 'renew',
  ca: CaFiles,
  crl: string,
  args: string[] = [],
): Promise<ExitResult> {
  return runBin([
    'crl',
    command,
    ...args,
    `--ca-cert=${ca.cert}`,
    `--ca-key=${ca.key}`,
    `--crl=${crl}`,
  ]);
}

async function ok(result: Promise<ExitResult>): Promise<ExitResult> {
  const done = await result;
  assert.equal(done.code, 0, done.stderr);
  assert.equal(done.stderr, '');
  return done;
}

async function listJson(crl: string): Promise<CrlListReport['crls'][number]> {
  const result = await ok(runBin(['crl', 'list', crl, '--output=json'], 60_000));
  const report = JSON.parse(result.stdout) as CrlListReport;
  assert.equal(report.crls.length, 1);
  return report.crls[0] as CrlListReport['crls'][number];
}

/** `openssl crl -verify` against the CA certificate: what it prints (on stderr), or a throw. */
function opensslVerify(caCert: string, crl: string, inform: 'PEM' | 'DER' = 'PEM'): string {
  const result = spawnSync(
    OPENSSL,
    ['crl', '-inform', inform, '-in', crl, '-CAfile', caCert, '-verify', '-noout'],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(result.status, 0, result.stderr);
  return result.stderr;
}

function opensslText(crl: string, inform: 'PEM' | 'DER' = 'PEM'): string {
  return execFileSync(OPENSSL, ['crl', '-inform', inform, '-in', crl, '-noout', '-text'], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: 60_000,
  });
}

/** The proxy's own loader on this CA bundle and CRL, as at start-up (crl-missing-policy=reject). */
function proxyStore(caCert: string, crl: string): TrustStore {
  return new TrustStore(
    loadTrustData({ clientCaFile: caCert, crlFiles: [crl], crlMissingPolicy: 'reject' }, null),
  );
}

function isRevoked(store: TrustStore, serial: string): boolean {
  const [issuer] = store.data.issuers;
  assert.ok(issuer, 'the CA has its CRL');
  return revokedAt(issuer.set, serialBytes(serial)) >= 0;
}

function skip(t: { skip(message: string): void }): boolean {
  if (existsSync(OPENSSL)) return false;
  t.skip(`${OPENSSL} is not installed (apt-get install openssl)`);
  return true;
}

describe('crl revoke, for an EC and an RSA CA', () => {
  for (const which of ['ec', 'rsa'] as const) {
    test(`${which}: by certificate file and by serial; openssl and the proxy verify the CRL`, async (t) => {
      if (skip(t)) return;
      const ca = which === 'ec' ? ec : rsa;
      const user = which === 'ec' ? alice : carolRsa;
      const certFile = pki.write(`${which}-user.crt`, user.certPem);
      const crl = crlPath();
      const result = await ok(
        crlCommand('revoke', ca, crl, [certFile, '--serial=0a:bc', '--reason=keyCompromise']),
      );
      assert.match(
        result.stdout,
        new RegExp(`^revoked ${user.serial} \\(.*${which}-user\\.crt: (O=dev, )?CN=`, 'm'),
      );
      assert.match(result.stdout, /^revoked 0ABC \(--serial\), reason keyCompromise$/m);
      assert.match(result.stdout, /wrote .*: CRL number 1 of "CN=(kubernetes|rsa-ca)", 2 entries/);

      assert.match(opensslVerify(ca.cert, crl), /verify OK/);
      const text = opensslText(crl);
      assert.match(text, /Version 2 \(0x1\)/);
      assert.match(
        text,
        which === 'ec'
          ? /Signature Algorithm: ecdsa-with-SHA256/
          : /Signature Algorithm: sha256WithRSAEncryption/,
      );
      assert.match(text, /X509v3 CRL Number: \n\s+1\n/);
      assert.match(text, /X509v3 Authority Key Identifier: \n\s+([0-9A-F]{2}:){19}[0-9A-F]{2}\n/);
      assert.equal((text.match(/Key Compromise/g) ?? []).length, 2);

      const store = proxyStore(ca.cert, crl);
      assert.equal(isRevoked(store, user.serial), true);
      assert.equal(isRevoked(store, '0ABC'), true);
      assert.equal(isRevoked(store, bob.serial), false);

      const listed = await listJson(crl);
      assert.equal(listed.crlNumber, '1');
      assert.deepEqual(
        listed.entries.map((e) => [e.serial, e.reason]),
        [
          [user.serial, 'keyCompromise'],
          ['0ABC', 'keyCompromise'],
        ],
      );
      assert.equal(listed.entries[0]?.revokedAt, listed.thisUpdate, 'revoked now');
      assert.equal(
        Date.parse(listed.nextUpdate ?? '') - Date.parse(listed.thisUpdate),
        7 * 24 * HOUR,
      );
    });
  }

  test('the real check-cert and inspect-crl agree: revoked, signature verified', async () => {
    const crl = crlPath();
    const aliceFile = pki.write('alice.crt', alice.certPem);
    await ok(crlCommand('revoke', ec, crl, [aliceFile]));
    const check = await runBin([
      'check-cert',
      aliceFile,
      `--client-ca-file=${ec.cert}`,
      `--crl-file=${crl}`,
      '-o',
      'json',
    ]);
    assert.equal(check.code, 1, check.stderr);
    assert.equal((JSON.parse(check.stdout) as { reason: string }).reason, 'revoked');
    const bobCheck = await runBin([
      'check-cert',
      pki.write('bob.crt', bob.certPem),
      `--client-ca-file=${ec.cert}`,
      `--crl-file=${crl}`,
    ]);
    assert.equal(bobCheck.code, 0, bobCheck.stderr);
    const inspect = await runBin(['inspect-crl', crl, `--client-ca-file=${ec.cert}`, '-o', 'json']);
    assert.equal(inspect.code, 0, inspect.stderr);
    const [report] = (
      JSON.parse(inspect.stdout) as {
        crls: { signature: { status: string }; authorityKeyId: string }[];
      }
    ).crls;
    assert.equal(report?.signature.status, 'verified');
    assert.equal(report?.authorityKeyId, parseCertificate(pki.clusterCa.cert.der).subjectKeyId);
  });

  test('no reason (or unspecified): no reason code extension', async (t) => {
    if (skip(t)) return;
    const crl = crlPath();
    await ok(crlCommand('revoke', ec, crl, ['--serial=01']));
    await ok(crlCommand('revoke', ec, crl, ['--serial=02', '--reason=unspecified']));
    assert.doesNotMatch(opensslText(crl), /CRL Reason Code|CRL entry extensions/);
    const listed = await listJson(crl);
    assert.deepEqual(
      listed.entries.map((e) => e.reason),
      [null, null],
    );
  });
});

describe('algorithms follow the key (CAs made by openssl)', () => {
  const cases = [
    {
      name: 'P-384',
      key: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
      algorithm: 'ecdsa-with-SHA384',
    },
    {
      name: 'P-521',
      key: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521'],
      algorithm: 'ecdsa-with-SHA512',
    },
    { name: 'Ed25519', key: ['-newkey', 'ed25519'], algorithm: 'ED25519' },
  ];
  for (const { name, key, algorithm } of cases) {
    test(`${name}: ${algorithm}`, async (t) => {
      if (skip(t)) return;
      const ca = opensslCa(name, key, 'keyCertSign,cRLSign');
      const crl = crlPath();
      await ok(crlCommand('revoke', ca, crl, ['--serial=1234', '--reason=superseded']));
      assert.match(opensslVerify(ca.cert, crl), /verify OK/);
      assert.match(opensslText(crl), new RegExp(`Signature Algorithm: ${algorithm}`));
      assert.equal(isRevoked(proxyStore(ca.cert, crl), '1234'), true);
    });
  }
});

/** A self-signed CA made by openssl in its own directory. */
function opensslCa(
  name: string,
  keyArgs: string[],
  keyUsage: string,
  keyFormat: 'pkcs8' | 'traditional' = 'pkcs8',
): CaFiles {
  const dir = join(pki.dir, `openssl-${name}-${++count}`);
  mkdirSync(dir);
  const cert = join(dir, 'ca.crt');
  const key = join(dir, 'ca.key');
  execFileSync(
    OPENSSL,
    [
      'req',
      '-x509',
      ...keyArgs,
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      `/CN=${name} CA`,
      '-days',
      '30',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      `keyUsage=critical,${keyUsage}`,
    ],
    { stdio: 'ignore', timeout: 60_000 },
  );
  if (keyFormat === 'traditional') {
    const pkcs8 = `${key}.pkcs8`;
    renameSync(key, pkcs8);
    execFileSync(OPENSSL, ['pkey', '-in', pkcs8, '-out', key, '-traditional'], { stdio: 'ignore' });
  }
  return { name, cert, key };
}

describe('renew', () => {
  test('signs the same entries again, number + 1, new thisUpdate and nextUpdate', async (t) => {
    if (skip(t)) return;
    const crl = crlPath();
    await ok(
      crlCommand('revoke', ec, crl, [
        '--serial=0A',
        '--serial=0B',
        '--reason=cessationOfOperation',
      ]),
    );
    const first = await listJson(crl);
    const firstDer = parseCrl(readBlocks(readFileSync(crl), ['X509 CRL'])[0]?.der as Buffer);
    await new Promise((r) => setTimeout(r, 1100));
    const result = await ok(crlCommand('renew', ec, crl, ['--next-update=24h']));
    assert.match(result.stdout, /^wrote .*: CRL number 2 of "CN=kubernetes", 2 entries, /);
    const after = await listJson(crl);
    assert.equal(after.crlNumber, '2');
    assert.deepEqual(after.entries, first.entries, 'same serials, dates and reasons');
    assert.ok(Date.parse(after.thisUpdate) > Date.parse(first.thisUpdate), 'a new thisUpdate');
    assert.equal(Date.parse(after.nextUpdate ?? '') - Date.parse(after.thisUpdate), 24 * HOUR);
    const afterDer = parseCrl(readBlocks(readFileSync(crl), ['X509 CRL'])[0]?.der as Buffer);
    assert.ok(
      Buffer.from(afterDer.revokedDer).equals(firstDer.revokedDer),
      'entries carried over byte for byte',
    );
    assert.match(opensslVerify(ec.cert, crl), /verify OK/);

    await ok(crlCommand('renew', ec, crl, ['--next-update=30m']));
    const third = await listJson(crl);
    assert.equal(third.crlNumber, '3');
    assert.equal(Date.parse(third.nextUpdate ?? '') - Date.parse(third.thisUpdate), 30 * 60_000);
  });

  test('a CRL made by `openssl ca -gencrl` is carried on: its entries kept, its number + 1', async (t) => {
    if (skip(t)) return;
    const dir = join(pki.dir, `openssl-ca-${++count}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'crlnumber'), '1000\n');
    writeFileSync(
      join(dir, 'openssl.cnf'),
      `[ ca ]\ndefault_ca = x\n[ x ]\ndatabase = ${dir}/index.txt\ncrlnumber = ${dir}/crlnumber\ncertificate = ${ec.cert}\nprivate_key = ${ec.key}\ndefault_md = sha256\ndefault_crl_days = 7\ncrl_extensions = ext\n[ ext ]\nauthorityKeyIdentifier = keyid:always\n`,
    );
    const openssl = (...args: string[]) =>
      execFileSync(OPENSSL, ['ca', '-config', join(dir, 'openssl.cnf'), ...args], {
        stdio: 'ignore',
        timeout: 60_000,
      });
    openssl('-revoke', pki.write('bob-openssl.crt', bob.certPem), '-crl_reason', 'keyCompromise');
    const crl = crlPath();
    openssl('-gencrl', '-out', crl);
    const made = await listJson(crl);
    assert.equal(made.crlNumber, String(0x1000));
    await ok(crlCommand('revoke', ec, crl, ['--serial=0F', '--reason=affiliationChanged']));
    const carried = await listJson(crl);
    assert.equal(carried.crlNumber, String(0x1001));
    assert.deepEqual(carried.entries[0], made.entries[0], "openssl's entry as it was");
    assert.deepEqual(
      carried.entries.map((e) => [e.serial, e.reason]),
      [
        [bob.serial, 'keyCompromise'],
        ['0F', 'affiliationChanged'],
      ],
    );
    assert.match(opensslVerify(ec.cert, crl), /verify OK/);
  });

  test('a missing file is created (mode 0644, PEM), by renew as by revoke', async (t) => {
    if (skip(t)) return;
    const crl = crlPath();
    const result = await ok(crlCommand('renew', ec, crl));
    assert.match(result.stdout, /CRL number 1 of "CN=kubernetes", 0 entries/);
    assert.equal(statSync(crl).mode & 0o777, 0o644);
    assert.match(readFileSync(crl, 'latin1'), /^-----BEGIN X509 CRL-----\n/);
    assert.match(opensslVerify(ec.cert, crl), /verify OK/);
    assert.equal(proxyStore(ec.cert, crl).data.issuers[0]?.set.count, 0);
    assert.deepEqual(
      readdirSync(join(crl, '..')),
      ['ca.crl'],
      'no temporary or lock file left behind',
    );
  });

  test('an existing file keeps its mode, its owner and its encoding (DER stays DER)', async (t) => {
    if (skip(t)) return;
    const crl = crlPath();
    writeFileSync(crl, pki.clusterCa.crl({ crlNumber: 41 }));
    chmodSync(crl, 0o640);
    const asRoot = process.getuid?.() === 0;
    if (asRoot) chownSync(crl, 4321, 4321);
    await ok(crlCommand('revoke', ec, crl, ['--serial=77']));
    const stat = statSync(crl);
    assert.equal(stat.mode & 0o777, 0o640);
    if (asRoot) assert.deepEqual([stat.uid, stat.gid], [4321, 4321]);
    assert.equal(readFileSync(crl)[0], 0x30, 'DER');
    assert.match(opensslVerify(ec.cert, crl, 'DER'), /verify OK/);
    assert.equal((await listJson(crl)).crlNumber, '42');
  });

  test('a symbolic link stays a link; the file it points at is replaced', async () => {
    const real = crlPath('real');
    await ok(crlCommand('renew', ec, real));
    const link = join(pki.dir, `link-${++count}.crl`);
    symlinkSync(real, link);
    await ok(crlCommand('revoke', ec, link, ['--serial=99']));
    assert.ok(statSync(link).isFile());
    assert.equal(readFileSync(link, 'latin1'), readFileSync(real, 'latin1'));
    assert.equal((await listJson(real)).crlNumber, '2');
  });
});

describe('the CRL number only grows; a serial is listed once', () => {
  test('revoking an already listed certificate keeps its entry (date, reason) and says so', async () => {
    const crl = crlPath();
    const aliceFile = pki.write('alice-again.crt', alice.certPem);
    await ok(crlCommand('revoke', ec, crl, [aliceFile, '--reason=keyCompromise']));
    const first = await listJson(crl);
    await new Promise((r) => setTimeout(r, 1100));
    const again = await ok(
      crlCommand('revoke', ec, crl, [
        aliceFile,
        `--serial=${alice.serial}`,
        '--serial=0C',
        '--reason=superseded',
      ]),
    );
    assert.match(
      again.stdout,
      new RegExp(
        `^already revoked ${alice.serial} \\(.*alice-again\\.crt: O=dev, CN=alice\\) at ${first.entries[0]?.revokedAt}: its entry is kept as it was$`,
        'm',
      ),
    );
    assert.match(again.stdout, /^revoked 0C \(--serial\), reason superseded$/m);
    assert.match(again.stdout, /^1 added, 1 already listed/m);
    const second = await listJson(crl);
    assert.equal(second.crlNumber, '2');
    assert.deepEqual(second.entries[0], first.entries[0], 'the first entry as it was');
    assert.deepEqual(
      second.entries.map((e) => e.serial),
      [alice.serial, '0C'],
    );
  });

  test('two writers at once: both entries land, numbers 1 and 2 (the lock)', async () => {
    const crl = crlPath();
    const results = await Promise.all([
      crlCommand('revoke', ec, crl, ['--serial=A1']),
      crlCommand('revoke', ec, crl, ['--serial=B2']),
      crlCommand('renew', ec, crl),
    ]);
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    const listed = await listJson(crl);
    assert.equal(listed.crlNumber, '3');
    assert.deepEqual(listed.entries.map((e) => e.serial).sort(), ['A1', 'B2']);
  });

  test('a held lock makes a writer wait; a lock left by a dead process is taken over', async () => {
    const crl = crlPath();
    await ok(crlCommand('renew', ec, crl));
    const lock = join(crl, '..', '.ca.crl.lock');
    writeFileSync(lock, `${process.pid} ${hostname()}\n`);
    const waiting = crlCommand('revoke', ec, crl, ['--serial=0D']);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await listJson(crl)).crlNumber, '1', 'nothing written while the lock is held');
    unlinkSync(lock);
    await ok(waiting);
    assert.equal((await listJson(crl)).crlNumber, '2');

    const dead = spawn(process.execPath, ['-e', '']);
    const deadPid = dead.pid as number;
    await new Promise((r) => dead.once('exit', r));
    writeFileSync(lock, `${deadPid} ${hostname()}\n`);
    await ok(crlCommand('revoke', ec, crl, ['--serial=0E']));
    assert.equal((await listJson(crl)).crlNumber, '3');
    assert.equal(existsSync(lock), false);
  });
});

describe('refused, exit 2, the file left as it was', () => {
  let crl: string;
  let original: Buffer;
  const refused = async (result: Promise<ExitResult>, message: RegExp) => {
    const done = await result;
    assert.equal(done.code, 2, done.stdout + done.stderr);
    assert.equal(done.stdout, '');
    assert.equal(done.stderr.trim().split('\n').length, 1, done.stderr);
    assert.match(done.stderr, message);
    assert.ok(readFileSync(crl).equals(original), 'CRL file unchanged');
  };
  const setCrl = (content: string | Uint8Array) => {
    writeFileSync(crl, content);
    original = readFileSync(crl);
  };

  before(async () => {
    crl = crlPath();
    await ok(crlCommand('revoke', ec, crl, ['--serial=01']));
    original = readFileSync(crl);
  });

  test('a key that does not match the CA certificate', async () => {
    await refused(
      crlCommand('revoke', { ...ec, key: rsa.key }, crl, ['--serial=02']),
      /^kube-crl-proxy: --ca-key: .*rsa-ca\.key: key does not match the certificate in --ca-cert/,
    );
    await refused(
      crlCommand('renew', { ...ec, key: pki.write('alice.key', alice.keyPem) }, crl),
      /key does not match the certificate in --ca-cert/,
    );
  });

  test('a certificate the CA did not issue, or the CA itself', async () => {
    const foreign = await stranger.issue({ commonName: 'alice' });
    const file = pki.write('foreign.crt', foreign.certPem);
    await refused(
      crlCommand('revoke', ec, crl, [file]),
      /foreign\.crt: "CN=alice" \(serial [0-9A-F]+\) was not issued by --ca-cert "CN=kubernetes"/,
    );
    const sameName = await Authority.create({ commonName: 'kubernetes' });
    const impostorCert = pki.write(
      'same-name.crt',
      (await sameName.issue({ commonName: 'eve' })).certPem,
    );
    await refused(crlCommand('revoke', ec, crl, [impostorCert]), /was not issued by --ca-cert/);
    await refused(crlCommand('revoke', ec, crl, [ec.cert]), /is --ca-cert itself/);
  });

  test("a CRL file that is not this CA's, does not verify, has no number or is not a CRL", async () => {
    const cases: [string | Uint8Array, RegExp][] = [
      [
        crlPem(stranger.crl({ crlNumber: 9 })),
        /--crl: .*: it is a CRL of "CN=stranger", not of --ca-cert "CN=kubernetes"; refusing to overwrite it/,
      ],
      [
        crlPem(
          pki.clusterCa.crl({
            crlNumber: 9,
            signingKey: (await Authority.create({ commonName: 'kubernetes' })).cert.privateKey,
          }),
        ),
        /its signature does not verify against --ca-cert; refusing to overwrite it/,
      ],
      [
        crlPem(pki.clusterCa.crl({ crlNumber: null })),
        /it has no CRL number, so a higher one cannot be chosen; refusing/,
      ],
      [
        crlPem(pki.clusterCa.crl({ crlNumber: 1 })) + crlPem(pki.clusterCa.crl({ crlNumber: 2 })),
        /holds 2 CRLs, where one is kept; refusing/,
      ],
      ['not a CRL\n', /--crl: .*: contains no CRL/],
      [Buffer.from([0x30, 0x03, 0x02, 0x01, 0x05]), /invalid CRL: .*; refusing to overwrite it/],
    ];
    for (const [content, message] of cases) {
      setCrl(content);
      await refused(crlCommand('renew', ec, crl), message);
    }
  });

  test('a CA certificate whose keyUsage lacks cRLSign (kubeadm): signed, with a warning', async (t) => {
    if (skip(t)) return;
    // As kubeadm makes them (client-go's NewSelfSignedCACert): RSA, keyUsage without cRLSign,
    // the key as "RSA PRIVATE KEY".
    const kubeadm = opensslCa(
      'kubeadm-like',
      ['-newkey', 'rsa:2048'],
      'digitalSignature,keyEncipherment,keyCertSign',
      'traditional',
    );
    assert.match(readFileSync(kubeadm.key, 'latin1'), /^-----BEGIN RSA PRIVATE KEY-----/);
    const fresh = crlPath();
    const result = await crlCommand('revoke', kubeadm, fresh, ['--serial=05']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /^warning: --ca-cert: the keyUsage of "CN=kubeadm-like CA" lacks cRLSign \(kubeadm's CAs do\)/,
    );
    assert.match(opensslVerify(kubeadm.cert, fresh), /verify OK/);
    assert.equal(isRevoked(proxyStore(kubeadm.cert, fresh), '05'), true, 'the proxy accepts it');
    // What the refusal is about: OpenSSL's revocation check does not take this CA's CRLs.
    const dir = join(kubeadm.cert, '..');
    execFileSync(
      OPENSSL,
      [
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'u.key'),
        '-out',
        join(dir, 'u.csr'),
        '-subj',
        '/CN=u',
      ],
      { stdio: 'ignore' },
    );
    execFileSync(
      OPENSSL,
      [
        'x509',
        '-req',
        '-in',
        join(dir, 'u.csr'),
        '-CA',
        kubeadm.cert,
        '-CAkey',
        kubeadm.key,
        '-set_serial',
        '7',
        '-out',
        join(dir, 'u.crt'),
        '-days',
        '5',
      ],
      { stdio: 'ignore' },
    );
    const check = spawnSync(
      OPENSSL,
      ['verify', '-crl_check', '-CAfile', kubeadm.cert, '-CRLfile', fresh, join(dir, 'u.crt')],
      { encoding: 'utf8' },
    );
    assert.notEqual(check.status, 0);
    assert.match(check.stdout + check.stderr, /key usage does not include CRL signing/);
  });

  test('not a CA, bad flags and bad serials', async () => {
    const cases: [string[], RegExp][] = [
      [
        [
          'renew',
          `--ca-cert=${pki.write('leaf.crt', bob.certPem)}`,
          `--ca-key=${ec.key}`,
          `--crl=${crl}`,
        ],
        /--ca-cert: .*leaf\.crt: "CN=bob" is not a CA certificate/,
      ],
      [
        ['renew', `--ca-key=${ec.key}`, `--crl=${crl}`],
        /^kube-crl-proxy: --ca-cert: is required$/m,
      ],
      [
        ['renew', `--ca-cert=${ec.cert}`, `--ca-key=${ec.key}`],
        /^kube-crl-proxy: --crl: is required$/m,
      ],
      [
        ['renew', `--ca-cert=${ec.cert}`, `--ca-key=${ec.key}`, `--crl=${crl}`, '--next-update=1w'],
        /--next-update: "1w" is not a duration \(e\.g\. 7d, 24h, 30m\)/,
      ],
      [
        ['revoke', `--ca-cert=${ec.cert}`, `--ca-key=${ec.key}`, `--crl=${crl}`],
        /give certificate files, --serial or --serial-file/,
      ],
      [
        ['revoke', '--serial=xyz', `--ca-cert=${ec.cert}`, `--ca-key=${ec.key}`, `--crl=${crl}`],
        /--serial: "xyz" is not a hexadecimal serial/,
      ],
      [
        [
          'revoke',
          `--serial-file=${pki.write('bad-serials.txt', '01\n# ok\nzz\n')}`,
          `--ca-cert=${ec.cert}`,
          `--ca-key=${ec.key}`,
          `--crl=${crl}`,
        ],
        /--serial-file: .*bad-serials\.txt: line 3: "zz" is not a hexadecimal serial/,
      ],
      [
        [
          'revoke',
          '--serial=01',
          '--reason=because',
          `--ca-cert=${ec.cert}`,
          `--ca-key=${ec.key}`,
          `--crl=${crl}`,
        ],
        /because/,
      ],
      [
        [
          'revoke',
          '--serial=01',
          `--ca-cert=${ec.cert}`,
          `--ca-key=${ec.key}`,
          `--crl=${join(pki.dir, 'no-such-dir', 'ca.crl')}`,
        ],
        /--crl: .*no-such-dir\/ca\.crl: directory .*no-such-dir does not exist/,
      ],
      [
        [
          'revoke',
          '--serial=01',
          `--ca-cert=${ec.cert}`,
          `--ca-key=${join(pki.dir, 'nope.key')}`,
          `--crl=${crl}`,
        ],
        /--ca-key: .*nope\.key: cannot read: no such file/,
      ],
    ];
    for (const [args, message] of cases) await refused(runBin(['crl', ...args]), message);
  });
});

describe('100k entries', () => {
  const N = 100_000;
  test(`revoke ${N} serials from a --serial-file, renew, revoke one more, list (times reported)`, async (t) => {
    if (skip(t)) return;
    const lines: string[] = [];
    for (let i = 0; i < N; i++) lines.push((0x10_0000_0000 + i * 7919).toString(16));
    const serials = pki.write('100k.txt', `# ${N} serials\n${lines.join('\n')}\n`);
    const crl = crlPath();
    const timed = async (label: string, run: () => Promise<ExitResult>) => {
      const started = process.hrtime.bigint();
      const result = await run();
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      assert.equal(result.code, 0, result.stderr);
      t.diagnostic(`${label}: ${ms.toFixed(0)} ms`);
      return result;
    };
    const revoked = await timed(`crl revoke --serial-file (${N} new entries)`, () =>
      runBin(
        [
          'crl',
          'revoke',
          `--serial-file=${serials}`,
          '--reason=keyCompromise',
          `--ca-cert=${ec.cert}`,
          `--ca-key=${ec.key}`,
          `--crl=${crl}`,
        ],
        120_000,
      ),
    );
    assert.match(revoked.stdout, new RegExp(`^${N} added, 0 already listed`, 'm'));
    assert.doesNotMatch(revoked.stdout, /^revoked /m, 'no line per entry for a file of serials');
    await timed(`crl renew (${N} entries)`, () => crlCommand('renew', ec, crl));
    await timed(`crl revoke --serial (1 new entry on ${N})`, () =>
      crlCommand('revoke', ec, crl, ['--serial=ABCDEF']),
    );
    const started = process.hrtime.bigint();
    const listed = await listJson(crl);
    t.diagnostic(
      `crl list -o json (${N + 1} entries): ${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(0)} ms`,
    );
    assert.equal(listed.count, N + 1);
    assert.equal(listed.crlNumber, '3');
    assert.equal(
      listed.entries[N - 1]?.serial,
      (0x10_0000_0000 + (N - 1) * 7919).toString(16).toUpperCase(),
    );
    assert.equal(listed.entries[N]?.serial, 'ABCDEF');
    assert.match(opensslVerify(ec.cert, crl), /verify OK/);
    const store = proxyStore(ec.cert, crl);
    assert.equal(store.data.issuers[0]?.set.count, N + 1);
  });
});
