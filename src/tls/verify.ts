/**
 * The per-connection decision: who is this client, and may it reach the apiserver?
 *
 * OpenSSL has verified the chain against the client CA bundle (socket.authorized); everything
 * else is decided here, on every connection, resumed TLS sessions included: the issuer is a
 * CA of the current snapshot, the certificate is inside its validity window, and no CRL of its
 * chain revokes it. The same function re-checks live connections after each snapshot swap.
 */
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Policy } from '../config/config.js';
import { subjectAttributes } from '../pki/certificate.js';
import { OID_COMMON_NAME, OID_ORGANIZATION } from '../pki/names.js';
import { serialBytes } from '../pki/revocation-set.js';
import { type CaEntry, TrustStore } from '../pki/trust.js';

export type RejectReason =
  | 'revoked'
  | 'unknown_ca'
  | 'cert_expired'
  | 'cert_not_yet_valid'
  | 'no_cert'
  | 'crl_missing'
  | 'crl_expired'
  | 'invalid_purpose'
  | 'invalid_cert'
  | 'invalid_identity';

export const REJECT_REASONS: readonly RejectReason[] = [
  'revoked',
  'unknown_ca',
  'cert_expired',
  'cert_not_yet_valid',
  'no_cert',
  'crl_missing',
  'crl_expired',
  'invalid_purpose',
  'invalid_cert',
  'invalid_identity',
];

/** The user the apiserver will see: kube's x509 rule, CN → user, every O → a group, in order. */
export interface Identity {
  readonly user: string;
  readonly groups: readonly string[];
}

export interface PeerCert {
  readonly x509: X509Certificate;
  /** Uppercase hex. */
  readonly serial: string;
  readonly subject: string;
  readonly issuer: string;
  /** Groups the connections of one certificate in the registry. */
  readonly key: string;
}

export type Verdict =
  | { readonly outcome: 'accepted'; readonly identity: Identity; readonly peer: PeerCert }
  | { readonly outcome: 'anonymous' }
  | {
      readonly outcome: 'rejected';
      readonly reason: RejectReason;
      readonly message: string;
      readonly peer: PeerCert | null;
    };

export interface VerifyPolicy {
  readonly requireClientCert: boolean;
  readonly crlMissingPolicy: Policy;
  readonly crlExpiredPolicy: Policy;
}

/** Identity values longer than this are refused rather than forwarded. */
export const MAX_IDENTITY_VALUE_BYTES = 4096;
const MAX_GROUPS = 64;

/** Decides for a freshly handshaken (or resumed) TLS connection. */
export function verifyPeer(
  socket: TLSSocket,
  trust: TrustStore,
  policy: VerifyPolicy,
  now: number,
): Verdict {
  const x509 = socket.getPeerX509Certificate();
  if (x509 === undefined) {
    return policy.requireClientCert
      ? {
          outcome: 'rejected',
          reason: 'no_cert',
          message: 'a client certificate is required',
          peer: null,
        }
      : { outcome: 'anonymous' };
  }
  const peer = peerOf(x509);
  if (!socket.authorized) {
    const code = String(socket.authorizationError ?? 'UNKNOWN');
    return chainFailure(peer, code);
  }
  return checkCertificate(peer, trust, policy, now);
}

export function peerOf(x509: X509Certificate): PeerCert {
  const serial = x509.serialNumber.toUpperCase();
  const issuer = x509.issuer;
  return { x509, serial, subject: x509.subject, issuer, key: `${issuer}\u0000${serial}` };
}

/** OpenSSL's verify error codes, as Node reports them, mapped to our reasons. */
function chainFailure(peer: PeerCert, code: string): Verdict {
  const subject = oneLine(peer.subject);
  const issuer = oneLine(peer.issuer);
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return reject(
        'cert_expired',
        `client certificate expired at ${isoDate(peer.x509.validTo)} (subject ${subject}, serial ${peer.serial})`,
        peer,
      );
    case 'CERT_NOT_YET_VALID':
      return reject(
        'cert_not_yet_valid',
        `client certificate is not valid before ${isoDate(peer.x509.validFrom)} (subject ${subject})`,
        peer,
      );
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'CERT_SIGNATURE_FAILURE':
    case 'CERT_UNTRUSTED':
      return reject(
        'unknown_ca',
        `client certificate is not signed by a trusted CA (subject ${subject}, issuer ${issuer})`,
        peer,
      );
    case 'INVALID_PURPOSE':
      return reject(
        'invalid_purpose',
        `client certificate is not valid for client authentication (subject ${subject})`,
        peer,
      );
    default:
      return reject(
        'invalid_cert',
        `client certificate rejected: ${code} (subject ${subject})`,
        peer,
      );
  }
}

/**
 * Everything after the chain: current CA bundle, validity window, the revocation state of the
 * whole chain under the CRL policies, and an identity that can be forwarded as headers.
 */
export function checkCertificate(
  peer: PeerCert,
  trust: TrustStore,
  policy: VerifyPolicy,
  now: number,
): Verdict {
  const issuerCa = trust.issuerOf(peer.x509);
  if (issuerCa === null) {
    return reject(
      'unknown_ca',
      `client certificate is not signed by a CA of the current bundle (issuer ${oneLine(peer.issuer)})`,
      peer,
    );
  }
  const notAfter = Date.parse(peer.x509.validTo);
  if (now > notAfter) {
    return reject(
      'cert_expired',
      `client certificate expired at ${isoDate(peer.x509.validTo)} (subject ${oneLine(peer.subject)}, serial ${peer.serial})`,
      peer,
    );
  }
  if (now < Date.parse(peer.x509.validFrom)) {
    return reject(
      'cert_not_yet_valid',
      `client certificate is not valid before ${isoDate(peer.x509.validFrom)} (subject ${oneLine(peer.subject)})`,
      peer,
    );
  }
  const revocation = checkChainRevocation(
    serialBytes(peer.serial),
    peer.serial,
    issuerCa,
    policy,
    now,
  );
  if (revocation !== null) return { ...revocation, peer };
  return identityVerdict(peer);
}

type Rejection = {
  readonly reason: RejectReason;
  readonly message: string;
  readonly outcome: 'rejected';
};

/** Walks leaf → issuer → … → root of the bundle, checking each link against its issuer's CRL. */
function checkChainRevocation(
  serial: Uint8Array,
  serialText: string,
  issuer: CaEntry,
  policy: VerifyPolicy,
  now: number,
): Rejection | null {
  let subjectSerial = serial;
  let subjectSerialText = serialText;
  let what = 'client certificate';
  for (let ca: CaEntry | null = issuer, depth = 0; ca !== null && depth < 16; depth++) {
    const revocations = ca.revocations;
    if (revocations === null) {
      if (policy.crlMissingPolicy === 'reject') {
        return rejection(
          'crl_missing',
          `no CRL is loaded for ${ca.cert.subject}, the issuer of the ${what} (--crl-missing-policy=reject)`,
        );
      }
    } else {
      if (
        revocations.nextUpdate !== null &&
        now > revocations.nextUpdate &&
        policy.crlExpiredPolicy === 'reject'
      ) {
        return rejection(
          'crl_expired',
          `the CRL of ${ca.cert.subject}, the issuer of the ${what}, expired at ${isoMs(revocations.nextUpdate)} (--crl-expired-policy=reject)`,
        );
      }
      const at = TrustStore.revokedAt(ca, subjectSerial);
      if (at >= 0) {
        const prefix =
          depth === 0 ? 'client certificate revoked' : `client certificate's issuing CA revoked`;
        return rejection(
          'revoked',
          `${prefix} (serial ${subjectSerialText}, issuer ${ca.cert.subject}, revoked ${isoMs(at)})`,
        );
      }
    }
    if (ca.cert.selfIssued) break;
    subjectSerial = ca.serialBytes;
    subjectSerialText = ca.cert.serial;
    what = `intermediate CA ${ca.cert.subject}`;
    ca = ca.parent;
  }
  return null;
}

function identityVerdict(peer: PeerCert): Verdict {
  const attributes = subjectAttributes(peer.x509.raw);
  const commonNames = attributes.filter((a) => a.oid === OID_COMMON_NAME);
  const groups = attributes.filter((a) => a.oid === OID_ORGANIZATION).map((a) => a.value);
  // Go's pkix takes the last CN when there are several; kube uses Subject.CommonName.
  const user = commonNames.at(-1)?.value ?? '';
  if (user === '') {
    return reject(
      'invalid_identity',
      `client certificate has no CommonName to use as user name (subject ${oneLine(peer.subject)})`,
      peer,
    );
  }
  if (groups.length > MAX_GROUPS) {
    return reject(
      'invalid_identity',
      `client certificate has ${groups.length} Organizations, more than ${MAX_GROUPS}`,
      peer,
    );
  }
  for (const [field, value] of [['CN', user], ...groups.map((g) => ['O', g])] as const) {
    const problem = headerValueProblem(value);
    if (problem !== null) {
      return reject(
        'invalid_identity',
        `client certificate ${field} cannot be forwarded as a header: ${problem}`,
        peer,
      );
    }
  }
  return { outcome: 'accepted', identity: { user, groups }, peer };
}

/** Header values must not contain control characters; non-ASCII travels as UTF-8 bytes. */
function headerValueProblem(value: string): string | null {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we look for
  const control = /[\u0000-\u001f\u007f]/.exec(value);
  if (control !== null)
    return `it contains the control character 0x${control[0].charCodeAt(0).toString(16).padStart(2, '0')}`;
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_IDENTITY_VALUE_BYTES)
    return `it is ${bytes} bytes long (limit ${MAX_IDENTITY_VALUE_BYTES})`;
  if (value !== value.trim()) return 'it has leading or trailing whitespace, which HTTP would drop';
  return null;
}

function rejection(reason: RejectReason, message: string): Rejection {
  return { outcome: 'rejected', reason, message };
}

function reject(reason: RejectReason, message: string, peer: PeerCert): Verdict {
  return { outcome: 'rejected', reason, message, peer };
}

/** Node prints names one attribute per line; Status messages want one line. */
function oneLine(name: string): string {
  return name.split('\n').join(', ');
}

function isoDate(opensslDate: string): string {
  return isoMs(Date.parse(opensslDate));
}

function isoMs(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}
