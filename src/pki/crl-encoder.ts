/**
 * The one CRL encoder: a v2 CertificateList from its fields and its encoded entries, signed with
 * the algorithm the key calls for. `kube-crl-proxy crl` and the PKI factory of the demo and the
 * tests both write CRLs through it.
 *
 * It is built on the DER writer, not on @peculiar/x509's X509CrlGenerator, for the size of the
 * CRLs it must write (bench/README.md, "CRL tool"). Entries already in a CRL are carried over as
 * the bytes they were (ParsedCrl.revokedDer), so re-signing never re-encodes them.
 */
import { type KeyObject, sign } from 'node:crypto';
import { CrlError, OID_CRL_NUMBER } from './crl.js';
import * as der from './der.js';

const OID_AUTHORITY_KEY_ID = '2.5.29.35';
const OID_REASON_CODE = '2.5.29.21';

/** How a CRL is signed: the key, and the AlgorithmIdentifier and digest its type calls for. */
export interface CrlSigner {
  readonly key: KeyObject;
  /** e.g. ecdsa-with-SHA256, as openssl names it. */
  readonly algorithmName: string;
  /** DER of the AlgorithmIdentifier (written twice: in tbsCertList and around the signature). */
  readonly algorithm: Buffer;
  /** Node's digest name; null for Ed25519, which hashes internally. */
  readonly digest: string | null;
}

/**
 * The signature algorithm follows the key, as Go's crypto/x509 picks it for certificates and
 * CRLs (signingParamsForPublicKey in src/crypto/x509/x509.go, read at golang/go 03be885): RSA →
 * sha256WithRSAEncryption; ECDSA by curve → ecdsa-with-SHA256 (P-224, P-256), -SHA384 (P-384),
 * -SHA512 (P-521); Ed25519 → Ed25519.
 */
export function crlSignerFor(key: KeyObject): CrlSigner {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    return {
      key,
      algorithmName: 'sha256WithRSAEncryption',
      // RFC 4055 section 5: the parameters of sha256WithRSAEncryption are NULL.
      algorithm: der.seq(der.oid('1.2.840.113549.1.1.11'), der.tlv(der.Tag.null, Buffer.alloc(0))),
      digest: 'sha256',
    };
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const byCurve = EC_ALGORITHMS[curve ?? ''];
    if (byCurve === undefined) {
      throw new CrlError(
        `ECDSA keys on curve ${curve ?? '(unknown)'} are not supported (P-224, P-256, P-384 and P-521 are)`,
      );
    }
    // RFC 5758 section 3.2: the ecdsa-with-SHA2 AlgorithmIdentifiers have no parameters.
    return {
      key,
      algorithmName: byCurve.name,
      algorithm: der.seq(der.oid(byCurve.oid)),
      digest: byCurve.digest,
    };
  }
  if (type === 'ed25519') {
    // RFC 8410 section 3: no parameters.
    return {
      key,
      algorithmName: 'ED25519',
      algorithm: der.seq(der.oid('1.3.101.112')),
      digest: null,
    };
  }
  throw new CrlError(`${type ?? 'this'} keys are not supported (RSA, ECDSA and Ed25519 keys are)`);
}

const EC_ALGORITHMS: Readonly<Record<string, { name: string; oid: string; digest: string }>> = {
  secp224r1: { name: 'ecdsa-with-SHA256', oid: '1.2.840.10045.4.3.2', digest: 'sha256' },
  prime256v1: { name: 'ecdsa-with-SHA256', oid: '1.2.840.10045.4.3.2', digest: 'sha256' },
  secp384r1: { name: 'ecdsa-with-SHA384', oid: '1.2.840.10045.4.3.3', digest: 'sha384' },
  secp521r1: { name: 'ecdsa-with-SHA512', oid: '1.2.840.10045.4.3.4', digest: 'sha512' },
};

/** One revokedCertificates entry to encode. */
export interface RevokedEntry {
  /** Magnitude bytes of the serial number. */
  readonly serial: Uint8Array;
  readonly revokedAt: number;
  /** RFC 5280 CRLReason, written as the reasonCode entry extension. */
  readonly reason?: number;
  /** More crlEntryExtensions (each an encoded Extension), after the reason code. */
  readonly extensions?: readonly Uint8Array[];
}

/** Entries encoded back to back (the contents of revokedCertificates). */
export function encodeRevokedEntries(entries: Iterable<RevokedEntry>): Buffer {
  const chunks: Buffer[] = [];
  let cachedTime = Number.NaN;
  let cachedTimeDer: Buffer = Buffer.alloc(0);
  for (const entry of entries) {
    if (entry.revokedAt !== cachedTime) {
      cachedTime = entry.revokedAt;
      cachedTimeDer = der.time(entry.revokedAt);
    }
    const parts = [der.integerFromBytes(entry.serial), cachedTimeDer];
    const reason =
      entry.reason === undefined
        ? []
        : [der.seq(der.oid(OID_REASON_CODE), der.octetString(der.enumerated(entry.reason)))];
    const extensions = [...reason, ...(entry.extensions ?? [])];
    if (extensions.length > 0) parts.push(der.seq(...extensions));
    chunks.push(der.seq(...parts));
  }
  return Buffer.concat(chunks);
}

export interface CrlFields {
  /** DER of the issuer Name: the CA certificate's subject, byte for byte. */
  readonly issuerDer: Uint8Array;
  readonly thisUpdate: number;
  /** null writes a CRL without nextUpdate. */
  readonly nextUpdate: number | null;
  /** null writes no cRLNumber extension. */
  readonly crlNumber: bigint | null;
  /** keyIdentifier of the authorityKeyIdentifier extension (the CA's subjectKeyIdentifier). */
  readonly authorityKeyId: Uint8Array | null;
  /** Encoded entries, back to back, in the order given (encodeRevokedEntries, revokedDer). */
  readonly revoked: readonly Uint8Array[];
  /** More CRL extensions (encoded Extension elements), after the two above. */
  readonly extraExtensions?: readonly Uint8Array[];
}

/** RFC 5280 section 5.2.3: a CRL number fits in 20 octets. */
export const MAX_CRL_NUMBER = (1n << 159n) - 1n;

/** The signed DER CertificateList (version 2). */
export function encodeCrl(fields: CrlFields, signer: CrlSigner): Buffer {
  const extensions: Uint8Array[] = [];
  if (fields.authorityKeyId !== null) {
    const aki = der.seq(der.tlv(0x80, fields.authorityKeyId));
    extensions.push(der.seq(der.oid(OID_AUTHORITY_KEY_ID), der.octetString(aki)));
  }
  if (fields.crlNumber !== null) {
    if (fields.crlNumber < 0n || fields.crlNumber > MAX_CRL_NUMBER) {
      throw new CrlError(`CRL number ${fields.crlNumber} does not fit in 20 octets`);
    }
    extensions.push(
      der.seq(der.oid(OID_CRL_NUMBER), der.octetString(der.integer(fields.crlNumber))),
    );
  }
  extensions.push(...(fields.extraExtensions ?? []));
  const tbsParts: Uint8Array[] = [
    der.integer(1),
    signer.algorithm,
    fields.issuerDer,
    der.time(fields.thisUpdate),
  ];
  if (fields.nextUpdate !== null) tbsParts.push(der.time(fields.nextUpdate));
  // RFC 5280 section 5.1.2.6: with no entries, revokedCertificates is absent, not empty.
  if (fields.revoked.some((chunk) => chunk.length > 0)) tbsParts.push(der.seq(...fields.revoked));
  if (extensions.length > 0) tbsParts.push(der.tlv(der.contextTag(0), der.seq(...extensions)));
  const tbs = der.seq(...tbsParts);
  const signature = sign(signer.digest, tbs, signer.key);
  return der.seq(tbs, signer.algorithm, der.bitString(signature));
}
