/**
 * CRL reader: a plain DER walk over `revokedCertificates` into a flat, fixed-width serial
 * buffer (no object per entry), plus the metadata and the signature check.
 *
 * Not OpenSSL's `crl` option: Node's AddCRL (src/crypto/crypto_context.cc) sets
 * X509_V_FLAG_CRL_CHECK_ALL with it, so every CA of a chain would need a CRL and an expired CRL
 * would refuse every client, and a big CRL in a SecureContext is costly to build and to check
 * at each handshake. Not @peculiar/x509: it refuses big CRLs at its default limits and is far
 * slower without them. The figures of both, and of this walk: bench/README.md#figures-behind-design-choices-in-src. It runs in the trust worker thread
 * (trust-worker.ts).
 */
import { constants as cryptoConstants, type KeyObject, verify } from 'node:crypto';
import { OID_AUTHORITY_KEY_ID, readAuthorityKeyId, readExtensions } from './certificate.js';
import {
  checkOidShape,
  children,
  contextTag,
  DerError,
  expectTlv,
  magnitudeStart,
  readBitStringBytes,
  readOid,
  readSmallInteger,
  readTime,
  readTlv,
  readTlvInto,
  readUnsignedInteger,
  scratchTlv,
  Tag,
  type Tlv,
  whole,
} from './der.js';
import { formatName } from './names.js';

export class CrlError extends Error {
  readonly code = 'ERR_CRL';
  constructor(message: string) {
    super(message);
    this.name = 'CrlError';
  }
}

export const OID_CRL_NUMBER = '2.5.29.20';
const OID_DELTA_CRL_INDICATOR = '2.5.29.27';
const OID_ISSUING_DISTRIBUTION_POINT = '2.5.29.28';
const OID_FRESHEST_CRL = '2.5.29.46';
const OID_AUTHORITY_INFO_ACCESS = '1.3.6.1.5.5.7.1.1';
const OID_ISSUER_ALT_NAME = '2.5.29.18';

/** Serial numbers longer than this are refused (RFC 5280 allows 20 octets). */
export const MAX_SERIAL_BYTES = 32;

/** RevokedEntries.reasons of an entry without a reasonCode extension. */
export const NO_REASON = 0xff;
/** RevokedEntries.reasons of a reasonCode longer than one octet (no RFC 5280 code is). */
export const UNREADABLE_REASON = 0xfe;

/**
 * RFC 5280 CRLReason names by code, as this project writes them (openssl spells caCompromise
 * `CACompromise`, RFC 5280 `cACompromise`); code 7 is unused.
 */
export const CRL_REASONS: readonly (string | null)[] = [
  'unspecified',
  'keyCompromise',
  'caCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  null,
  'removeFromCRL',
  'privilegeWithdrawn',
  'aaCompromise',
];

/** The name of a RevokedEntries.reasons value; null for an entry without a reason code. */
export function reasonName(code: number): string | null {
  if (code === NO_REASON) return null;
  return (
    CRL_REASONS[code] ??
    `unrecognised reason code ${code === UNREADABLE_REASON ? '(longer than one octet)' : code}`
  );
}

/** Revoked serials of one CRL: `count` entries of `width` bytes, left-padded, in CRL order. */
export interface RevokedEntries {
  readonly count: number;
  readonly width: number;
  readonly serials: Uint8Array;
  /** Revocation time of each entry, ms since the epoch. */
  readonly revokedAt: Float64Array;
  /** RFC 5280 reasonCode of each entry, or NO_REASON / UNREADABLE_REASON. */
  readonly reasons: Uint8Array;
}

export interface SignatureAlgorithm {
  readonly oid: string;
  /** DER of the AlgorithmIdentifier's parameters, if any (RSASSA-PSS). */
  readonly params: Uint8Array | null;
}

export interface ParsedCrl {
  readonly issuerDer: Uint8Array;
  readonly issuer: string;
  readonly thisUpdate: number;
  /** null when the CRL carries no nextUpdate. */
  readonly nextUpdate: number | null;
  /** CRL number as a decimal string (up to 20 octets), null when absent. */
  readonly crlNumber: string | null;
  readonly authorityKeyId: string | null;
  readonly tbs: Uint8Array;
  readonly signatureAlgorithm: SignatureAlgorithm;
  readonly signature: Uint8Array;
  readonly entries: RevokedEntries;
  /** The contents of revokedCertificates (the entries' DER, back to back); empty when none. */
  readonly revokedDer: Uint8Array;
}

/** Parses one DER CertificateList. Does not verify the signature (see verifyCrlSignature). */
export function parseCrl(der: Uint8Array): ParsedCrl {
  const list = expectTlv(der, 0, der.length, Tag.sequence, 'CertificateList');
  if (list.end !== der.length) throw new DerError('trailing bytes after CertificateList', list.end);
  const [tbsTlv, outerAlg, sigTlv, extra] = children(der, list);
  if (tbsTlv === undefined || outerAlg === undefined || sigTlv === undefined || extra) {
    throw new CrlError('CertificateList must have exactly tbsCertList, algorithm and signature');
  }
  if (tbsTlv.tag !== Tag.sequence)
    throw new DerError('tbsCertList must be a SEQUENCE', tbsTlv.start);
  const signatureAlgorithm = readAlgorithm(der, outerAlg);

  let pos = tbsTlv.contentStart;
  const end = tbsTlv.end;
  let next = readTlv(der, pos, end);
  let version = 0;
  if (next.tag === Tag.integer) {
    version = readSmallInteger(der, next);
    if (version !== 1) throw new CrlError(`unsupported CRL version ${version + 1}`);
    pos = next.end;
    next = readTlv(der, pos, end);
  }
  const innerAlg = readAlgorithm(der, next);
  if (
    innerAlg.oid !== signatureAlgorithm.oid ||
    !sameBytes(innerAlg.params, signatureAlgorithm.params)
  ) {
    throw new CrlError('inner and outer signature algorithms differ');
  }
  pos = next.end;
  const issuerTlv = expectTlv(der, pos, end, Tag.sequence, 'issuer Name');
  pos = issuerTlv.end;
  const thisUpdateTlv = readTlv(der, pos, end);
  const thisUpdate = readTime(der, thisUpdateTlv);
  pos = thisUpdateTlv.end;

  let nextUpdate: number | null = null;
  let revoked: Tlv | null = null;
  let extensions: Tlv | null = null;
  while (pos < end) {
    const field = readTlv(der, pos, end);
    if (
      (field.tag === Tag.utcTime || field.tag === Tag.generalizedTime) &&
      nextUpdate === null &&
      revoked === null &&
      extensions === null
    ) {
      nextUpdate = readTime(der, field);
    } else if (field.tag === Tag.sequence && revoked === null && extensions === null) {
      revoked = field;
    } else if (field.tag === contextTag(0) && extensions === null) {
      extensions = readTlv(der, field.contentStart, field.end);
      if (extensions.end !== field.end)
        throw new DerError('trailing bytes in crlExtensions', extensions.end);
    } else {
      throw new DerError(
        `unexpected field (tag 0x${field.tag.toString(16)}) in tbsCertList`,
        field.start,
      );
    }
    pos = field.end;
  }
  if (version === 0 && extensions !== null) throw new CrlError('v1 CRL must not carry extensions');

  let crlNumber: string | null = null;
  let authorityKeyId: string | null = null;
  if (extensions !== null) {
    for (const ext of readExtensions(der, extensions)) {
      switch (ext.oid) {
        case OID_CRL_NUMBER: {
          const n = expectTlv(der, ext.value.contentStart, ext.value.end, Tag.integer, 'CRLNumber');
          if ((der[n.contentStart] as number) & 0x80) throw new CrlError('negative CRL number');
          crlNumber = BigInt(
            `0x${Buffer.from(readUnsignedInteger(der, n)).toString('hex')}`,
          ).toString();
          break;
        }
        case OID_AUTHORITY_KEY_ID:
          authorityKeyId = readAuthorityKeyId(der, ext.value);
          break;
        case OID_DELTA_CRL_INDICATOR:
          throw new CrlError('delta CRLs are not supported; supply the complete (base) CRL');
        case OID_ISSUING_DISTRIBUTION_POINT:
          checkIssuingDistributionPoint(der, ext.value);
          break;
        case OID_FRESHEST_CRL:
        case OID_AUTHORITY_INFO_ACCESS:
        case OID_ISSUER_ALT_NAME:
          break;
        default:
          if (ext.critical) throw new CrlError(`unsupported critical CRL extension ${ext.oid}`);
      }
    }
  }

  return {
    issuerDer: whole(der, issuerTlv),
    issuer: formatName(der, issuerTlv),
    thisUpdate,
    nextUpdate,
    crlNumber,
    authorityKeyId,
    tbs: whole(der, tbsTlv),
    signatureAlgorithm,
    signature: readBitStringBytes(der, sigTlv),
    entries: revoked === null ? emptyEntries() : readEntries(der, revoked),
    revokedDer:
      revoked === null ? der.subarray(0, 0) : der.subarray(revoked.contentStart, revoked.end),
  };
}

function emptyEntries(): RevokedEntries {
  return {
    count: 0,
    width: 1,
    serials: new Uint8Array(0),
    revokedAt: new Float64Array(0),
    reasons: new Uint8Array(0),
  };
}

/** An IDP that makes the CRL indirect or limited to some reasons cannot be used as a full CRL. */
function checkIssuingDistributionPoint(der: Uint8Array, value: Tlv): void {
  const idp = expectTlv(
    der,
    value.contentStart,
    value.end,
    Tag.sequence,
    'IssuingDistributionPoint',
  );
  for (const field of children(der, idp)) {
    const n = field.tag & 0x1f;
    if (n === 3) throw new CrlError('CRLs limited to some revocation reasons are not supported');
    if (n === 4 && der[field.contentStart] !== 0)
      throw new CrlError('indirect CRLs are not supported');
  }
}

/**
 * Two passes over revokedCertificates: the first finds the count and the widest serial, the
 * second fills one fixed-width buffer. Nothing is allocated per entry: the elements are read
 * into a few reused Tlvs (otherwise several objects per entry, millions for a big CRL).
 */
function readEntries(der: Uint8Array, revoked: Tlv): RevokedEntries {
  const entry = scratchTlv();
  const serialTlv = scratchTlv();
  let count = 0;
  let width = 1;
  for (let pos = revoked.contentStart; pos < revoked.end; ) {
    readTlvInto(der, pos, revoked.end, entry);
    if (entry.tag !== Tag.sequence) throw new DerError('revoked entry must be a SEQUENCE', pos);
    expectTlv(der, entry.contentStart, entry.end, Tag.integer, 'userCertificate', serialTlv);
    const length = serialTlv.end - magnitudeStart(der, serialTlv);
    if (length > MAX_SERIAL_BYTES) {
      throw new CrlError(`serial number of ${length} bytes is longer than ${MAX_SERIAL_BYTES}`);
    }
    if (length > width) width = length;
    count++;
    pos = entry.end;
  }
  const serials = new Uint8Array(count * width);
  const revokedAt = new Float64Array(count);
  const reasons = new Uint8Array(count).fill(NO_REASON);
  const dateTlv = scratchTlv();
  const extensions = new EntryExtensionReader(der);
  let i = 0;
  for (let pos = revoked.contentStart; pos < revoked.end; i++) {
    readTlvInto(der, pos, revoked.end, entry);
    readTlvInto(der, entry.contentStart, entry.end, serialTlv);
    if ((der[serialTlv.contentStart] as number) & 0x80)
      throw new CrlError('negative serial number');
    const from = magnitudeStart(der, serialTlv);
    for (let k = from, to = (i + 1) * width - (serialTlv.end - from); k < serialTlv.end; k++, to++)
      serials[to] = der[k] as number;
    readTlvInto(der, serialTlv.end, entry.end, dateTlv);
    revokedAt[i] = readTime(der, dateTlv);
    if (dateTlv.end < entry.end) reasons[i] = extensions.check(dateTlv.end, entry.end);
    pos = entry.end;
  }
  return { count, width, serials, revokedAt, reasons };
}

/** OBJECT IDENTIFIER contents of the entry extensions this reader knows (2.5.29.x). */
const ENTRY_OID_REASON_CODE = [0x55, 0x1d, 0x15];
const ENTRY_OID_INVALIDITY_DATE = [0x55, 0x1d, 0x18];
const ENTRY_OID_CERTIFICATE_ISSUER = [0x55, 0x1d, 0x1d];

/**
 * The crlEntryExtensions of one entry, checked as readExtensions would read them (an id, an
 * optional critical flag, an OCTET STRING value) but without an object or a string per
 * extension: real CRLs carry a reason code on most entries. The OID is decoded to text only
 * for an error message.
 */
class EntryExtensionReader {
  private readonly list = scratchTlv();
  private readonly ext = scratchTlv();
  private readonly id = scratchTlv();
  private readonly second = scratchTlv();
  private readonly third = scratchTlv();
  private readonly reason = scratchTlv();

  constructor(private readonly der: Uint8Array) {}

  /**
   * The entry's bytes [from, end) after revocationDate: exactly one Extensions SEQUENCE.
   * Returns the entry's reason code (or NO_REASON / UNREADABLE_REASON).
   */
  check(from: number, end: number): number {
    const { der, list, ext, id, second, third } = this;
    let reasonCode = NO_REASON;
    readTlvInto(der, from, end, list);
    if (list.end !== end) throw new DerError('trailing bytes in revoked entry', list.end);
    if (list.tag !== Tag.sequence) {
      throw new DerError('expected Extensions (SEQUENCE)', list.start);
    }
    for (let pos = list.contentStart; pos < list.end; pos = ext.end) {
      readTlvInto(der, pos, list.end, ext);
      if (ext.contentStart === ext.end) {
        throw new DerError('extension without id or value', ext.start);
      }
      readTlvInto(der, ext.contentStart, ext.end, id);
      if (id.end === ext.end) throw new DerError('extension without id or value', ext.start);
      readTlvInto(der, id.end, ext.end, second);
      const hasThird = second.end < ext.end;
      if (hasThird) readTlvInto(der, second.end, ext.end, third);
      if (hasThird && third.end !== ext.end) {
        throw new DerError(
          'extension with more than an id, a critical flag and a value',
          ext.start,
        );
      }
      const critical = hasThird && second.tag === Tag.boolean && der[second.contentStart] !== 0;
      const value = hasThird ? third : second;
      if (value.tag !== Tag.octetString) {
        throw new DerError('extension value must be an OCTET STRING', value.start);
      }
      checkOidShape(der, id);
      if (this.isOid(ENTRY_OID_CERTIFICATE_ISSUER)) {
        throw new CrlError('indirect CRLs are not supported');
      }
      if (this.isOid(ENTRY_OID_REASON_CODE)) {
        const reason = expectTlv(
          der,
          value.contentStart,
          value.end,
          Tag.enumerated,
          'reasonCode',
          this.reason,
        );
        // removeFromCRL only has meaning in delta CRLs, which are refused above.
        if (der[reason.contentStart] === 8) throw new CrlError('removeFromCRL entry in a base CRL');
        reasonCode =
          reason.end - reason.contentStart === 1
            ? (der[reason.contentStart] as number)
            : UNREADABLE_REASON;
      } else if (critical && !this.isOid(ENTRY_OID_INVALIDITY_DATE)) {
        throw new CrlError(`unsupported critical CRL entry extension ${readOid(der, id)}`);
      }
    }
    return reasonCode;
  }

  private isOid(oid: readonly number[]): boolean {
    const { der, id } = this;
    if (id.end - id.contentStart !== oid.length) return false;
    for (let k = 0; k < oid.length; k++) if (der[id.contentStart + k] !== oid[k]) return false;
    return true;
  }
}

function readAlgorithm(der: Uint8Array, alg: Tlv): SignatureAlgorithm {
  if (alg.tag !== Tag.sequence)
    throw new DerError('AlgorithmIdentifier must be a SEQUENCE', alg.start);
  const [id, params] = children(der, alg);
  if (id === undefined) throw new DerError('AlgorithmIdentifier without OID', alg.start);
  const hasParams = params !== undefined && params.tag !== Tag.null;
  return { oid: readOid(der, id), params: hasParams ? whole(der, params) : null };
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

const DIGEST_BY_OID: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};
const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
const OID_ED25519 = '1.3.101.112';
const OID_ED448 = '1.3.101.113';
const HASH_OIDS: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/**
 * Whether the CRL's signature verifies under `issuerKey`. Throws CrlError for an algorithm
 * this build cannot check (never "valid" by default).
 */
export function verifyCrlSignature(crl: ParsedCrl, key: KeyObject): boolean {
  const { oid, params } = crl.signatureAlgorithm;
  try {
    if (oid === OID_ED25519 || oid === OID_ED448) return verify(null, crl.tbs, key, crl.signature);
    if (oid === OID_RSASSA_PSS) {
      const pss = readPssParams(params);
      return verify(
        pss.digest,
        crl.tbs,
        { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: pss.saltLength },
        crl.signature,
      );
    }
    const digest = DIGEST_BY_OID[oid];
    if (digest === undefined) throw new CrlError(`unsupported CRL signature algorithm ${oid}`);
    return verify(digest, crl.tbs, key, crl.signature);
  } catch (err) {
    if (err instanceof CrlError) throw err;
    // A key of the wrong type for the algorithm, or a malformed signature: it does not verify.
    return false;
  }
}

function readPssParams(params: Uint8Array | null): { digest: string; saltLength: number } {
  let digest = 'sha1';
  let saltLength = 20;
  if (params === null) return { digest, saltLength };
  const seqTlv = expectTlv(params, 0, params.length, Tag.sequence, 'RSASSA-PSS-params');
  for (const field of children(params, seqTlv)) {
    const inner = readTlv(params, field.contentStart, field.end);
    const n = field.tag & 0x1f;
    if (n === 0) {
      const [hashOid] = children(params, inner);
      const name = hashOid === undefined ? undefined : HASH_OIDS[readOid(params, hashOid)];
      if (name === undefined) throw new CrlError('unsupported RSASSA-PSS hash');
      digest = name;
    } else if (n === 2) {
      saltLength = readSmallInteger(params, inner);
    } else if (n === 3 && readSmallInteger(params, inner) !== 1) {
      throw new CrlError('unsupported RSASSA-PSS trailer field');
    }
  }
  return { digest, saltLength };
}
