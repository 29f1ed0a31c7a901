/**
 * A fatal TLS 1.3 alert record, sealed as the server's next record after the handshake.
 *
 * Node has no API that sends a chosen alert, and the proxy judges a client's certificate only
 * once the handshake is over. Under TLS 1.3 the server's first record after its Finished is
 * protected with keys derived from SERVER_TRAFFIC_SECRET_0 (RFC 8446 §7.1, §7.3), which Node's
 * 'keylog' event hands out, so the record can be built here and written to the socket by
 * refusal.ts. TLS 1.2 has no such secret in the key log (its keys need both randoms, and Node
 * gives only the client's), so a TLS 1.2 client is refused at HTTP level instead.
 */
import { createCipheriv, createHmac } from 'node:crypto';
import type { RejectReason } from './verify.js';

/** The alert descriptions a refused client can get (RFC 8446 §6). */
export const AlertDescription = {
  badCertificate: 42,
  certificateRevoked: 44,
  certificateExpired: 45,
  unknownCa: 48,
  accessDenied: 49,
  certificateRequired: 116,
} as const;
export type AlertDescription = (typeof AlertDescription)[keyof typeof AlertDescription];

/**
 * The alert for a refusal, as Go's crypto/tls server picks it for the client certificates it
 * refuses itself (handshake_server.go, processCertsFromClient): unknown_ca for an unknown
 * authority, certificate_expired when the certificate is outside its validity window (x509's
 * `Expired` reason covers "not yet valid" too), certificate_required when a TLS 1.3 client sent
 * none, bad_certificate for everything else. Revocation, which Go does not check, gets its own
 * certificate_revoked, and a --deny-file entry access_denied ("a valid certificate … was
 * received, but when access control was applied, the sender decided not to proceed",
 * RFC 8446 §6.2).
 */
export function alertFor(reason: RejectReason): AlertDescription {
  switch (reason) {
    case 'revoked':
      return AlertDescription.certificateRevoked;
    case 'cert_expired':
    case 'cert_not_yet_valid':
      return AlertDescription.certificateExpired;
    case 'unknown_ca':
      return AlertDescription.unknownCa;
    case 'no_cert':
      return AlertDescription.certificateRequired;
    case 'denied':
      return AlertDescription.accessDenied;
    default:
      return AlertDescription.badCertificate;
  }
}

/** A TLS 1.3 cipher suite as record protection needs it (RFC 8446 B.4). */
export interface Tls13Suite {
  readonly aead: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
  readonly hash: 'sha256' | 'sha384';
  readonly keyLength: number;
}

/** The suites the listener offers under TLS 1.3 (tls-policy.ts), by the name getCipher() gives. */
export const TLS13_SUITES: Readonly<Record<string, Tls13Suite>> = {
  TLS_AES_128_GCM_SHA256: { aead: 'aes-128-gcm', hash: 'sha256', keyLength: 16 },
  TLS_AES_256_GCM_SHA384: { aead: 'aes-256-gcm', hash: 'sha384', keyLength: 32 },
  TLS_CHACHA20_POLY1305_SHA256: { aead: 'chacha20-poly1305', hash: 'sha256', keyLength: 32 },
};

const IV_LENGTH = 12;
const TAG_LENGTH = 16;
const CONTENT_TYPE_ALERT = 21;
const CONTENT_TYPE_APPLICATION_DATA = 23;
const ALERT_LEVEL_FATAL = 2;

/**
 * HKDF-Expand-Label(secret, label, "", length) (RFC 8446 §7.1). Every output here (a key or an
 * IV) is no longer than the hash, so HKDF-Expand (RFC 5869 §2.3) is its first block alone.
 */
function expandLabel(hash: Tls13Suite['hash'], secret: Buffer, label: string, length: number) {
  const fullLabel = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([
    Buffer.from([length >> 8, length & 0xff, fullLabel.length]),
    fullLabel,
    Buffer.from([0, 1]), // an empty context, then HKDF-Expand's block counter 1
  ]);
  return createHmac(hash, secret).update(info).digest().subarray(0, length);
}

/** The write key and IV of a traffic secret (RFC 8446 §7.3). */
export function trafficKey(suite: Tls13Suite, secret: Buffer): { key: Buffer; iv: Buffer } {
  return {
    key: expandLabel(suite.hash, secret, 'key', suite.keyLength),
    iv: expandLabel(suite.hash, secret, 'iv', IV_LENGTH),
  };
}

/**
 * The record `alert(fatal, description)` under the traffic secret, as record number `sequence`
 * of that key (RFC 8446 §5.2, §5.3): the inner plaintext is the two alert bytes and the real
 * content type, sealed with the nonce IV xor sequence and the record header as additional data.
 */
export function sealAlert(
  suite: Tls13Suite,
  secret: Buffer,
  description: AlertDescription,
  sequence = 0n,
): Buffer {
  const { key, iv } = trafficKey(suite, secret);
  const nonce = Buffer.from(iv);
  nonce.writeBigUInt64BE(nonce.readBigUInt64BE(IV_LENGTH - 8) ^ sequence, IV_LENGTH - 8);
  const inner = Buffer.from([ALERT_LEVEL_FATAL, description, CONTENT_TYPE_ALERT]);
  const length = inner.length + TAG_LENGTH;
  // legacy_record_version is 0x0303 on every TLS 1.3 record after the ServerHello.
  const header = Buffer.from([CONTENT_TYPE_APPLICATION_DATA, 0x03, 0x03, length >> 8, length]);
  const options = { authTagLength: TAG_LENGTH };
  const cipher =
    suite.aead === 'chacha20-poly1305'
      ? createCipheriv(suite.aead, key, nonce, options)
      : createCipheriv(suite.aead, key, nonce, options);
  cipher.setAAD(header);
  const sealed = Buffer.concat([header, cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
  key.fill(0);
  return sealed;
}

const SERVER_SECRET_LABEL = Buffer.from('SERVER_TRAFFIC_SECRET_0 ', 'latin1');

/**
 * The secret of a key log line `SERVER_TRAFFIC_SECRET_0 <client random> <secret>` (NSS key log
 * format, hex), or null for any other line. The hex is decoded from the line's bytes, so no
 * string copy of the secret is left to the garbage collector.
 */
export function serverTrafficSecret(line: Buffer): Buffer | null {
  if (line.length <= SERVER_SECRET_LABEL.length) return null;
  if (
    line.compare(
      SERVER_SECRET_LABEL,
      0,
      SERVER_SECRET_LABEL.length,
      0,
      SERVER_SECRET_LABEL.length,
    ) !== 0
  )
    return null;
  let start = line.indexOf(0x20, SERVER_SECRET_LABEL.length);
  if (start < 0) return null;
  start++;
  let end = line.length;
  while (end > start && (line[end - 1] === 0x0a || line[end - 1] === 0x0d)) end--;
  if ((end - start) % 2 !== 0 || end === start) return null;
  const secret = Buffer.alloc((end - start) / 2);
  for (let i = 0; i < secret.length; i++) {
    const high = hexValue(line[start + 2 * i] as number);
    const low = hexValue(line[start + 2 * i + 1] as number);
    if (high < 0 || low < 0) {
      secret.fill(0);
      return null;
    }
    secret[i] = (high << 4) | low;
  }
  return secret;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}
