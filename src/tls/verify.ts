/**
 * The per-connection decision: who is this client, and may it reach the apiserver?
 *
 * OpenSSL has verified the chain against the client CA bundle (socket.authorized); everything
 * else is decided here, on every connection, resumed TLS sessions included: the issuer is a
 * CA of the current snapshot, the certificate is inside its validity window, no CRL of its
 * chain revokes it, and no entry of the deny file names it. The same function re-checks live
 * connections after each snapshot swap.
 */

import type { Policy } from '../config/config.js';
import { type CertificateFields, readCertificateFields } from '../pki/certificate.js';
import { type DenyList, deniedMessage } from '../pki/deny-list.js';
import { OID_COMMON_NAME, OID_ORGANIZATION } from '../pki/names.js';
import { type CaEntry, TrustStore } from '../pki/trust-store.js';
import { isoTime } from '../time.js';

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
  | 'invalid_identity'
  | 'denied';

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
  'denied',
];

/**
 * The user the apiserver will see: kube's x509 rule, CN → user, every O → a group, in order.
 * Each is a Go string as kube-apiserver's crypto/x509 decodes it: bytes, one char per byte
 * (latin1), written into the identity headers as they are (names.ts).
 */
export interface Identity {
  readonly user: string;
  readonly groups: readonly string[];
}

/**
 * A client certificate as the check reads it. Immutable and shared by every connection that
 * presents the same certificate (see `peerOf`).
 */
export interface PeerCert {
  readonly der: Buffer;
  readonly fields: CertificateFields;
  /** Uppercase hex. */
  readonly serial: string;
  /** One line, `CN=alice, O=dev`. */
  readonly subject: string;
  readonly issuer: string;
  /** Groups the connections of one certificate in the registry: its DER, one char per byte. */
  readonly key: string;
  /** The identity it would be forwarded as, or why it cannot be (it depends on nothing else). */
  readonly identity: Identity | { readonly problem: string };
}

/** What the TLS layer knows once a handshake is done. */
export interface Handshake {
  /** DER of the client's certificate; null when it sent none. */
  readonly peerCertificate: Buffer | null;
  /** OpenSSL's chain result against the client CA bundle. */
  readonly authorized: boolean;
  /** OpenSSL's verify error code when not authorized, e.g. `CERT_HAS_EXPIRED`. */
  readonly authorizationError: string | null;
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

/** Decides for a freshly handshaken TLS connection. */
export function verifyPeer(
  handshake: Handshake,
  trust: TrustStore,
  deny: DenyList,
  policy: VerifyPolicy,
  now: number,
): Verdict {
  const der = handshake.peerCertificate;
  if (der === null) {
    return policy.requireClientCert
      ? {
          outcome: 'rejected',
          reason: 'no_cert',
          message: 'a client certificate is required',
          peer: null,
        }
      : { outcome: 'anonymous' };
  }
  let peer: PeerCert;
  try {
    peer = peerOf(der);
  } catch (err) {
    return {
      outcome: 'rejected',
      reason: 'invalid_cert',
      message: `client certificate cannot be read: ${err instanceof Error ? err.message : String(err)}`,
      peer: null,
    };
  }
  // Go's crypto/tls parses the client's certificates before it verifies anything, and a name
  // its parser refuses fails the handshake whatever the chain (parser.go, parseName).
  if (peer.fields.invalidName !== null) return identityVerdict(peer);
  if (!handshake.authorized)
    return chainFailure(peer, handshake.authorizationError ?? 'UNKNOWN', now);
  return checkCertificate(peer, trust, deny, policy, now);
}

/**
 * Parsed certificates by DER: clients reconnect with the same few certificates, so each is
 * read once. Bounded; the oldest entry goes first. The key is the whole DER, never a part of it.
 */
const PEER_CACHE_LIMIT = 4096;
const peerCache = new Map<string, PeerCert>();

/** The certificate as the check reads it; throws DerError for what cannot be read. */
export function peerOf(der: Buffer): PeerCert {
  const key = der.toString('latin1');
  const cached = peerCache.get(key);
  if (cached !== undefined) return cached;
  const fields = readCertificateFields(der);
  const peer: PeerCert = {
    der,
    fields,
    serial: fields.serial,
    subject: fields.subject,
    issuer: fields.issuer,
    key,
    identity: identityOf(fields),
  };
  if (peerCache.size >= PEER_CACHE_LIMIT) peerCache.delete(peerCache.keys().next().value as string);
  peerCache.set(key, peer);
  return peer;
}

/** OpenSSL's verify error codes, as Node reports them, mapped to our reasons. */
function chainFailure(peer: PeerCert, code: string, now: number): Verdict {
  const { subject, issuer } = peer;
  // OpenSSL reports these for any certificate of the chain: when the client's own is within
  // its validity, it is an issuing CA's.
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return reject(
        'cert_expired',
        now > peer.fields.notAfter
          ? `client certificate expired at ${isoTime(peer.fields.notAfter)} (subject ${subject}, serial ${peer.serial})`
          : `a CA certificate of the client certificate's chain has expired (subject ${subject}, issuer ${issuer})`,
        peer,
      );
    case 'CERT_NOT_YET_VALID':
      return reject(
        'cert_not_yet_valid',
        now < peer.fields.notBefore
          ? `client certificate is not valid before ${isoTime(peer.fields.notBefore)} (subject ${subject})`
          : `a CA certificate of the client certificate's chain is not valid yet (subject ${subject}, issuer ${issuer})`,
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
 * whole chain under the CRL policies, the deny list, and an identity that can be forwarded as
 * headers. A revoked certificate is refused as revoked whatever the deny list says.
 */
export function checkCertificate(
  peer: PeerCert,
  trust: TrustStore,
  deny: DenyList,
  policy: VerifyPolicy,
  now: number,
): Verdict {
  const issuerCa = trust.issuerOfPeer(peer);
  if (issuerCa === null) {
    return reject(
      'unknown_ca',
      `client certificate is not signed by a CA of the current bundle (issuer ${peer.issuer})`,
      peer,
    );
  }
  if (now > peer.fields.notAfter) {
    return reject(
      'cert_expired',
      `client certificate expired at ${isoTime(peer.fields.notAfter)} (subject ${peer.subject}, serial ${peer.serial})`,
      peer,
    );
  }
  if (now < peer.fields.notBefore) {
    return reject(
      'cert_not_yet_valid',
      `client certificate is not valid before ${isoTime(peer.fields.notBefore)} (subject ${peer.subject})`,
      peer,
    );
  }
  const revocation = checkChainRevocation(
    peer.fields.serialBytes,
    peer.serial,
    issuerCa,
    policy,
    now,
  );
  if (revocation !== null) return { ...revocation, peer };
  const denied = deny.match(peer, now);
  if (denied !== null) return reject('denied', deniedMessage(denied), peer);
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
          `the CRL of ${ca.cert.subject}, the issuer of the ${what}, expired at ${isoTime(revocations.nextUpdate)} (--crl-expired-policy=reject)`,
        );
      }
      const at = TrustStore.revokedAt(ca, subjectSerial);
      if (at >= 0) {
        const prefix =
          depth === 0 ? 'client certificate revoked' : `client certificate's issuing CA revoked`;
        return rejection(
          'revoked',
          `${prefix} (serial ${subjectSerialText}, issuer ${ca.cert.subject}, revoked ${isoTime(at)})`,
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
  if ('problem' in peer.identity) return reject('invalid_identity', peer.identity.problem, peer);
  return { outcome: 'accepted', identity: peer.identity, peer };
}

function identityOf(fields: CertificateFields): Identity | { readonly problem: string } {
  if (fields.invalidName !== null) {
    return {
      problem: `client certificate ${fields.invalidName.message}, which kube-apiserver refuses (subject ${fields.subject}, issuer ${fields.issuer})`,
    };
  }
  const attributes = fields.subjectAttributes;
  const commonNames = attributes.filter((a) => a.oid === OID_COMMON_NAME);
  const groups = attributes.filter((a) => a.oid === OID_ORGANIZATION).map((a) => a.value);
  // Go's pkix takes the last CN when there are several; kube uses Subject.CommonName.
  const user = commonNames.at(-1)?.value ?? '';
  if (user === '') {
    return {
      problem: `client certificate has no CommonName to use as user name (subject ${fields.subject})`,
    };
  }
  if (groups.length > MAX_GROUPS) {
    return {
      problem: `client certificate has ${groups.length} Organizations, more than ${MAX_GROUPS}`,
    };
  }
  for (const [field, value] of [['CN', user], ...groups.map((g) => ['O', g])] as const) {
    const problem = headerValueProblem(value);
    if (problem !== null) {
      return { problem: `client certificate ${field} cannot be forwarded as a header: ${problem}` };
    }
  }
  return { user, groups };
}

/**
 * A value (one char per byte) must make one header line the apiserver reads back unchanged: no
 * control bytes, and no leading or trailing space, which Go's textproto trims. Bytes above
 * 0x7F are obs-text, which Go accepts in a value (net/textproto, validHeaderValueByte).
 */
function headerValueProblem(value: string): string | null {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we look for
  const control = /[\u0000-\u001f\u007f]/.exec(value);
  if (control !== null)
    return `it contains the control character 0x${control[0].charCodeAt(0).toString(16).padStart(2, '0')}`;
  if (value.length > MAX_IDENTITY_VALUE_BYTES)
    return `it is ${value.length} bytes long (limit ${MAX_IDENTITY_VALUE_BYTES})`;
  if (value.startsWith(' ') || value.endsWith(' '))
    return 'it has leading or trailing whitespace, which HTTP would drop';
  return null;
}

function rejection(reason: RejectReason, message: string): Rejection {
  return { outcome: 'rejected', reason, message };
}

function reject(reason: RejectReason, message: string, peer: PeerCert): Verdict {
  return { outcome: 'rejected', reason, message, peer };
}
