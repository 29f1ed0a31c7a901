/**
 * Names as kube-apiserver reads them: every string type against the table taken from Go's
 * source (test/support/go-names.ts, go1.23 crypto/x509), first value by value, then as real
 * certificates signed by a CA, in CN and in O, through the proxy's per-connection decision.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { readCertificateFields } from '../../src/pki/certificate.js';
import { DenyList } from '../../src/pki/deny-list.js';
import { goString, goStringText, InvalidStringError, quoteGoString } from '../../src/pki/names.js';
import { loadTrustData } from '../../src/pki/trust.js';
import { TrustStore } from '../../src/pki/trust-store.js';
import { type Verdict, type VerifyPolicy, verifyPeer } from '../../src/tls/verify.js';
import {
  identityFor,
  nameDer,
  OID_CN,
  OID_O,
  OID_OU,
  type RawAttribute,
  STRING_CASES,
  type StringCase,
  subjectFor,
  utf8Attribute,
  wireOf,
} from '../support/go-names.js';
import { makePki, type TestPki } from '../support/pki.js';

let pki: TestPki;
let trust: TrustStore;
let placeholder: IssuedCert;

before(async () => {
  pki = await makePki();
  trust = new TrustStore(
    loadTrustData(
      { clientCaFile: pki.files.clientCa, crlFiles: [pki.files.crl], crlMissingPolicy: 'reject' },
      null,
    ),
  );
  placeholder = await pki.user('placeholder');
});
after(() => pki.cleanup());

const POLICY: VerifyPolicy = {
  requireClientCert: true,
  crlMissingPolicy: 'reject',
  crlExpiredPolicy: 'reject',
};

/** A certificate of the cluster CA with these names, as DER (OpenSSL need not parse it). */
function certWith(names: { subject?: Buffer; issuer?: Buffer }): Buffer {
  return pki.clusterCa.resign(placeholder.der, names);
}

function decide(der: Buffer, authorized = true): Verdict {
  return verifyPeer(
    {
      peerCertificate: der,
      authorized,
      authorizationError: authorized ? null : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    },
    trust,
    DenyList.EMPTY,
    POLICY,
    Date.now(),
  );
}

function summary(verdict: Verdict): unknown {
  if (verdict.outcome === 'accepted') return verdict.identity;
  if (verdict.outcome === 'rejected') return { reason: verdict.reason, message: verdict.message };
  return verdict.outcome;
}

describe('string types, value by value (go1.23 parseASN1String)', () => {
  for (const c of STRING_CASES) {
    test(c.label, () => {
      if ('bytes' in c.go) {
        assert.equal(goString(c.tag, c.value), wireOf(c.go.bytes));
      } else {
        const expected = c.go.error;
        assert.throws(
          () => goString(c.tag, c.value),
          (err: unknown) => err instanceof InvalidStringError && err.reason.startsWith(expected),
        );
      }
    });
  }
});

describe('certificates, in CN and in O', () => {
  test('OpenSSL parses exactly the certificates the table says (else the handshake fails)', () => {
    for (const c of STRING_CASES) {
      const parses = (() => {
        try {
          new X509Certificate(certWith({ subject: subjectFor(c, 'CN') }));
          return true;
        } catch {
          return false;
        }
      })();
      assert.equal(parses, c.openssl, `${c.label}: OpenSSL ${process.versions.openssl}`);
    }
  });

  for (const where of ['CN', 'O'] as const) {
    test(`the identity or refusal of each case as ${where}`, async () => {
      for (const c of STRING_CASES) {
        // OpenSSL must load the ones a client can present; the others are decided from DER.
        const der = c.openssl
          ? (await pki.clusterCa.issue({ names: { subject: subjectFor(c, where) } })).der
          : certWith({ subject: subjectFor(c, where) });
        const verdict = decide(der);
        const expected = identityFor(c, where);
        if ('refused' in expected) {
          assert.equal(verdict.outcome === 'rejected' && verdict.reason, 'invalid_identity');
          assert.ok(
            verdict.outcome === 'rejected' && verdict.message.startsWith(expected.refused),
            `${c.label}: ${JSON.stringify(summary(verdict))}`,
          );
        } else {
          assert.deepEqual(summary(verdict), expected, c.label);
        }
      }
    });
  }

  test('T61String users t61-x\\xE9 and t61-x\\xE8 stay two users, with Go’s exact bytes', async () => {
    const [e9, e8] = ['T61String with 0xE9', 'T61String with 0xE8'].map(
      (label) => STRING_CASES.find((c) => c.label === label) as StringCase,
    );
    const users = [e9, e8].map((c) =>
      summary(decide(certWith({ subject: subjectFor(c as StringCase, 'CN') }))),
    );
    assert.deepEqual(users, [
      { user: 't61-x\u00e9', groups: ['dev'] },
      { user: 't61-x\u00e8', groups: ['dev'] },
    ]);
    assert.notDeepEqual(users[0], users[1]);
  });

  test('a refused value in any attribute, of the subject or the issuer, refuses the certificate', () => {
    const bad = (oid: string): RawAttribute => ({ oid, tag: 0x13, value: Buffer.from('a@b') });
    const universal: RawAttribute = {
      oid: OID_CN,
      tag: 0x1c,
      value: Buffer.from('kubernetes'.split('').flatMap((ch) => [0, 0, 0, ch.charCodeAt(0)])),
    };
    const cases: Array<[string, { subject?: Buffer; issuer?: Buffer }, string]> = [
      [
        'subject OU',
        { subject: nameDer(bad(OID_OU), utf8Attribute(OID_CN, 'alice')) },
        'client certificate subject OU: invalid PrintableString',
      ],
      [
        'subject C',
        { subject: nameDer(bad('2.5.4.6'), utf8Attribute(OID_CN, 'alice')) },
        'client certificate subject C: invalid PrintableString',
      ],
      [
        // OpenSSL compares names in a canonical form and still finds the CA; Go parses first.
        'issuer CN',
        { subject: nameDer(utf8Attribute(OID_CN, 'alice')), issuer: nameDer(universal) },
        'client certificate issuer CN: unsupported string type: 28 (UniversalString)',
      ],
    ];
    for (const [label, names, message] of cases) {
      for (const authorized of [true, false]) {
        const verdict = decide(certWith(names), authorized);
        assert.equal(verdict.outcome === 'rejected' && verdict.reason, 'invalid_identity', label);
        assert.ok(
          verdict.outcome === 'rejected' && verdict.message.startsWith(message),
          `${label}: ${JSON.stringify(summary(verdict))}`,
        );
      }
    }
  });

  test('the issuer is read before the subject, as Go reads them', () => {
    const fields = readCertificateFields(
      certWith({
        subject: nameDer({ oid: OID_CN, tag: 0x16, value: Buffer.from([0xe9]) }),
        issuer: nameDer({ oid: OID_O, tag: 0x12, value: Buffer.from('x') }),
      }),
    );
    assert.equal(fields.invalidName?.message, 'issuer O: invalid NumericString');
  });

  test('the last CN is the user whatever its string type; every O a group, in order', () => {
    const subject = nameDer(
      utf8Attribute(OID_CN, 'first'),
      { oid: OID_O, tag: 0x14, value: Buffer.from([0x61, 0xe9]) },
      { oid: OID_O, tag: 0x1e, value: Buffer.from('é', 'utf16le').swap16() },
      { oid: OID_CN, tag: 0x12, value: Buffer.from('12345') },
    );
    assert.deepEqual(summary(decide(certWith({ subject }))), {
      user: '12345',
      groups: ['a\u00e9', Buffer.from('é', 'utf8').toString('latin1')],
    });
  });
});

describe('display forms', () => {
  test('subjects stay readable, and two different names never display alike', () => {
    const subjectOf = (...attributes: RawAttribute[]) =>
      readCertificateFields(certWith({ subject: nameDer(...attributes) })).subject;
    const cn = (tag: number, value: Buffer | string): RawAttribute => ({
      oid: OID_CN,
      tag,
      value: typeof value === 'string' ? Buffer.from(value, 'utf8') : value,
    });
    assert.equal(subjectOf(cn(0x14, Buffer.from([0x78, 0xe9]))), 'CN=x\\e9');
    assert.equal(subjectOf(cn(0x0c, 'xé')), 'CN=xé');
    assert.equal(subjectOf(cn(0x0c, 'x\\e9')), 'CN=x\\\\e9');
    assert.equal(subjectOf(cn(0x13, 'alice@example.com')), 'CN=alice@example.com');
    assert.equal(subjectOf(cn(0x1c, Buffer.from([0, 0, 0, 0x61]))), 'CN=#1c0400000061');
    assert.equal(subjectOf(cn(0x0c, '#1c0400000061')), 'CN=\\#1c0400000061');
    assert.equal(subjectOf(cn(0x1e, Buffer.from('中', 'utf16le').swap16())), 'CN=中');
  });

  test('Go quoting for people, U+FFFD for JSON', () => {
    assert.equal(quoteGoString('alice'), '"alice"');
    assert.equal(quoteGoString('a"b\\c\n\u0001'), '"a\\"b\\\\c\\n\\x01"');
    const utf8 = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
    assert.equal(quoteGoString(utf8('\u00a0\ufffe中😀')), '"\\u00a0\\ufffe中😀"');
    assert.equal(quoteGoString('t61-x\u00e9'), '"t61-x\\xe9"');
    assert.equal(quoteGoString(Buffer.from('xé', 'utf8').toString('latin1')), '"xé"');
    assert.equal(goStringText('t61-x\u00e9'), 't61-x\ufffd');
    assert.equal(goStringText(Buffer.from('zoë', 'utf8').toString('latin1')), 'zoë');
  });
});
