/**
 * The TLS 1.3 alert record: the key schedule step against RFC 8448's published values, the
 * record layout of RFC 8446 §5.2 for each suite, the alert chosen for each refusal, and the
 * key log lines the secret is read from. That real clients read the record is in
 * test/e2e/tls-alert.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AlertDescription,
  alertFor,
  sealAlert,
  serverTrafficSecret,
  TLS13_SUITES,
  type Tls13Suite,
  trafficKey,
} from '../../src/tls/alert.js';
import { REJECT_REASONS } from '../../src/tls/verify.js';
import { openRecord } from '../support/tls-records.js';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

describe('TLS 1.3 alert record', () => {
  test('traffic key and IV from a traffic secret: RFC 8448 section 3 values', () => {
    // The server handshake traffic secret of RFC 8448's simple 1-RTT handshake and the write
    // key and IV it derives, as Go's crypto/tls checks them (key_schedule_test.go, TestTrafficKey).
    const { key, iv } = trafficKey(
      TLS13_SUITES.TLS_AES_128_GCM_SHA256 as Tls13Suite,
      hex(
        'b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38',
      ),
    );
    assert.equal(key.toString('hex'), '3fce516009c21727d0f2e4e86ee403bc');
    assert.equal(iv.toString('hex'), '5d313eb2671276ee13000b30');
  });

  for (const [name, suite] of Object.entries(TLS13_SUITES)) {
    test(`${name}: application_data header, sealed [fatal, description, alert content type]`, () => {
      const secret = Buffer.alloc(suite.hash === 'sha384' ? 48 : 32, 7);
      const record = sealAlert(suite, secret, AlertDescription.certificateRevoked);
      assert.deepEqual([...record.subarray(0, 5)], [23, 3, 3, 0, 19]);
      assert.equal(record.length, 24);
      assert.deepEqual([...(openRecord(suite, secret, record, 0n) ?? [])], [2, 44, 21]);
      assert.equal(openRecord(suite, secret, record, 1n), null, 'sealed as record 0 only');
      const third = sealAlert(suite, secret, AlertDescription.unknownCa, 2n);
      assert.deepEqual([...(openRecord(suite, secret, third, 2n) ?? [])], [2, 48, 21]);
    });
  }

  test('the alert of each refusal reason', () => {
    const expected: Record<string, number> = {
      revoked: 44,
      cert_expired: 45,
      cert_not_yet_valid: 45,
      unknown_ca: 48,
      no_cert: 116,
      crl_missing: 42,
      crl_expired: 42,
      invalid_purpose: 42,
      invalid_cert: 42,
      invalid_identity: 42,
      denied: 49,
    };
    assert.deepEqual(Object.keys(expected).sort(), [...REJECT_REASONS].sort());
    for (const reason of REJECT_REASONS) assert.equal(alertFor(reason), expected[reason], reason);
  });

  test('the secret is read from SERVER_TRAFFIC_SECRET_0 key log lines only', () => {
    const random = 'ab'.repeat(32);
    const secret = '0123456789abcdefABCDEF'.padEnd(96, '0');
    const line = (label: string, value = secret) => Buffer.from(`${label} ${random} ${value}\n`);
    assert.equal(
      serverTrafficSecret(line('SERVER_TRAFFIC_SECRET_0'))?.toString('hex'),
      secret.toLowerCase(),
    );
    for (const other of [
      'CLIENT_TRAFFIC_SECRET_0',
      'SERVER_HANDSHAKE_TRAFFIC_SECRET',
      'EXPORTER_SECRET',
      'CLIENT_RANDOM',
    ])
      assert.equal(serverTrafficSecret(line(other)), null, other);
    for (const bad of ['', 'abc', 'zz'.repeat(32)])
      assert.equal(serverTrafficSecret(line('SERVER_TRAFFIC_SECRET_0', bad)), null, bad);
    assert.equal(serverTrafficSecret(Buffer.from('SERVER_TRAFFIC_SECRET_0 ')), null);
  });
});
