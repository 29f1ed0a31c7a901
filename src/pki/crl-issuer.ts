/**
 * A file-based CA issuing its CRL (`kube-crl-proxy crl revoke|renew`): the CA certificate and
 * key checked against each other, the CRL in place checked against the CA, and the next CRL made
 * from it. Whatever is refused is an InputError naming the flag; nothing here writes a file.
 */
import type { KeyObject } from 'node:crypto';
import { errorMessage, InputError } from '../errors.js';
import { type Certificate, keyUsageBits, parseCertificate } from './certificate.js';
import { readPrivateKey } from './credentials.js';
import { CrlError, type ParsedCrl, parseCrl, verifyCrlSignature } from './crl.js';
import {
  type CrlSigner,
  crlSignerFor,
  encodeCrl,
  encodeRevokedEntries,
  MAX_CRL_NUMBER,
} from './crl-encoder.js';
import { DerError, Tag } from './der.js';
import { blocksIn, readBlocksOf } from './files.js';
import { type PemBlock, PemError } from './pem.js';
import { buildRevocationSet, revokedAt, serialHex } from './revocation-set.js';

export const CA_CERT = 'ca-cert';
export const CA_KEY = 'ca-key';
export const CRL = 'crl';

/** cRLSign in the first byte of a keyUsage BIT STRING (bit 6). */
const CRL_SIGN = 0x02;

export interface CrlAuthority {
  readonly cert: Certificate;
  readonly signer: CrlSigner;
  /** What the operator should know that does not stop the signing. */
  readonly warnings: readonly string[];
}

export interface AuthorityFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** The CA certificate and its key, each checked: a CA, allowed to sign CRLs, the matching key. */
export function loadAuthority(files: AuthorityFiles): CrlAuthority {
  const { certFile, keyFile } = files;
  const blocks = readBlocksOf(CA_CERT, certFile, ['CERTIFICATE'], 'certificate');
  if (blocks.length > 1) {
    throw new InputError(
      CA_CERT,
      certFile,
      `holds ${blocks.length} certificates; give the CA's certificate alone`,
    );
  }
  let cert: Certificate;
  try {
    cert = parseCertificate((blocks[0] as PemBlock).der);
  } catch (err) {
    throw new InputError(CA_CERT, certFile, `unreadable certificate: ${errorMessage(err)}`);
  }
  if (!cert.isCA) {
    throw new InputError(
      CA_CERT,
      certFile,
      `"${cert.subject}" is not a CA certificate (basicConstraints CA:TRUE)`,
    );
  }
  const usage = keyUsageBits(cert.der);
  const warnings: string[] = [];
  if (usage !== null && (usage & CRL_SIGN) === 0) {
    // RFC 5280 section 4.2.1.3 reserves CRL signing to cRLSign; kubeadm's CAs (client-go's
    // NewSelfSignedCACert) lack it, and they are what this tool is for.
    warnings.push(
      `--${CA_CERT}: the keyUsage of "${cert.subject}" lacks cRLSign (kubeadm's CAs do): kube-crl-proxy and \`openssl crl -verify\` accept the CRLs it signs, OpenSSL's revocation check (\`openssl verify -crl_check\`) does not`,
    );
  }
  const key = readPrivateKey(CA_KEY, keyFile);
  if (!cert.x509.checkPrivateKey(key)) {
    throw new InputError(
      CA_KEY,
      keyFile,
      `key does not match the certificate in --${CA_CERT} (${certFile})`,
    );
  }
  return { cert, signer: signerFor(key, keyFile), warnings };
}

function signerFor(key: KeyObject, keyFile: string): CrlSigner {
  try {
    return crlSignerFor(key);
  } catch (err) {
    if (err instanceof CrlError) throw new InputError(CA_KEY, keyFile, err.message);
    throw err;
  }
}

export interface CurrentCrl {
  readonly crl: ParsedCrl;
  /** The file's encoding, kept when it is replaced. */
  readonly format: 'pem' | 'der';
  /** Its CRL number (present: a CRL without one is refused). */
  readonly crlNumber: bigint;
}

/**
 * The CRL now in `file`, as the base of the next one: one CRL, of this CA, whose signature
 * verifies and which has a number. Anything else is refused rather than overwritten: it may be
 * another CA's CRL, or one whose number the next must exceed and cannot be known.
 */
export function readCurrentCrl(file: string, bytes: Buffer, ca: CrlAuthority): CurrentCrl {
  const refuse = (problem: string) =>
    new InputError(CRL, file, `${problem}; refusing to overwrite it`);
  const blocks = blocksIn(CRL, file, bytes, ['X509 CRL'], 'CRL (PEM "X509 CRL" block or DER)');
  if (blocks.length > 1) throw refuse(`holds ${blocks.length} CRLs, where one is kept`);
  let crl: ParsedCrl;
  try {
    crl = parseCrl((blocks[0] as PemBlock).der);
  } catch (err) {
    if (err instanceof DerError || err instanceof CrlError || err instanceof PemError) {
      throw refuse(`invalid CRL: ${err.message}`);
    }
    throw err;
  }
  if (!ca.cert.subjectDer.equals(crl.issuerDer)) {
    throw refuse(`it is a CRL of "${crl.issuer}", not of --${CA_CERT} "${ca.cert.subject}"`);
  }
  if (
    crl.authorityKeyId !== null &&
    ca.cert.subjectKeyId !== null &&
    crl.authorityKeyId !== ca.cert.subjectKeyId
  ) {
    throw refuse(
      `its authority key id ${crl.authorityKeyId} is not the subject key id of --${CA_CERT} (${ca.cert.subjectKeyId})`,
    );
  }
  let verified: boolean;
  try {
    verified = verifyCrlSignature(crl, ca.cert.x509.publicKey);
  } catch (err) {
    throw refuse(errorMessage(err));
  }
  if (!verified) throw refuse(`its signature does not verify against --${CA_CERT}`);
  if (crl.crlNumber === null) {
    throw refuse('it has no CRL number, so a higher one cannot be chosen');
  }
  return {
    crl,
    format: bytes[0] === Tag.sequence ? 'der' : 'pem',
    crlNumber: BigInt(crl.crlNumber),
  };
}

/** A certificate to list as revoked. */
export interface Revocation {
  /** Magnitude bytes of its serial number. */
  readonly serial: Uint8Array;
  /** RFC 5280 reason code; null writes no reasonCode extension. */
  readonly reason: number | null;
}

export interface IssuedCrl {
  readonly der: Buffer;
  readonly crl: ParsedCrl;
  readonly crlNumber: bigint;
  /** The serials (uppercase hex) listed by this CRL for the first time. */
  readonly added: readonly string[];
  /** The serials already listed, with the time they were revoked: their entry is kept as is. */
  readonly alreadyListed: ReadonlyArray<{ readonly serial: string; readonly revokedAt: number }>;
}

export interface CrlRequest {
  readonly current: CurrentCrl | null;
  readonly revoke: readonly Revocation[];
  /** thisUpdate, and the revocation time of new entries (whole seconds). */
  readonly now: number;
  readonly nextUpdate: number;
}

/**
 * The next CRL: every entry of the current one, byte for byte, then the new ones (a serial
 * already listed, or given twice, gets no second entry), numbered one higher, signed, and
 * read back with the proxy's own reader before it is returned.
 */
export function issueCrl(ca: CrlAuthority, request: CrlRequest): IssuedCrl {
  const { current, now } = request;
  const listed = current === null ? null : buildRevocationSet([current.crl.entries]);
  const added: string[] = [];
  const alreadyListed: { serial: string; revokedAt: number }[] = [];
  const seen = new Set<string>();
  const fresh: Revocation[] = [];
  for (const revocation of request.revoke) {
    const serial = serialHex(revocation.serial);
    if (seen.has(serial)) continue;
    seen.add(serial);
    const at = listed === null ? -1 : revokedAt(listed, revocation.serial);
    if (at >= 0) {
      alreadyListed.push({ serial, revokedAt: at });
    } else {
      added.push(serial);
      fresh.push(revocation);
    }
  }
  const crlNumber = current === null ? 1n : current.crlNumber + 1n;
  if (crlNumber > MAX_CRL_NUMBER) {
    throw new InputError(CRL, null, `CRL number ${crlNumber} would not fit in 20 octets`);
  }
  const encodedFresh = encodeRevokedEntries(
    fresh.map((r) => ({
      serial: r.serial,
      revokedAt: now,
      reason: r.reason === null ? undefined : r.reason,
    })),
  );
  const der = encodeCrl(
    {
      issuerDer: ca.cert.subjectDer,
      thisUpdate: now,
      nextUpdate: request.nextUpdate,
      crlNumber,
      authorityKeyId:
        ca.cert.subjectKeyId === null ? null : Buffer.from(ca.cert.subjectKeyId, 'hex'),
      revoked: current === null ? [encodedFresh] : [current.crl.revokedDer, encodedFresh],
    },
    ca.signer,
  );
  const crl = parseCrl(der);
  if (!verifyCrlSignature(crl, ca.cert.x509.publicKey)) {
    throw new Error('the CRL just signed does not verify against the CA certificate');
  }
  return { der, crl, crlNumber, added, alreadyListed };
}
