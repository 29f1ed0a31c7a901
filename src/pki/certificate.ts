/**
 * Certificates: Node's X509Certificate does the cryptography and validity; the few fields it
 * does not expose (the subject's DER bytes, key identifiers) are read here with the DER reader.
 */
import { X509Certificate } from 'node:crypto';
import {
  children,
  contents,
  contextTag,
  DerError,
  expectTlv,
  readOid,
  readTime,
  readTlv,
  readUnsignedInteger,
  Tag,
  type Tlv,
  whole,
} from './der.js';
import { formatName, InvalidNameError, type NameAttribute, readNameAttributes } from './names.js';
import { serialHex } from './revocation-set.js';

export const OID_SUBJECT_KEY_ID = '2.5.29.14';
export const OID_AUTHORITY_KEY_ID = '2.5.29.35';
const OID_KEY_USAGE = '2.5.29.15';
const OID_EXTENDED_KEY_USAGE = '2.5.29.37';

export interface Certificate {
  readonly x509: X509Certificate;
  readonly der: Buffer;
  /** DER of the subject Name, byte-compared with CRL issuers. */
  readonly subjectDer: Buffer;
  readonly subject: string;
  readonly issuer: string;
  readonly subjectKeyId: string | null;
  readonly authorityKeyId: string | null;
  readonly isCA: boolean;
  readonly selfIssued: boolean;
  readonly notBefore: number;
  readonly notAfter: number;
  /** Uppercase hex without leading zero bytes, as Node reports peer serials. */
  readonly serial: string;
  readonly fingerprint256: string;
}

export interface Extension {
  readonly oid: string;
  readonly critical: boolean;
  /** The contents of extnValue's OCTET STRING. */
  readonly value: Tlv;
}

/** Reads an `Extensions` SEQUENCE. */
export function readExtensions(buf: Uint8Array, extensions: Tlv): Extension[] {
  if (extensions.tag !== Tag.sequence) {
    throw new DerError('expected Extensions (SEQUENCE)', extensions.start);
  }
  return children(buf, extensions).map((ext) => {
    const parts = children(buf, ext);
    const [idTlv, second, third] = parts;
    if (idTlv === undefined || second === undefined) {
      throw new DerError('extension without id or value', ext.start);
    }
    const critical =
      third !== undefined && second.tag === Tag.boolean && buf[second.contentStart] !== 0;
    const valueTlv = third ?? second;
    if (valueTlv.tag !== Tag.octetString) {
      throw new DerError('extension value must be an OCTET STRING', valueTlv.start);
    }
    return { oid: readOid(buf, idTlv), critical, value: valueTlv };
  });
}

/** keyIdentifier of an AuthorityKeyIdentifier extension value, as lowercase hex. */
export function readAuthorityKeyId(buf: Uint8Array, value: Tlv): string | null {
  const aki = readTlv(buf, value.contentStart, value.end);
  for (const field of children(buf, aki)) {
    if (field.tag === 0x80) return Buffer.from(contents(buf, field)).toString('hex');
  }
  return null;
}

function readSubjectKeyId(buf: Uint8Array, value: Tlv): string {
  const ski = expectTlv(
    buf,
    value.contentStart,
    value.end,
    Tag.octetString,
    'SubjectKeyIdentifier',
  );
  return Buffer.from(contents(buf, ski)).toString('hex');
}

interface TbsFields {
  readonly issuer: Tlv;
  readonly subject: Tlv;
  readonly all: readonly Tlv[];
}

function readTbsFields(der: Uint8Array): TbsFields {
  const cert = expectTlv(der, 0, der.length, Tag.sequence, 'Certificate');
  const tbs = expectTlv(der, cert.contentStart, cert.end, Tag.sequence, 'TBSCertificate');
  const all = children(der, tbs);
  // [0] version is optional; then serialNumber, signature, issuer, validity, subject.
  const first = all[0]?.tag === contextTag(0) ? 1 : 0;
  const issuer = all[first + 2];
  const subject = all[first + 4];
  if (issuer === undefined || subject === undefined) {
    throw new DerError('TBSCertificate is missing issuer or subject', tbs.start);
  }
  return { issuer, subject, all };
}

/** The extensions of a DER certificate ([3] of TBSCertificate); none → []. */
export function certificateExtensions(der: Uint8Array): Extension[] {
  const field = readTbsFields(der).all.find((f) => f.tag === contextTag(3));
  if (field === undefined) return [];
  return readExtensions(der, readTlv(der, field.contentStart, field.end));
}

/**
 * The extendedKeyUsage OIDs of a DER certificate, null when it has none (any purpose).
 * Read from the DER because X509Certificate.keyUsage (which Node documents as these OIDs)
 * is not portable: Deno returns the keyUsage bit names there (docs/deno.md).
 */
export function extendedKeyUsages(der: Uint8Array): string[] | null {
  const extension = certificateExtensions(der).find((e) => e.oid === OID_EXTENDED_KEY_USAGE);
  if (extension === undefined) return null;
  const { contentStart, end } = extension.value;
  const list = expectTlv(der, contentStart, end, Tag.sequence, 'ExtKeyUsageSyntax');
  return children(der, list).map((oid) => readOid(der, oid));
}

/** The first byte of the keyUsage BIT STRING (the bits a TLS purpose check reads), or null. */
export function keyUsageBits(der: Uint8Array): number | null {
  const extension = certificateExtensions(der).find((e) => e.oid === OID_KEY_USAGE);
  if (extension === undefined) return null;
  const { contentStart, end } = extension.value;
  const bits = expectTlv(der, contentStart, end, Tag.bitString, 'KeyUsage');
  // contents: one byte of unused-bit count, then the bits; an empty KeyUsage grants nothing.
  return bits.end - bits.contentStart > 1 ? (der[bits.contentStart + 1] as number) : 0;
}

/**
 * What the per-connection check reads from a client certificate, straight from its DER: no
 * X509Certificate, whose construction re-decodes the public key, too costly per connection
 * (bench/README.md#figures-behind-design-choices-in-src).
 * OpenSSL has already parsed and verified the certificate during the handshake; this only
 * reads fields. Throws DerError for what it cannot read (the caller refuses the certificate).
 */
export interface CertificateFields {
  /** Uppercase hex without leading zero bytes, as Node reports serials. */
  readonly serial: string;
  readonly serialBytes: Uint8Array;
  readonly issuerDer: Buffer;
  /** Display forms (`CN=alice, O=dev`), as in Status messages and logs. */
  readonly subject: string;
  readonly issuer: string;
  /** The subject's attributes as kube-apiserver decodes them; empty when `invalidName` is set. */
  readonly subjectAttributes: readonly NameAttribute[];
  /** The first issuer or subject value Go's parser refuses (it then refuses the certificate). */
  readonly invalidName: InvalidNameError | null;
  readonly authorityKeyId: string | null;
  /** The AuthorityKeyIdentifier also names the issuer's issuer and serial. */
  readonly authorityKeyIdNamesIssuer: boolean;
  /** OID of the signature algorithm (tbsCertificate.signature). */
  readonly signatureAlgorithm: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** DER of the SubjectPublicKeyInfo (a view into the certificate's bytes). */
  readonly subjectPublicKeyInfo: Buffer;
}

export function readCertificateFields(der: Buffer): CertificateFields {
  const { issuer, subject, all } = readTbsFields(der);
  const first = all[0]?.tag === contextTag(0) ? 1 : 0;
  const serialTlv = all[first];
  const algorithm = all[first + 1];
  const validity = all[first + 3];
  const publicKeyInfo = all[first + 5];
  if (
    publicKeyInfo?.tag !== Tag.sequence ||
    serialTlv === undefined ||
    algorithm?.tag !== Tag.sequence ||
    validity === undefined ||
    validity.tag !== Tag.sequence
  ) {
    throw new DerError(
      'TBSCertificate is missing serialNumber, signature, validity or subjectPublicKeyInfo',
      0,
    );
  }
  const algorithmOid = children(der, algorithm)[0];
  if (algorithmOid === undefined) throw new DerError('AlgorithmIdentifier without OID', 0);
  if ((der[serialTlv.contentStart] as number) & 0x80) {
    throw new DerError('negative serial number', serialTlv.start);
  }
  const serialBytes = readUnsignedInteger(der, serialTlv);
  const [notBefore, notAfter] = children(der, validity);
  if (notBefore === undefined || notAfter === undefined) {
    throw new DerError('validity must have notBefore and notAfter', validity.start);
  }
  let authorityKeyId: string | null = null;
  let authorityKeyIdNamesIssuer = false;
  const extField = all.find((f) => f.tag === contextTag(3));
  if (extField !== undefined) {
    const extensions = readTlv(der, extField.contentStart, extField.end);
    for (const ext of readExtensions(der, extensions)) {
      if (ext.oid !== OID_AUTHORITY_KEY_ID) continue;
      authorityKeyId = readAuthorityKeyId(der, ext.value);
      const aki = readTlv(der, ext.value.contentStart, ext.value.end);
      authorityKeyIdNamesIssuer = children(der, aki).some((field) => field.tag !== 0x80);
    }
  }
  let subjectAttributes: NameAttribute[] = [];
  let invalidName: InvalidNameError | null = null;
  try {
    // Go parses the issuer first, then the subject (parser.go, parseCertificate).
    readNameAttributes(der, issuer, 'issuer');
    subjectAttributes = readNameAttributes(der, subject, 'subject');
  } catch (err) {
    if (!(err instanceof InvalidNameError)) throw err;
    invalidName = err;
  }
  return {
    serial: serialHex(serialBytes),
    serialBytes,
    issuerDer: der.subarray(issuer.start, issuer.end),
    subject: formatName(der, subject),
    issuer: formatName(der, issuer),
    subjectAttributes,
    invalidName,
    authorityKeyId,
    authorityKeyIdNamesIssuer,
    signatureAlgorithm: readOid(der, algorithmOid),
    notBefore: readTime(der, notBefore),
    notAfter: readTime(der, notAfter),
    subjectPublicKeyInfo: der.subarray(publicKeyInfo.start, publicKeyInfo.end),
  };
}

export function parseCertificate(der: Buffer): Certificate {
  const x509 = new X509Certificate(der);
  const { issuer, subject, all: fields } = readTbsFields(der);
  let subjectKeyId: string | null = null;
  let authorityKeyId: string | null = null;
  const extField = fields.find((f) => f.tag === contextTag(3));
  if (extField !== undefined) {
    const extensions = readTlv(der, extField.contentStart, extField.end);
    for (const ext of readExtensions(der, extensions)) {
      if (ext.oid === OID_SUBJECT_KEY_ID) subjectKeyId = readSubjectKeyId(der, ext.value);
      if (ext.oid === OID_AUTHORITY_KEY_ID) authorityKeyId = readAuthorityKeyId(der, ext.value);
    }
  }
  const subjectDer = Buffer.from(whole(der, subject));
  return {
    x509,
    der,
    subjectDer,
    subject: formatName(der, subject),
    issuer: formatName(der, issuer),
    subjectKeyId,
    authorityKeyId,
    isCA: x509.ca,
    selfIssued: subjectDer.equals(whole(der, issuer)),
    notBefore: Date.parse(x509.validFrom),
    notAfter: Date.parse(x509.validTo),
    serial: x509.serialNumber.toUpperCase(),
    fingerprint256: x509.fingerprint256,
  };
}
