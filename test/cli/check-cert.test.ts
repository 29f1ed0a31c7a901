/**
 * `check-cert` runs the real binary: accepted with the identity the apiserver would see, or
 * refused with the proxy's own reason and message; exit 0 / 1 / 2.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CheckCertReport } from '../../src/cli/check-cert-command.js';
import { Authority, crlPem, type IssuedCert } from '../../src/demo/pki-factory.js';
import { Tag } from '../../src/pki/der.js';
import { nameDer, OID_CN, OID_O, utf8Attribute } from '../support/go-names.js';
import { makePki, type TestPki } from '../support/pki.js';
import { type ExitResult, runBin } from '../support/proxy-process.js';

const DAY = 86_400_000;
const REVOKED_AT = '2026-11-01T00:00:00Z';

let pki: TestPki;
const files: Record<string, string> = {};
let mallory: IssuedCert;
let crlNextUpdate: number;

before(async () => {
  pki = await makePki();
  const now = Date.now();
  const sameName = await Authority.create({ commonName: 'kubernetes' });
  const certs: Record<string, IssuedCert> = {
    alice: await pki.user('alice', ['dev', 'ops']),
    mallory: await pki.user('mallory', ['dev']),
    old: await pki.user('old', [], {
      notBefore: new Date(now - 10 * DAY),
      notAfter: new Date(now - DAY),
    }),
    early: await pki.user('early', [], {
      notBefore: new Date(now + DAY),
      notAfter: new Date(now + 10 * DAY),
    }),
    server: await pki.user('server', [], { usage: 'server' }),
    eve: await sameName.issue({ commonName: 'eve', organizations: ['system:masters'] }),
    // The names kube-apiserver's Go parser keeps as raw bytes, and one it refuses.
    t61: await pki.clusterCa.issue({
      names: {
        subject: nameDer(utf8Attribute(OID_O, 'dev'), {
          oid: OID_CN,
          tag: Tag.t61String,
          value: Buffer.from([0x74, 0x36, 0x31, 0x2d, 0x78, 0xe9]),
        }),
      },
    }),
    atInO: await pki.clusterCa.issue({
      names: {
        subject: nameDer(
          { oid: OID_O, tag: Tag.printableString, value: Buffer.from('alice@example.com') },
          utf8Attribute(OID_CN, 'alice'),
        ),
      },
    }),
  };
  mallory = certs.mallory as IssuedCert;
  for (const [name, cert] of Object.entries(certs)) {
    files[name] = pki.write(`${name}.crt`, cert.certPem);
  }
  const thisUpdate = new Date(now - 60_000);
  crlNextUpdate = thisUpdate.getTime() + 7 * DAY;
  pki.writeCrl({
    revoked: [{ serial: mallory.serial, revokedAt: new Date(REVOKED_AT) }],
    crlNumber: 3,
    thisUpdate,
    nextUpdate: new Date(crlNextUpdate),
  });
  const other = await Authority.create({ commonName: 'other-ca' });
  files.twoCas = pki.write('two-cas.crt', pki.clusterCa.certPem + other.certPem);
  files.config = pki.write(
    'proxy.yaml',
    [
      'listen: 0.0.0.0:6443',
      `client-ca-file: ${pki.files.clientCa}`,
      `crl-file: [${pki.files.crl}]`,
      'upstream: https://127.0.0.1:16443',
      '',
    ].join('\n'),
  );
  files.garbage = pki.write('garbage.crt', 'not a certificate\n');
  files.otherCrl = pki.write('other.crl', crlPem(other.crl({ crlNumber: 1 })));
});
after(() => pki.cleanup());

function checkCert(cert: string, ...extra: string[]): Promise<ExitResult> {
  return runBin([
    'check-cert',
    cert,
    `--client-ca-file=${pki.files.clientCa}`,
    `--crl-file=${pki.files.crl}`,
    ...extra,
  ]);
}

async function checkJson(
  cert: string,
  ...extra: string[]
): Promise<[number | null, CheckCertReport]> {
  const result = await checkCert(cert, '--output=json', ...extra);
  assert.equal(result.stderr, '');
  return [result.code, JSON.parse(result.stdout) as CheckCertReport];
}

describe('check-cert', () => {
  test('accepted: the user and groups the apiserver would see', async () => {
    const text = await checkCert(files.alice as string);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^accepted: forwarded as user "alice" with groups "dev", "ops"\n/);
    const [code, report] = await checkJson(files.alice as string);
    assert.equal(code, 0);
    assert.equal(report.outcome, 'accepted');
    assert.equal(report.reason, null);
    assert.equal(report.message, null);
    assert.deepEqual(report.identity, { user: 'alice', groups: ['dev', 'ops'] });
    assert.equal(report.certificate.subject, 'O=dev, O=ops, CN=alice');
    assert.equal(report.certificate.issuer, 'CN=kubernetes');
    assert.equal(report.clientCaFile, pki.files.clientCa);
    assert.deepEqual(
      report.crls.map((c) => [c.issuer, c.crlNumber, c.entries]),
      [['CN=kubernetes', '3', 1]],
    );
    assert.deepEqual(Object.keys(report), [
      'outcome',
      'reason',
      'message',
      'identity',
      'certificate',
      'checkedAt',
      'clientCaFile',
      'crls',
      'denyFile',
      'warnings',
    ]);
    assert.equal(report.denyFile, null);
  });

  test('revoked: the exact message of the 401 Status', async () => {
    const [code, report] = await checkJson(files.mallory as string);
    assert.equal(code, 1);
    assert.equal(report.outcome, 'refused');
    assert.equal(report.reason, 'revoked');
    assert.equal(
      report.message,
      `client certificate revoked (serial ${mallory.serial}, issuer CN=kubernetes, revoked ${REVOKED_AT})`,
    );
    assert.equal(report.identity, null);
    const text = await checkCert(files.mallory as string);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^refused \(revoked\): client certificate revoked \(serial /);
  });

  test('expired, not yet valid, wrong purpose, unknown CA', async () => {
    const expected: [string, string, RegExp][] = [
      ['old', 'cert_expired', /^client certificate expired at \S+Z \(subject CN=old, serial /],
      ['early', 'cert_not_yet_valid', /^client certificate is not valid before \S+Z/],
      ['server', 'invalid_purpose', /not valid for client authentication \(subject CN=server\)/],
      ['eve', 'unknown_ca', /not signed by a trusted CA \(subject O=system:masters, CN=eve/],
    ];
    const results = await Promise.all(expected.map(([name]) => checkJson(files[name] as string)));
    results.forEach(([code, report], i) => {
      const [name, reason, message] = expected[i] as [string, string, RegExp];
      assert.equal(code, 1, name);
      assert.equal(report.reason, reason, name);
      assert.match(report.message ?? '', message, name);
    });
  });

  test('names decoded as kube-apiserver decodes them: raw T61String bytes, a refused O', async () => {
    const text = await checkCert(files.t61 as string);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^accepted: forwarded as user "t61-x\\xe9" with groups "dev"\n/);
    assert.match(text.stdout, /subject: O=dev, CN=t61-x\\e9\n/);
    const [code, report] = await checkJson(files.t61 as string);
    assert.equal(code, 0);
    assert.deepEqual(report.identity, { user: 't61-x\ufffd', groups: ['dev'] });
    const [refusedCode, refused] = await checkJson(files.atInO as string);
    assert.equal(refusedCode, 1);
    assert.equal(refused.reason, 'invalid_identity');
    assert.equal(
      refused.message,
      'client certificate subject O: invalid PrintableString, which kube-apiserver refuses (subject O=alice@example.com, CN=alice, issuer CN=kubernetes)',
    );
  });

  test('--at: a time after the certificate expires', async () => {
    const [code, report] = await checkJson(
      files.alice as string,
      `--at=${new Date(Date.now() + 400 * DAY).toISOString()}`,
    );
    assert.equal(code, 1);
    // The CRL expired first, and the chain check of the handshake runs before the CRL check.
    assert.equal(report.reason, 'cert_expired');
  });

  test('CRL past nextUpdate: refused under reject, accepted under allow', async () => {
    const at = `--at=${new Date(crlNextUpdate + 60_000).toISOString()}`;
    const [code, report] = await checkJson(files.alice as string, at);
    assert.equal(code, 1);
    assert.equal(report.reason, 'crl_expired');
    assert.match(
      report.message ?? '',
      /the CRL of CN=kubernetes, the issuer of the client certificate, expired at .*\(--crl-expired-policy=reject\)/,
    );
    assert.match(report.warnings.join('\n'), /expired at/);
    const [allowCode, allowed] = await checkJson(
      files.alice as string,
      at,
      '--crl-expired-policy=allow',
    );
    assert.equal(allowCode, 0);
    assert.equal(allowed.outcome, 'accepted');
  });

  test('a CA without a CRL: the proxy would not start under reject; accepted under allow', async () => {
    const rejected = await runBin([
      'check-cert',
      files.alice as string,
      `--client-ca-file=${files.twoCas}`,
      `--crl-file=${pki.files.crl}`,
    ]);
    assert.equal(rejected.code, 2);
    assert.equal(rejected.stdout, '');
    assert.match(
      rejected.stderr,
      /^kube-crl-proxy: the proxy would not start: --crl-file: no CRL for CA "CN=other-ca" of --client-ca-file, so its certificates are refused \(--crl-missing-policy=reject\)/,
    );
    const allowed = await runBin([
      'check-cert',
      files.alice as string,
      `--client-ca-file=${files.twoCas}`,
      `--crl-file=${pki.files.crl}`,
      '--crl-missing-policy=allow',
      '-o',
      'json',
    ]);
    assert.equal(allowed.code, 0, allowed.stderr);
    const report = JSON.parse(allowed.stdout) as CheckCertReport;
    assert.equal(report.outcome, 'accepted');
    assert.match(report.warnings.join('\n'), /no CRL for CA "CN=other-ca"/);
  });

  test("--config: the trust flags come from the proxy's own config file", async () => {
    const result = await runBin([
      'check-cert',
      files.mallory as string,
      `--config=${files.config}`,
      '-o',
      'json',
    ]);
    assert.equal(result.code, 1, result.stderr);
    assert.equal((JSON.parse(result.stdout) as CheckCertReport).reason, 'revoked');
  });

  test('bad input exits 2 with one line', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['check-cert', `${pki.dir}/nope.crt`, `--client-ca-file=${pki.files.clientCa}`],
        /nope\.crt: cannot read: no such file/,
      ],
      [
        ['check-cert', files.garbage as string, `--client-ca-file=${pki.files.clientCa}`],
        /garbage\.crt: contains no certificate/,
      ],
      [['check-cert', files.alice as string], /--client-ca-file: is required/],
      [
        [
          'check-cert',
          files.alice as string,
          `--client-ca-file=${pki.files.clientCa}`,
          `--client-ca-file=${files.twoCas}`,
        ],
        /--client-ca-file: give it once/,
      ],
      [
        [
          'check-cert',
          files.alice as string,
          `--client-ca-file=${pki.files.clientCa}`,
          `--crl-file=${pki.files.crl}`,
          '--at=tomorrow',
        ],
        /--at: "tomorrow" is not an RFC 3339 time/,
      ],
      [
        [
          'check-cert',
          files.alice as string,
          `--client-ca-file=${pki.files.clientCa}`,
          `--crl-file=${files.otherCrl}`,
        ],
        /CRL issuer "CN=other-ca" is not a CA of --client-ca-file/,
      ],
    ];
    const results = await Promise.all(cases.map(([args]) => runBin(args)));
    results.forEach((result, i) => {
      const [args, message] = cases[i] as [string[], RegExp];
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, message);
    });
  });
});
