/**
 * Throwaway PKIs for the demo, the tests and the benchmarks: CAs, leaf certificates and CRLs
 * made in code, so no private key is ever committed.
 *
 * Certificates are made with @peculiar/x509; CRLs with the project's CRL encoder
 * (pki/crl-encoder.ts), as `kube-crl-proxy crl` writes them.
 */
import {
  createPrivateKey,
  type KeyObject,
  X509Certificate as NodeX509,
  randomBytes,
  randomFillSync,
  sign,
  webcrypto,
} from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { parseCertificate } from '../pki/certificate.js';
import {
  crlSignerFor,
  encodeCrl,
  encodeRevokedEntries,
  type RevokedEntry,
} from '../pki/crl-encoder.js';
import * as der from '../pki/der.js';
import { toPem } from '../pki/pem.js';
import { serialBytes } from '../pki/revocation-set.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

type CryptoKeyPair = webcrypto.CryptoKeyPair;

export type KeyAlgorithm = 'ec' | 'rsa';

export interface IssuedCert {
  readonly certPem: string;
  readonly keyPem: string;
  readonly der: Buffer;
  readonly x509: NodeX509;
  /** Uppercase hex, no leading zero bytes (Node's form). */
  readonly serial: string;
  readonly privateKey: KeyObject;
  readonly keyAlgorithm: KeyAlgorithm;
  /** Only for signing further certificates. */
  readonly cryptoKeys: CryptoKeyPair;
  readonly peculiar: x509.X509Certificate;
}

export interface NameSpec {
  readonly commonName?: string;
  readonly organizations?: readonly string[];
}

export interface CertOptions extends NameSpec {
  readonly usage?: 'client' | 'server' | 'client+server';
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Hex serial; random 16 bytes when absent. */
  readonly serial?: string;
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Certify the key of this certificate instead of a new one (a re-issue for the same key). */
  readonly keyOf?: IssuedCert;
  /** Names exactly as encoded, in place of the usual ones (tests of how names are decoded). */
  readonly names?: RawNames;
}

/** DER Names to put in a certificate byte for byte, whatever string types they use. */
export interface RawNames {
  readonly subject?: Uint8Array;
  readonly issuer?: Uint8Array;
}

export interface CaOptions extends NameSpec {
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly keyAlgorithm?: KeyAlgorithm;
  readonly serial?: string;
}

export interface RevokedSpec {
  readonly serial: string | Uint8Array;
  readonly revokedAt?: Date;
  /** RFC 5280 reason code, written as a CRL entry extension. */
  readonly reason?: number;
  /** More crlEntryExtensions (each an encoded Extension), after the reason code (tests). */
  readonly extensions?: readonly Uint8Array[];
}

export interface CrlOptions {
  readonly revoked?: Iterable<RevokedSpec>;
  readonly thisUpdate?: Date;
  /** `null` writes a CRL without nextUpdate. Default: thisUpdate + 7 days. */
  readonly nextUpdate?: Date | null;
  /** Default 1. `null` writes no cRLNumber extension. */
  readonly crlNumber?: number | bigint | null;
  /** Sign with another key (a forged CRL for tests). */
  readonly signingKey?: KeyObject;
  /** Override the issuer Name (DER), e.g. to claim to be a CA that did not sign it. */
  readonly issuerDer?: Uint8Array;
  /** Extra raw CRL extensions (DER Extension elements). */
  readonly extraExtensions?: readonly Uint8Array[];
}

const DAY = 86_400_000;
const EKU_SERVER = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT = '1.3.6.1.5.5.7.3.2';

async function generateKeys(alg: KeyAlgorithm): Promise<CryptoKeyPair> {
  const params =
    alg === 'ec'
      ? { name: 'ECDSA', namedCurve: 'P-256' }
      : {
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength: 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        };
  return (await webcrypto.subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair;
}

function signingAlgorithm(alg: KeyAlgorithm): webcrypto.EcdsaParams | webcrypto.Algorithm {
  return alg === 'ec'
    ? { name: 'ECDSA', hash: 'SHA-256' }
    : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
}

/**
 * The subject as a Name with explicit UTF8String values: peculiar's string forms parse quotes
 * and commas, and test names must arrive byte for byte (O before CN, as kube's tools write).
 */
function subjectName(spec: NameSpec): x509.Name {
  const attributes: x509.JsonNameParams = [];
  for (const o of spec.organizations ?? []) attributes.push({ O: [{ utf8String: o }] });
  if (spec.commonName !== undefined) attributes.push({ CN: [{ utf8String: spec.commonName }] });
  return new x509.Name(attributes);
}

function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x10;
  return bytes.toString('hex');
}

async function toIssued(
  cert: x509.X509Certificate,
  keys: CryptoKeyPair,
  keyAlgorithm: KeyAlgorithm,
): Promise<IssuedCert> {
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const derBytes = Buffer.from(cert.rawData);
  const node = new NodeX509(derBytes);
  return {
    certPem: toPem('CERTIFICATE', derBytes),
    keyPem: toPem('PRIVATE KEY', pkcs8),
    der: derBytes,
    x509: node,
    serial: node.serialNumber.toUpperCase(),
    privateKey: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }),
    keyAlgorithm,
    cryptoKeys: keys,
    peculiar: cert,
  };
}

export class Authority {
  private constructor(
    readonly cert: IssuedCert,
    private readonly parent: Authority | null,
  ) {}

  get certPem(): string {
    return this.cert.certPem;
  }

  /** This CA followed by its parents: the bundle a client presents beyond its leaf. */
  get chainPem(): string {
    return this.cert.certPem + (this.parent?.chainPem ?? '');
  }

  /** A root CA, or an intermediate when `parent` is given. */
  static async create(options: CaOptions = {}, parent?: Authority): Promise<Authority> {
    const keyAlgorithm = options.keyAlgorithm ?? 'ec';
    const keys = await generateKeys(keyAlgorithm);
    const now = Date.now();
    const base: {
      serialNumber: string;
      notBefore: Date;
      notAfter: Date;
      extensions: x509.Extension[];
    } = {
      serialNumber: options.serial ?? randomSerial(),
      notBefore: options.notBefore ?? new Date(now - DAY),
      notAfter: options.notAfter ?? new Date(now + 3650 * DAY),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign |
            x509.KeyUsageFlags.cRLSign |
            x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    };
    const name = subjectName({
      commonName: options.commonName ?? 'kube-crl-proxy test CA',
      ...options,
    });
    let cert: x509.X509Certificate;
    if (parent === undefined) {
      cert = await x509.X509CertificateGenerator.createSelfSigned({
        ...base,
        name,
        keys,
        signingAlgorithm: signingAlgorithm(keyAlgorithm),
      });
    } else {
      base.extensions.push(
        await x509.AuthorityKeyIdentifierExtension.create(parent.cert.cryptoKeys.publicKey),
      );
      cert = await x509.X509CertificateGenerator.create({
        ...base,
        subject: name,
        issuer: new x509.Name(parseCertificate(parent.cert.der).subjectDer),
        publicKey: keys.publicKey,
        signingKey: parent.cert.cryptoKeys.privateKey,
        signingAlgorithm: signingAlgorithm(parent.cert.keyAlgorithm),
      });
    }
    return new Authority(await toIssued(cert, keys, keyAlgorithm), parent ?? null);
  }

  async issue(options: CertOptions = {}): Promise<IssuedCert> {
    const keyAlgorithm = options.keyOf?.keyAlgorithm ?? options.keyAlgorithm ?? 'ec';
    const keys = options.keyOf?.cryptoKeys ?? (await generateKeys(keyAlgorithm));
    const usage = options.usage ?? 'client';
    const ekus: string[] = [];
    if (usage.includes('server')) ekus.push(EKU_SERVER);
    if (usage.includes('client')) ekus.push(EKU_CLIENT);
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(ekus),
      await x509.AuthorityKeyIdentifierExtension.create(this.cert.cryptoKeys.publicKey),
    ];
    const sans = [
      ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ];
    if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: options.serial ?? randomSerial(),
      subject: subjectName(options),
      issuer: new x509.Name(parseCertificate(this.cert.der).subjectDer),
      notBefore: options.notBefore ?? new Date(now - DAY),
      notAfter: options.notAfter ?? new Date(now + 365 * DAY),
      publicKey: keys.publicKey,
      signingKey: this.cert.cryptoKeys.privateKey,
      signingAlgorithm: signingAlgorithm(this.cert.keyAlgorithm),
      extensions,
    });
    if (options.names === undefined) return toIssued(cert, keys, keyAlgorithm);
    const der = this.resign(Buffer.from(cert.rawData), options.names);
    return toIssued(new x509.X509Certificate(der), keys, keyAlgorithm);
  }

  /**
   * `certDer` (signed by this CA) with its subject and/or issuer Name replaced by `names` and
   * signed again. @peculiar/x509 re-encodes the Names it is given, so strings of every type
   * and every byte value go in here instead.
   */
  resign(certDer: Buffer, names: RawNames): Buffer {
    const cert = der.readTlv(certDer, 0);
    const [tbs, algorithm] = der.children(certDer, cert);
    if (tbs === undefined || algorithm === undefined) throw new Error('not a certificate');
    const fields = der.children(certDer, tbs);
    // [0] version, serialNumber, signature, issuer, validity, subject, …
    const first = fields[0]?.tag === der.contextTag(0) ? 1 : 0;
    const replaced = fields.map((field, i) => {
      if (i === first + 2 && names.issuer !== undefined) return names.issuer;
      if (i === first + 4 && names.subject !== undefined) return names.subject;
      return der.whole(certDer, field);
    });
    const signed = der.seq(...replaced);
    const signature = sign('sha256', signed, this.cert.privateKey);
    return der.seq(signed, der.whole(certDer, algorithm), der.bitString(signature));
  }

  /** A DER CRL signed by this CA (or by `signingKey`). */
  crl(options: CrlOptions = {}): Buffer {
    const thisUpdate = options.thisUpdate ?? new Date(Date.now() - 60_000);
    const nextUpdate =
      options.nextUpdate === undefined
        ? new Date(thisUpdate.getTime() + 7 * DAY)
        : options.nextUpdate;
    const ski = this.cert.peculiar.getExtension(x509.SubjectKeyIdentifierExtension);
    const crlNumber = options.crlNumber === undefined ? 1 : options.crlNumber;
    const signer = crlSignerFor(this.cert.privateKey);
    return encodeCrl(
      {
        issuerDer: options.issuerDer ?? parseCertificate(this.cert.der).subjectDer,
        thisUpdate: thisUpdate.getTime(),
        nextUpdate: nextUpdate === null ? null : nextUpdate.getTime(),
        crlNumber: crlNumber === null ? null : BigInt(crlNumber),
        authorityKeyId: ski === null ? null : Buffer.from(ski.keyId, 'hex'),
        revoked: [revokedEntries(options.revoked ?? [], thisUpdate.getTime())],
        extraExtensions: options.extraExtensions ?? [],
      },
      { ...signer, key: options.signingKey ?? signer.key },
    );
  }
}

function revokedEntries(revoked: Iterable<RevokedSpec>, defaultTime: number): Buffer {
  function* entries(): Generator<RevokedEntry> {
    for (const spec of revoked) {
      yield {
        serial: typeof spec.serial === 'string' ? serialBytes(spec.serial) : spec.serial,
        revokedAt: spec.revokedAt?.getTime() ?? defaultTime,
        reason: spec.reason,
        extensions: spec.extensions,
      };
    }
  }
  return encodeRevokedEntries(entries());
}

export function crlPem(crlDer: Uint8Array): string {
  return toPem('X509 CRL', crlDer);
}

/**
 * Random 16-byte serials, as Go's crypto/x509 (kubeadm) and most CAs issue them, as revoked
 * entries: the realistic shape of a big CRL (unsorted, wide). The first byte stays below 0x80
 * so every serial is a positive INTEGER of the same length.
 */
export function* randomSerials(count: number): Generator<RevokedSpec> {
  const at = new Date(Date.now() - DAY);
  const bytes = randomBytes(16 * Math.min(count, 65_536));
  for (let i = 0; i < count; i++) {
    const at16 = (i % 65_536) * 16;
    if (i > 0 && at16 === 0) randomFillSync(bytes);
    const first = ((bytes[at16] as number) & 0x7f) | 0x10;
    yield {
      serial: first.toString(16) + bytes.subarray(at16 + 1, at16 + 16).toString('hex'),
      revokedAt: at,
    };
  }
}

/** Sequential serials 1..count as revoked entries (big CRLs for tests and benchmarks). */
export function* sequentialSerials(count: number, first = 1): Generator<RevokedSpec> {
  const at = new Date(Date.now() - DAY);
  for (let i = 0; i < count; i++) {
    yield { serial: (first + i).toString(16), revokedAt: at };
  }
}
