/**
 * The trust inputs — the client CA bundle and the CRLs — turned into TrustData: plain,
 * transferable data (CA DERs and one RevocationSet per CA) built in a worker thread by
 * `loadTrustData`, and read on the serving path through a TrustStore.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { errorMessage, InputError } from '../errors.js';
import {
  type Certificate,
  type CertificateFields,
  keyUsageBits,
  parseCertificate,
} from './certificate.js';
import {
  CrlError,
  type ParsedCrl,
  parseCrl,
  type RevokedEntries,
  verifyCrlSignature,
} from './crl.js';
import { DerError } from './der.js';
import { blocksIn, expandCrlPaths, readInput } from './files.js';
import { PemError } from './pem.js';
import {
  buildRevocationSet,
  type RevocationSet,
  revokedAt,
  serialBytes,
} from './revocation-set.js';

/** A CRL whose thisUpdate is further ahead than this is refused (clock skew allowance). */
const MAX_FUTURE_SKEW_MS = 5 * 60_000;

export interface CrlSummary {
  readonly file: string;
  readonly issuer: string;
  readonly crlNumber: string | null;
  readonly thisUpdate: number;
  readonly nextUpdate: number | null;
  readonly entries: number;
}

/** Revocation state of one CA: the union of its CRLs. */
export interface IssuerRevocations {
  readonly caIndex: number;
  readonly set: RevocationSet;
  readonly thisUpdate: number;
  /** The latest nextUpdate among its CRLs; null when a CRL has none (never stale). */
  readonly nextUpdate: number | null;
  readonly crlNumber: string | null;
  readonly files: readonly string[];
}

export interface TrustData {
  readonly clientCaFile: string;
  /** DER of every CA certificate of --client-ca-file, in file order. */
  readonly caDers: readonly Uint8Array[];
  /** Subject of each CA, as in logs and the crl_entries metric (parsed once, in the worker). */
  readonly caSubjects: readonly string[];
  /** notAfter of each CA (ms), for the expiry metric. */
  readonly caNotAfter: readonly number[];
  readonly issuers: readonly IssuerRevocations[];
  readonly crls: readonly CrlSummary[];
  /** Things an operator should know that do not stop the load. */
  readonly warnings: readonly string[];
  /** SHA-256 of the bytes this was read from (readTrustFiles). */
  readonly inputDigest: string;
}

/** What a reload needs from the snapshot in force (not its serial buffers). */
export interface TrustBaseline {
  readonly caDers: readonly Uint8Array[];
  readonly issuers: readonly Pick<
    IssuerRevocations,
    'caIndex' | 'crlNumber' | 'thisUpdate' | 'files'
  >[];
  readonly inputDigest: string;
}

export function baselineOf(data: TrustData): TrustBaseline {
  return {
    inputDigest: data.inputDigest,
    caDers: data.caDers,
    issuers: data.issuers.map(({ caIndex, crlNumber, thisUpdate, files }) => ({
      caIndex,
      crlNumber,
      thisUpdate,
      files,
    })),
  };
}

export interface TrustInputs {
  readonly clientCaFile: string;
  readonly crlFiles: readonly string[];
  readonly crlMissingPolicy: 'reject' | 'allow';
}

const CLIENT_CA = 'client-ca-file';
const CRL_FILE = 'crl-file';

/**
 * The result of reading the trust inputs against the snapshot in force. Each input stands
 * alone: a CA bundle that cannot be used leaves the bundle in force in place; a CRL file that
 * cannot be used leaves the revocations in force of the CAs it fed (`held`), while every other
 * CA takes its new CRLs. So no single bad file holds back another file's change.
 */
export interface TrustLoad {
  /** null only when there is no usable CA bundle and none in force (a first load). */
  readonly data: TrustData | null;
  /** Everything refused, one InputError each (all of them, not the first). */
  readonly problems: readonly InputError[];
  /**
   * Indexes into data.caDers of the CAs whose revocations in force must stay (the caller holds
   * the serial buffers of the snapshot in force; see `withHeldRevocations`).
   */
  readonly held: readonly number[];
}

/**
 * Reads and verifies every trust input and throws the first problem (InputError, naming the
 * flag and file): the first load, check-cert, and the tools, where nothing is in force to fall
 * back on. `previous` guards against rollback.
 */
export function loadTrustData(
  inputs: TrustInputs,
  previous: TrustBaseline | null,
  now = Date.now(),
  files = readTrustFiles(inputs),
): TrustData {
  const load = evaluateTrust(inputs, previous, now, files);
  const [problem] = load.problems;
  if (problem !== undefined) throw problem;
  if (load.data === null) throw new InputError(CLIENT_CA, inputs.clientCaFile, 'no CA bundle');
  return load.data;
}

/**
 * Reads and verifies every trust input, recording every problem instead of stopping at the
 * first, and falling back on `previous` (the snapshot in force) input by input.
 */
export function evaluateTrust(
  inputs: TrustInputs,
  previous: TrustBaseline | null,
  now = Date.now(),
  files = readTrustFiles(inputs),
): TrustLoad {
  const problems: InputError[] = [...files.problems];
  const warnings: string[] = [];
  let cas =
    files.caBundle === null
      ? null
      : tried(problems, () =>
          readCaBundle(inputs.clientCaFile, files.caBundle as Buffer, warnings),
        );
  if (cas === null) {
    if (previous === null) return { data: null, problems, held: [] };
    cas = previous.caDers.map((der) => parseCertificate(Buffer.from(der)));
  }
  const perCa = new Map<number, { crls: ParsedCrl[]; files: string[] }>();
  const summaries: CrlSummary[] = [];
  const refusedFiles = new Set(files.unreadable);
  for (const { file, bytes } of files.crls) {
    const crls = tried(problems, () => readCrlFile(file, bytes, cas, now, warnings));
    if (crls === null) {
      refusedFiles.add(file);
      continue;
    }
    for (const { crl, caIndex } of crls) {
      const group = perCa.get(caIndex) ?? { crls: [], files: [] };
      group.crls.push(crl);
      if (!group.files.includes(file)) group.files.push(file);
      perCa.set(caIndex, group);
      summaries.push({
        file,
        issuer: crl.issuer,
        crlNumber: crl.crlNumber,
        thisUpdate: crl.thisUpdate,
        nextUpdate: crl.nextUpdate,
        entries: crl.entries.count,
      });
    }
  }

  const before = new Map<string, TrustBaseline['issuers'][number]>();
  for (const issuer of previous?.issuers ?? []) {
    const der = previous?.caDers[issuer.caIndex];
    if (der !== undefined) before.set(caKey(der), issuer);
  }
  const issuers: IssuerRevocations[] = [];
  const held: number[] = [];
  cas.forEach((ca, caIndex) => {
    const inForce = before.get(caKey(ca.der));
    if (inForce?.files.some((f) => refusedFiles.has(f))) {
      held.push(caIndex);
      return;
    }
    const group = perCa.get(caIndex);
    if (group === undefined) {
      if (inForce !== undefined) {
        problems.push(
          new InputError(
            CRL_FILE,
            null,
            `no CRL for CA "${ca.subject}" any more; the one in force stays (to revoke, publish a CRL; a CA's CRL is removed by removing the CA from --client-ca-file)`,
          ),
        );
        held.push(caIndex);
      } else if (inputs.crlMissingPolicy === 'reject') {
        problems.push(
          new InputError(
            CRL_FILE,
            null,
            `no CRL for CA "${ca.subject}" of --client-ca-file, so its certificates are refused (--crl-missing-policy=reject); add its CRL or set --crl-missing-policy=allow`,
          ),
        );
      } else {
        warnings.push(
          `no CRL for CA "${ca.subject}": its certificates are accepted without a revocation check (--crl-missing-policy=allow)`,
        );
      }
      return;
    }
    const merged = mergeIssuer(caIndex, group.crls, group.files);
    const rollback = inForce === undefined ? null : rollbackProblem(inForce, ca, merged);
    if (rollback !== null) {
      problems.push(rollback);
      held.push(caIndex);
      return;
    }
    issuers.push(merged);
  });

  return {
    data: {
      clientCaFile: inputs.clientCaFile,
      caDers: cas.map((ca) => ca.der),
      caSubjects: cas.map((ca) => ca.subject),
      caNotAfter: cas.map((ca) => ca.notAfter),
      issuers,
      crls: summaries,
      warnings,
      inputDigest: files.digest,
    },
    problems,
    held,
  };
}

/**
 * `load.data` with the revocations in force of its held CAs taken from `inForce` (matched by
 * the CA certificate's bytes), as the serving side needs it.
 */
export function withHeldRevocations(
  { data, held }: Pick<TrustLoad, 'data' | 'held'>,
  inForce: TrustData | null,
): TrustData | null {
  if (data === null || held.length === 0 || inForce === null) return data;
  const byCa = new Map<string, IssuerRevocations>();
  for (const issuer of inForce.issuers) {
    const der = inForce.caDers[issuer.caIndex];
    if (der !== undefined) byCa.set(caKey(der), issuer);
  }
  const kept: IssuerRevocations[] = [];
  for (const caIndex of held) {
    const issuer = byCa.get(caKey(data.caDers[caIndex] as Uint8Array));
    if (issuer !== undefined) kept.push({ ...issuer, caIndex });
  }
  const keptFiles = new Set(kept.flatMap((i) => i.files));
  const loadedFiles = new Set(data.crls.map((c) => c.file));
  return {
    ...data,
    issuers: [...data.issuers, ...kept].sort((a, b) => a.caIndex - b.caIndex),
    crls: [
      ...data.crls,
      ...inForce.crls.filter((c) => keptFiles.has(c.file) && !loadedFiles.has(c.file)),
    ],
  };
}

function caKey(der: Uint8Array): string {
  return Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
}

/** `read()`'s value, or null with its InputError recorded in `problems`. */
function tried<T>(problems: InputError[], read: () => T): T | null {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    problems.push(err);
    return null;
  }
}

/** Every CRL of one file with the CA that signed it; any problem refuses the whole file. */
function readCrlFile(
  file: string,
  bytes: Buffer,
  cas: readonly Certificate[],
  now: number,
  warnings: string[],
): { crl: ParsedCrl; caIndex: number }[] {
  return blocksIn(CRL_FILE, file, bytes, ['X509 CRL'], 'CRL (PEM "X509 CRL" block or DER)').map(
    (block) => {
      const crl = parseCrlOf(file, block.der);
      const caIndex = findSigner(crl, cas, file);
      if (crl.thisUpdate > now + MAX_FUTURE_SKEW_MS) {
        throw new InputError(
          CRL_FILE,
          file,
          `CRL of "${crl.issuer}" is not valid yet (thisUpdate ${iso(crl.thisUpdate)})`,
        );
      }
      if (crl.nextUpdate !== null && crl.nextUpdate < now)
        warnings.push(expiryWarning(file, crl.issuer, crl.nextUpdate));
      return { crl, caIndex };
    },
  );
}

/** The trust inputs as read from disk, each file once, and the digest of those bytes. */
export interface TrustFiles {
  /** null when it could not be read (the problem is in `problems`). */
  readonly caBundle: Buffer | null;
  readonly crls: ReadonlyArray<{ readonly file: string; readonly bytes: Buffer }>;
  /** CRL files (or named CRL paths) that could not be read. */
  readonly unreadable: readonly string[];
  readonly problems: readonly InputError[];
  /**
   * SHA-256 of the policy, then of each file's path, length and bytes (the CA bundle, then each
   * CRL file), or of why it could not be read: two loads with the same digest read the same
   * bytes from the same files.
   */
  readonly digest: string;
}

/**
 * Reads every trust input (all of them are in memory until the load is done). When the digest
 * is that of the data in force, a load would find exactly that data again: its checks depend
 * on the bytes, and on the time only for CRLs not valid yet, which cannot become so later. So
 * the reload that follows one change twice (a SIGHUP and the watcher's event) costs a read and
 * a hash, not a parse.
 */
export function readTrustFiles(inputs: TrustInputs): TrustFiles {
  const digest = createHash('sha256').update(
    `kube-crl-proxy inputs v2\ncrl-missing-policy=${inputs.crlMissingPolicy}\n`,
  );
  const problems: InputError[] = [];
  const unreadable: string[] = [];
  const read = (flag: string, file: string): Buffer | null => {
    try {
      const bytes = readInput(flag, file);
      digest.update(`${Buffer.byteLength(file)}:${file}:${bytes.length}:`).update(bytes);
      return bytes;
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      digest.update(`${Buffer.byteLength(file)}:${file}:!${err.problem}\n`);
      problems.push(err);
      return null;
    }
  };
  const caBundle = read(CLIENT_CA, inputs.clientCaFile);
  const listing = expandCrlPaths(CRL_FILE, inputs.crlFiles);
  for (const failure of listing.failures) {
    digest.update(`${failure.file}:!${failure.problem}\n`);
    problems.push(failure);
    unreadable.push(failure.file as string);
  }
  const crls: { file: string; bytes: Buffer }[] = [];
  for (const file of listing.files) {
    const bytes = read(CRL_FILE, file);
    if (bytes === null) unreadable.push(file);
    else crls.push({ file, bytes });
  }
  return { caBundle, crls, unreadable, problems, digest: digest.digest('hex') };
}

function expiryWarning(file: string, issuer: string, nextUpdate: number): string {
  return `${file}: CRL of "${issuer}" expired at ${iso(nextUpdate)} (--crl-expired-policy applies)`;
}

/** `data`'s warnings as a load at `now` would give them: CRLs expired since are added. */
export function warningsAt(data: TrustData, now: number): readonly string[] {
  const added: string[] = [];
  for (const crl of data.crls) {
    if (crl.nextUpdate === null || crl.nextUpdate >= now) continue;
    const warning = expiryWarning(crl.file, crl.issuer, crl.nextUpdate);
    if (!data.warnings.includes(warning)) added.push(warning);
  }
  return added.length === 0 ? data.warnings : [...data.warnings, ...added];
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

function readCaBundle(file: string, bytes: Buffer, warnings: string[]): Certificate[] {
  const cas: Certificate[] = [];
  for (const block of blocksIn(
    CLIENT_CA,
    file,
    bytes,
    ['CERTIFICATE', 'TRUSTED CERTIFICATE'],
    'certificate',
  )) {
    let cert: Certificate;
    try {
      cert = parseCertificate(block.der);
    } catch (err) {
      throw new InputError(CLIENT_CA, file, `unreadable certificate: ${errorMessage(err)}`);
    }
    if (cert.isCA) cas.push(cert);
    else
      warnings.push(
        `${file}: "${cert.subject}" is not a CA certificate (basicConstraints CA:FALSE) and is ignored`,
      );
  }
  if (cas.length === 0) {
    throw new InputError(CLIENT_CA, file, 'contains no CA certificate (basicConstraints CA:TRUE)');
  }
  return cas;
}

function parseCrlOf(file: string, der: Buffer): ParsedCrl {
  try {
    return parseCrl(der);
  } catch (err) {
    if (err instanceof DerError || err instanceof CrlError || err instanceof PemError) {
      throw new InputError(CRL_FILE, file, `invalid CRL: ${err.message}`);
    }
    throw err;
  }
}

/** The CA of the bundle that signed `crl`: same subject bytes, and the signature verifies. */
function findSigner(crl: ParsedCrl, cas: readonly Certificate[], file: string): number {
  const issuerDer = Buffer.from(crl.issuerDer);
  const candidates = cas.flatMap((ca, i) => (ca.subjectDer.equals(issuerDer) ? [i] : []));
  if (candidates.length === 0) {
    throw new InputError(
      CRL_FILE,
      file,
      `CRL issuer "${crl.issuer}" is not a CA of --client-ca-file`,
    );
  }
  for (const i of candidates) {
    const ca = cas[i] as Certificate;
    if (
      crl.authorityKeyId !== null &&
      ca.subjectKeyId !== null &&
      crl.authorityKeyId !== ca.subjectKeyId
    )
      continue;
    try {
      if (verifyCrlSignature(crl, ca.x509.publicKey)) return i;
    } catch (err) {
      throw new InputError(CRL_FILE, file, errorMessage(err));
    }
  }
  throw new InputError(
    CRL_FILE,
    file,
    `CRL signature of "${crl.issuer}" does not verify against any CA of --client-ca-file`,
  );
}

function mergeIssuer(
  caIndex: number,
  crls: readonly ParsedCrl[],
  files: readonly string[],
): IssuerRevocations {
  const entries: RevokedEntries[] = crls.map((c) => c.entries);
  let crlNumber: string | null = null;
  let thisUpdate = 0;
  let nextUpdate: number | null = 0;
  for (const crl of crls) {
    if (
      crl.crlNumber !== null &&
      (crlNumber === null || BigInt(crl.crlNumber) > BigInt(crlNumber))
    ) {
      crlNumber = crl.crlNumber;
    }
    thisUpdate = Math.max(thisUpdate, crl.thisUpdate);
    nextUpdate =
      nextUpdate === null || crl.nextUpdate === null ? null : Math.max(nextUpdate, crl.nextUpdate);
  }
  return { caIndex, set: buildRevocationSet(entries), thisUpdate, nextUpdate, crlNumber, files };
}

/** A CA's CRL must not go back: a lower CRL number (or, without numbers, an older thisUpdate). */
function rollbackProblem(
  before: TrustBaseline['issuers'][number],
  ca: Certificate,
  issuer: IssuerRevocations,
): InputError | null {
  const file = issuer.files[0] ?? null;
  if (before.crlNumber !== null && issuer.crlNumber !== null) {
    if (BigInt(issuer.crlNumber) >= BigInt(before.crlNumber)) return null;
    return new InputError(
      CRL_FILE,
      file,
      `CRL number ${issuer.crlNumber} of "${ca.subject}" is lower than the one in force (${before.crlNumber}): refusing a rollback`,
    );
  }
  if (issuer.thisUpdate >= before.thisUpdate) return null;
  return new InputError(
    CRL_FILE,
    file,
    `CRL of "${ca.subject}" is older (thisUpdate ${iso(issuer.thisUpdate)}) than the one in force (${iso(before.thisUpdate)}): refusing a rollback`,
  );
}

// ---- serving side ---------------------------------------------------------------------------

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

/** Whether two DER lists hold the same bytes in the same order. */
export function sameDers(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return (
    a.length === b.length && a.every((der, i) => Buffer.compare(der, b[i] as Uint8Array) === 0)
  );
}
