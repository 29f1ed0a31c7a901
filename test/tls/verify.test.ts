/**
 * The per-connection decision after the chain check: current bundle, validity, revocation of
 * the whole chain under both policies, forwardable identity.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Authority, crlPem, type IssuedCert } from '../../src/demo/pki-factory.js';
import { DenyList, parseDenyEntries } from '../../src/pki/deny-list.js';
import { loadTrustData } from '../../src/pki/trust.js';
import { TrustStore } from '../../src/pki/trust-store.js';
import { checkCertificate, peerOf, type Verdict, type VerifyPolicy } from '../../src/tls/verify.js';

let dir: string;
let root: Authority;
let intermediate: Authority;
const STRICT: VerifyPolicy = {
  requireClientCert: false,
  crlMissingPolicy: 'reject',
  crlExpiredPolicy: 'reject',
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kcp-verify-'));
  root = await Authority.create({ commonName: 'root-ca' });
  intermediate = await Authority.create({ commonName: 'users-ca', organizations: ['acme'] }, root);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function store(
  crls: Array<{ ca: Authority; revoked?: IssuedCert[]; nextUpdate?: Date }>,
  missing: 'reject' | 'allow' = 'reject',
): TrustStore {
  const caFile = join(dir, `bundle-${Math.random()}.crt`);
  writeFileSync(caFile, root.certPem + intermediate.certPem);
  const crlFiles = crls.map(({ ca, revoked = [], nextUpdate }, i) => {
    const path = join(dir, `crl-${Math.random()}-${i}.pem`);
    writeFileSync(
      path,
      crlPem(
        ca.crl({
          revoked: revoked.map((c) => ({ serial: c.serial })),
          ...(nextUpdate
            ? { nextUpdate, thisUpdate: new Date(nextUpdate.getTime() - 60_000) }
            : {}),
        }),
      ),
    );
    return path;
  });
  return new TrustStore(
    loadTrustData({ clientCaFile: caFile, crlFiles, crlMissingPolicy: missing }, null),
  );
}

function decide(cert: IssuedCert, trust: TrustStore, policy = STRICT): Verdict {
  return checkCertificate(peerOf(cert.x509.raw), trust, DenyList.EMPTY, policy, Date.now());
}

function reasonOf(verdict: Verdict): string {
  return verdict.outcome === 'rejected' ? verdict.reason : verdict.outcome;
}

describe('chain revocation', () => {
  test('a leaf of an intermediate is checked against the intermediate CRL, the intermediate against the root CRL', async () => {
    const user = await intermediate.issue({ commonName: 'carol', organizations: ['dev'] });
    assert.equal(reasonOf(decide(user, store([{ ca: root }, { ca: intermediate }]))), 'accepted');
    const revokedLeaf = decide(user, store([{ ca: root }, { ca: intermediate, revoked: [user] }]));
    assert.equal(reasonOf(revokedLeaf), 'revoked');
    assert.match(
      revokedLeaf.outcome === 'rejected' ? revokedLeaf.message : '',
      /client certificate revoked \(serial [0-9A-F]+, issuer O=acme, CN=users-ca, revoked /,
    );
    const revokedCa = decide(
      user,
      store([{ ca: root, revoked: [intermediate.cert] }, { ca: intermediate }]),
    );
    assert.equal(reasonOf(revokedCa), 'revoked');
    assert.match(revokedCa.outcome === 'rejected' ? revokedCa.message : '', /issuing CA revoked/);
  });

  test('missing and expired CRLs follow their policies', async () => {
    const user = await intermediate.issue({ commonName: 'dave' });
    const noIntermediateCrl = store([{ ca: root }], 'allow');
    assert.equal(reasonOf(decide(user, noIntermediateCrl)), 'crl_missing');
    assert.equal(
      reasonOf(decide(user, noIntermediateCrl, { ...STRICT, crlMissingPolicy: 'allow' })),
      'accepted',
    );
    const expired = store([
      { ca: root },
      { ca: intermediate, nextUpdate: new Date(Date.now() - 1000) },
    ]);
    const verdict = decide(user, expired);
    assert.equal(reasonOf(verdict), 'crl_expired');
    assert.match(
      verdict.outcome === 'rejected' ? verdict.message : '',
      /the CRL of O=acme, CN=users-ca, the issuer of the client certificate, expired at/,
    );
    assert.equal(
      reasonOf(decide(user, expired, { ...STRICT, crlExpiredPolicy: 'allow' })),
      'accepted',
    );
  });

  test('a certificate of a CA no longer in the bundle is unknown_ca', async () => {
    const other = await Authority.create({ commonName: 'root-ca' });
    const user = await other.issue({ commonName: 'erin' });
    assert.equal(reasonOf(decide(user, store([{ ca: root }, { ca: intermediate }]))), 'unknown_ca');
  });
});

describe('identity', () => {
  test('CN is the user and every O a group, in certificate order', async () => {
    const user = await intermediate.issue({
      commonName: 'frank',
      organizations: ['b-team', 'a-team', 'system:masters'],
    });
    const verdict = decide(user, store([{ ca: root }, { ca: intermediate }]));
    assert.equal(verdict.outcome, 'accepted');
    assert.deepEqual(verdict.outcome === 'accepted' ? verdict.identity : null, {
      user: 'frank',
      groups: ['b-team', 'a-team', 'system:masters'],
    });
  });

  test('names that cannot travel as a header are refused with the reason', async () => {
    const trust = store([{ ca: root }, { ca: intermediate }]);
    const cases: Array<[string, string[], RegExp]> = [
      [
        'evil\r\nX-Remote-Group: system:masters',
        [],
        /CN cannot be forwarded as a header: it contains the control character 0x0d/,
      ],
      ['nul\u0000byte', [], /control character 0x00/],
      [
        'ok',
        ['group\nsplit'],
        /O cannot be forwarded as a header: it contains the control character 0x0a/,
      ],
      ['x'.repeat(5000), [], /it is 5000 bytes long \(limit 4096\)/],
      [' padded ', [], /leading or trailing whitespace/],
    ];
    for (const [cn, orgs, message] of cases) {
      const cert = await intermediate.issue({ commonName: cn, organizations: orgs });
      const verdict = decide(cert, trust);
      assert.equal(reasonOf(verdict), 'invalid_identity', JSON.stringify(cn));
      assert.match(verdict.outcome === 'rejected' ? verdict.message : '', message);
    }
    const noCn = await intermediate.issue({ organizations: ['dev'] });
    assert.match(JSON.stringify(decide(noCn, trust)), /no CommonName/);
  });

  test('non-ASCII and commas are forwarded intact', async () => {
    const cert = await intermediate.issue({
      commonName: 'Jürgen, Müller',
      organizations: ['Équipe "A", Paris'],
    });
    const verdict = decide(cert, store([{ ca: root }, { ca: intermediate }]));
    // Go strings, one char per byte: the UTF-8 bytes of the UTF8String values.
    const bytes = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
    assert.deepEqual(verdict.outcome === 'accepted' ? verdict.identity : null, {
      user: bytes('Jürgen, Müller'),
      groups: [bytes('Équipe "A", Paris')],
    });
  });
});

describe('the deny list', () => {
  function denying(yaml: string): DenyList {
    return new DenyList({
      file: 'deny.yaml',
      digest: yaml,
      entries: parseDenyEntries('deny.yaml', Buffer.from(yaml)),
    });
  }

  test('runs after the CRL check: a revoked certificate stays revoked, a good one is denied', async () => {
    const user = await intermediate.issue({ commonName: 'gina', organizations: ['dev'] });
    const deny = denying('- {user: gina, reason: laptop stolen 2026-12-07}\n');
    const check = (trust: TrustStore) =>
      checkCertificate(peerOf(user.x509.raw), trust, deny, STRICT, Date.now());
    const denied = check(store([{ ca: root }, { ca: intermediate }]));
    assert.equal(reasonOf(denied), 'denied');
    assert.equal(
      denied.outcome === 'rejected' ? denied.message : '',
      'client certificate denied by --deny-file entry 1 (user gina): laptop stolen 2026-12-07',
    );
    assert.equal(
      reasonOf(check(store([{ ca: root }, { ca: intermediate, revoked: [user] }]))),
      'revoked',
    );
    assert.equal(
      reasonOf(
        check(store([{ ca: root }, { ca: intermediate, nextUpdate: new Date(Date.now() - 1000) }])),
      ),
      'crl_expired',
    );
    assert.equal(reasonOf(decide(user, store([{ ca: root }, { ca: intermediate }]))), 'accepted');
  });

  test('a certificate whose identity cannot be forwarded is still denied by its key', async () => {
    const user = await intermediate.issue({ commonName: 'bad\nname' });
    const fingerprint = createHash('sha256').update(user.der).digest('hex');
    const verdict = checkCertificate(
      peerOf(user.x509.raw),
      store([{ ca: root }, { ca: intermediate }]),
      denying(`- {fingerprint: ${fingerprint}}\n`),
      STRICT,
      Date.now(),
    );
    assert.equal(reasonOf(verdict), 'denied');
  });
});
