/**
 * Reading TLS 1.3 records in tests: opening a record sealed under a traffic secret, and the
 * records of a captured byte stream that open under the server's application traffic secret.
 */
import { createDecipheriv } from 'node:crypto';
import { type Tls13Suite, trafficKey } from '../../src/tls/alert.js';

const TAG_LENGTH = 16;

/** The inner plaintext of `record`, or null when it does not open as record `sequence`. */
export function openRecord(
  suite: Tls13Suite,
  secret: Buffer,
  record: Buffer,
  sequence: bigint,
): Buffer | null {
  const { key, iv } = trafficKey(suite, secret);
  const nonce = Buffer.from(iv);
  nonce.writeBigUInt64BE(nonce.readBigUInt64BE(4) ^ sequence, 4);
  const body = record.subarray(5);
  if (body.length < TAG_LENGTH) return null;
  const options = { authTagLength: TAG_LENGTH };
  const decipher =
    suite.aead === 'chacha20-poly1305'
      ? createDecipheriv(suite.aead, key, nonce, options)
      : createDecipheriv(suite.aead, key, nonce, options);
  decipher.setAAD(record.subarray(0, 5));
  decipher.setAuthTag(body.subarray(body.length - TAG_LENGTH));
  try {
    return Buffer.concat([
      decipher.update(body.subarray(0, body.length - TAG_LENGTH)),
      decipher.final(),
    ]);
  } catch {
    return null;
  }
}

/**
 * The records of a server's byte stream that open under its application traffic secret, in
 * order, as records 0, 1, …; the records before the first of them are the handshake's. `rest`:
 * records after the first application record that do not open (there should be none), and
 * `trailing`: bytes after the last whole record.
 */
export function applicationRecords(
  bytes: Buffer,
  suite: Tls13Suite,
  secret: Buffer,
): { records: Buffer[]; rest: number; trailing: number } {
  const records: Buffer[] = [];
  let rest = 0;
  let offset = 0;
  while (offset + 5 <= bytes.length) {
    const end = offset + 5 + bytes.readUInt16BE(offset + 3);
    if (end > bytes.length) break;
    const record = bytes.subarray(offset, end);
    offset = end;
    const opened = openRecord(suite, secret, record, BigInt(records.length));
    if (opened !== null) records.push(opened);
    else if (records.length > 0) rest++;
  }
  return { records, rest, trailing: bytes.length - offset };
}
