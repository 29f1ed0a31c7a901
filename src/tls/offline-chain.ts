/**
 * The chain check OpenSSL makes during the client's handshake, done without a handshake, for
 * `check-cert`. Its answer is an OpenSSL verify error code as Node reports it in
 * `socket.authorizationError` (null when the chain verifies), so check-cert can hand it to the
 * proxy's own verifyPeer and print exactly the reason and message a client would get.
 *
 * It follows OpenSSL 3's order: build the chain (the CERT file's extra certificates are the
 * untrusted intermediates a client would send, the CA bundle is the trust store), check the
 * extensions and the purpose (TLS client), then signatures and validity from the anchor down
 * to the leaf. Node's verify callback lets OpenSSL go on after every error, so the error a
 * server sees is the last one met (an expired certificate of an unknown CA reads as
 * CERT_HAS_EXPIRED); this module reports the last one too.
 */
import type { X509Certificate } from 'node:crypto';
import { extendedKeyUsages, keyUsageBits } from '../pki/certificate.js';

const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EKU_ANY = '2.5.29.37.0';

/** keyUsage bits, as the first content byte of the BIT STRING numbers them. */
const KU_DIGITAL_SIGNATURE = 0x80;
const KU_KEY_AGREEMENT = 0x08;
const KU_KEY_CERT_SIGN = 0x04;

/** OpenSSL's default verify depth is 100; a real client chain is 2 or 3 long. */
const MAX_CHAIN_LENGTH = 32;

export interface OfflineChainInput {
  readonly leaf: X509Certificate;
  /** Certificates the client would send after its leaf (intermediates). */
  readonly untrusted: readonly X509Certificate[];
  /** The CA bundle the TLS listener trusts (--client-ca-file). */
  readonly trusted: readonly X509Certificate[];
  readonly now: number;
}

export interface OfflineChainResult {
  /** Leaf first, as far as issuers were found. */
  readonly chain: readonly X509Certificate[];
  /** OpenSSL verify error code (e.g. CERT_HAS_EXPIRED), or null when the chain verifies. */
  readonly error: string | null;
}

export function verifyChainOffline(input: OfflineChainInput): OfflineChainResult {
  const errors: string[] = [];
  const chain = buildChain(input, errors);
  checkExtensions(chain, errors);
  checkSignaturesAndTimes(chain, input, errors);
  return { chain, error: errors.at(-1) ?? null };
}

function buildChain(input: OfflineChainInput, errors: string[]): X509Certificate[] {
  const chain = [input.leaf];
  while (chain.length < MAX_CHAIN_LENGTH) {
    const current = chain.at(-1) as X509Certificate;
    if (isSelfIssued(current)) {
      if (!contains(input.trusted, current)) {
        errors.push(
          chain.length === 1 ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'SELF_SIGNED_CERT_IN_CHAIN',
        );
      }
      return chain;
    }
    const issuer =
      findIssuer(current, input.trusted, input.now) ??
      findIssuer(current, input.untrusted, input.now);
    if (issuer === null) {
      errors.push(missingIssuerError(chain, input.trusted));
      return chain;
    }
    chain.push(issuer);
  }
  errors.push('CERT_CHAIN_TOO_LONG');
  return chain;
}

function missingIssuerError(
  chain: readonly X509Certificate[],
  trusted: readonly X509Certificate[],
): string {
  if (chain.length === 1) return 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
  // A trusted CA whose own issuer is absent: OpenSSL (without partial chains) cannot anchor it.
  return contains(trusted, chain.at(-1) as X509Certificate)
    ? 'UNABLE_TO_GET_ISSUER_CERT'
    : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY';
}

/** Like OpenSSL's lookup: name and key identifier match; a currently valid issuer is preferred. */
function findIssuer(
  cert: X509Certificate,
  candidates: readonly X509Certificate[],
  now: number,
): X509Certificate | null {
  const issuers = candidates.filter((c) => !sameCert(c, cert) && cert.checkIssued(c));
  return issuers.find((c) => timeError(c, now) === null) ?? issuers[0] ?? null;
}

/** The purpose checks of OpenSSL's check_chain_extensions for a TLS client certificate. */
function checkExtensions(chain: readonly X509Certificate[], errors: string[]): void {
  chain.forEach((cert, depth) => {
    const usage = keyUsageBits(cert.raw);
    if (depth > 0 && (!cert.ca || (usage !== null && (usage & KU_KEY_CERT_SIGN) === 0))) {
      errors.push('INVALID_CA');
    }
    const ekus = extendedKeyUsages(cert.raw);
    if (ekus !== null && !ekus.includes(EKU_CLIENT_AUTH) && !ekus.includes(EKU_ANY)) {
      errors.push('INVALID_PURPOSE');
    } else if (
      depth === 0 &&
      usage !== null &&
      (usage & (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT)) === 0
    ) {
      errors.push('INVALID_PURPOSE');
    }
  });
}

/**
 * OpenSSL's internal_verify: from the top of the chain down to the leaf, each signature under
 * its issuer's key (a self-signed anchor's own signature is not checked), then its validity.
 */
function checkSignaturesAndTimes(
  chain: readonly X509Certificate[],
  input: OfflineChainInput,
  errors: string[],
): void {
  for (let depth = chain.length - 1; depth >= 0; depth--) {
    const cert = chain[depth] as X509Certificate;
    const issuer = chain[depth + 1];
    if (issuer !== undefined && !cert.verify(issuer.publicKey)) {
      errors.push('CERT_SIGNATURE_FAILURE');
    }
    const problem = timeError(cert, input.now);
    if (problem !== null) errors.push(problem);
  }
}

function timeError(cert: X509Certificate, now: number): string | null {
  if (now < Date.parse(cert.validFrom)) return 'CERT_NOT_YET_VALID';
  if (now > Date.parse(cert.validTo)) return 'CERT_HAS_EXPIRED';
  return null;
}

function isSelfIssued(cert: X509Certificate): boolean {
  return cert.checkIssued(cert);
}

function sameCert(a: X509Certificate, b: X509Certificate): boolean {
  return a.raw.equals(b.raw);
}

function contains(list: readonly X509Certificate[], cert: X509Certificate): boolean {
  return list.some((c) => sameCert(c, cert));
}
