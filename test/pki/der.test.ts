/**
 * The DER reader's time arithmetic: utcMs (what readTime returns) against the engine's
 * Date.UTC, which it replaces on the CRL reader's per-entry path.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, test } from 'node:test';
import { readTime, readTlv, Tag, tlv, utcMs } from '../../src/pki/der.js';

describe('DER times', () => {
  test('utcMs is Date.UTC: every day of 1950–2100 at a random time, and random dates to 9999', () => {
    for (let year = 1950; year <= 2100; year++)
      for (let month = 1; month <= 12; month++)
        for (let day = 1; day <= 31; day++) {
          const [h, m, s] = [randomInt(24), randomInt(60), randomInt(60)];
          assert.equal(utcMs(year, month, day, h, m, s), Date.UTC(year, month - 1, day, h, m, s));
        }
    for (let i = 0; i < 100_000; i++) {
      const fields = [randomInt(100, 10_000), randomInt(1, 13), randomInt(1, 32)] as const;
      const [h, m, s] = [randomInt(24), randomInt(60), randomInt(60)];
      assert.equal(
        utcMs(...fields, h, m, s),
        Date.UTC(fields[0], fields[1] - 1, fields[2], h, m, s),
        fields.join('-'),
      );
    }
  });

  test('readTime reads UTCTime (50–99 as 19xx) and GeneralizedTime', () => {
    const read = (tag: number, text: string) => {
      const der = tlv(tag, Buffer.from(text, 'latin1'));
      return readTime(der, readTlv(der, 0));
    };
    assert.equal(read(Tag.utcTime, '491231235959Z'), Date.parse('2049-12-31T23:59:59Z'));
    assert.equal(read(Tag.utcTime, '500101000000Z'), Date.parse('1950-01-01T00:00:00Z'));
    assert.equal(read(Tag.utcTime, '240229120000Z'), Date.parse('2024-02-29T12:00:00Z'));
    assert.equal(read(Tag.generalizedTime, '20500101000000Z'), Date.parse('2050-01-01T00:00:00Z'));
    assert.equal(read(Tag.generalizedTime, '99991231235959Z'), Date.UTC(9999, 11, 31, 23, 59, 59));
    assert.throws(() => read(Tag.utcTime, '241301000000Z'), /out of range/);
    assert.throws(() => read(Tag.utcTime, '24010100000Z'), /UTCTime must be/);
    assert.throws(
      () => read(Tag.generalizedTime, '2024010100000+'),
      /must end in Z|GeneralizedTime must be/,
    );
  });
});
