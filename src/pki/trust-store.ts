/**
 * The serving side of the trust inputs: a read-only view of TrustData, built once per snapshot
 * on the thread that serves, for the per-connection check (verify.ts) and the listener's
 * served chain. TrustData itself is built by trust.ts, in the trust worker.
 */
import { X509Certificate } from 'node:crypto';
import {
  type Certificate,
  type CertificateFields,
  keyUsageBits,
  parseCertificate,
} from './certificate.js';
import { revokedAt, serialBytes } from './revocation-set.js';
import { type IssuerRevocations, sameDers, type TrustData } from './trust.js';

export interface CaEntry {
  readonly cert: Certificate;
  readonly serialBytes: Uint8Array;
  /** The CA of the bundle that issued this one (null for roots and for CAs whose issuer is absent). */
  parent: CaEntry | null;
  readonly revocations: IssuerRevocations | null;
  /** No keyUsage, or one with keyCertSign (what X509_check_issued asks of an issuer). */
  readonly signsCertificates: boolean;
  /** Its public key's type (`ec`, `rsa`, …), matched against a subject's signature algorithm. */
  readonly keyType: string;
}

/** What `issuerOfPeer` reads from a client certificate. */
export interface IssuedCertificate {
  readonly der: Buffer;
  readonly fields: CertificateFields;
}

/** Key types that can make each signature algorithm (as OpenSSL's check_sig_alg_match). */
const SIGNATURE_KEY_TYPES: Readonly<Record<string, readonly string[]>> = {
  '1.2.840.10045.4.3.2': ['ec'],
  '1.2.840.10045.4.3.3': ['ec'],
  '1.2.840.10045.4.3.4': ['ec'],
  '1.2.840.113549.1.1.11': ['rsa'],
  '1.2.840.113549.1.1.12': ['rsa'],
  '1.2.840.113549.1.1.13': ['rsa'],
  '1.2.840.113549.1.1.10': ['rsa', 'rsa-pss'],
  '1.3.101.112': ['ed25519'],
};

/** keyCertSign in the first byte of a keyUsage BIT STRING. */
const KEY_CERT_SIGN = 0x04;

/** Longer issuer chains (or loops) are left to OpenSSL. */
const MAX_ISSUER_CHAIN = 8;

/** Read-only view of TrustData for the per-connection check. Built once per snapshot. */
export class TrustStore {
  private readonly bySubject = new Map<string, CaEntry[]>();
  /** Keyed by the subject Name's DER bytes (latin1), for the per-connection issuer match. */
  private readonly bySubjectDer = new Map<string, CaEntry[]>();
  readonly entries: readonly CaEntry[];
  /** The CA bundle for the TLS server's `ca` option (chain verification by OpenSSL). */
  readonly caPem: string;

  /**
   * `previous`: the store this one replaces. When the CA bundle is byte-for-byte the same (a
   * CRL-only change, the common reload), its parsed certificates are reused instead of parsed
   * again on the event loop's thread.
   */
  constructor(
    readonly data: TrustData,
    previous: TrustStore | null = null,
  ) {
    const revocationsByCa = new Map(data.issuers.map((i) => [i.caIndex, i]));
    const same = previous !== null && sameDers(previous.data.caDers, data.caDers);
    this.entries = data.caDers.map((der, i) => {
      const revocations = revocationsByCa.get(i) ?? null;
      const reused = same ? previous.entries[i] : undefined;
      if (reused !== undefined) return { ...reused, parent: null, revocations };
      const cert = parseCertificate(Buffer.from(der));
      const usage = keyUsageBits(cert.der);
      return {
        cert,
        serialBytes: serialBytes(cert.serial),
        parent: null,
        revocations,
        signsCertificates: usage === null || (usage & KEY_CERT_SIGN) !== 0,
        keyType: cert.x509.publicKey.asymmetricKeyType ?? 'unknown',
      };
    });
    this.caPem = same ? previous.caPem : this.entries.map((e) => e.cert.x509.toString()).join('');
    for (const entry of this.entries) {
      addTo(this.bySubject, entry.cert.x509.subject, entry);
      addTo(this.bySubjectDer, entry.cert.subjectDer.toString('latin1'), entry);
    }
    for (const entry of this.entries) {
      if (!entry.cert.selfIssued) entry.parent = this.issuerOf(entry.cert.x509);
    }
  }

  /**
   * The CA of this bundle that issued a client certificate. When exactly one CA matches on
   * what OpenSSL's X509_check_issued compares — the issuer Name (here its bytes), the key
   * identifiers, keyCertSign, the key type for the signature algorithm — that is the answer
   * without decoding the certificate; anything less clear-cut goes to OpenSSL's own check.
   */
  issuerOfPeer(peer: IssuedCertificate): CaEntry | null {
    const { fields } = peer;
    const keyTypes = SIGNATURE_KEY_TYPES[fields.signatureAlgorithm];
    const sameName = this.bySubjectDer.get(fields.issuerDer.toString('latin1')) ?? [];
    const matches = sameName.filter(
      (ca) =>
        ca.signsCertificates &&
        keyTypes?.includes(ca.keyType) === true &&
        (fields.authorityKeyId === null ||
          ca.cert.subjectKeyId === null ||
          ca.cert.subjectKeyId === fields.authorityKeyId),
    );
    if (matches.length === 1 && !fields.authorityKeyIdNamesIssuer) return matches[0] as CaEntry;
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(peer.der);
    } catch {
      return null;
    }
    return this.issuerOf(x509);
  }

  /** The CA of this bundle that issued `cert` (name and key identifier match), if any. */
  issuerOf(cert: {
    readonly issuer: string;
    checkIssued(other: Certificate['x509']): boolean;
  }): CaEntry | null {
    const candidates = this.bySubject.get(cert.issuer);
    if (candidates === undefined) return null;
    if (candidates.length === 1) {
      const only = candidates[0] as CaEntry;
      return cert.checkIssued(only.cert.x509) ? only : null;
    }
    return candidates.find((c) => cert.checkIssued(c.cert.x509)) ?? null;
  }

  /**
   * The certificates OpenSSL's automatic chain building adds after `cert` from this bundle
   * (ssl_add_cert_chain: its issuer, that one's issuer, … up to a self-issued CA, the anchor
   * included), when every step is unambiguous: exactly one certificate of the bundle carries
   * the issuer Name, and it issued the one below (X509_check_issued). null otherwise, and
   * for a self-issued `cert` (OpenSSL sends it alone).
   */
  issuerChainOf(cert: X509Certificate): X509Certificate[] | null {
    if (cert.issuer === cert.subject) return null;
    const chain: X509Certificate[] = [];
    for (let below = cert; chain.length < MAX_ISSUER_CHAIN; ) {
      const named = this.bySubject.get(below.issuer);
      const issuer = named?.length === 1 ? (named[0] as CaEntry) : null;
      if (issuer === null || !below.checkIssued(issuer.cert.x509)) return null;
      chain.push(issuer.cert.x509);
      if (issuer.cert.selfIssued) return chain;
      below = issuer.cert.x509;
    }
    return null;
  }

  static revokedAt(entry: CaEntry, serial: Uint8Array): number {
    return entry.revocations === null ? -1 : revokedAt(entry.revocations.set, serial);
  }
}

function addTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
