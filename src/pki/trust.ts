/**
 * The trust inputs — the client CA bundle and the CRLs — turned into TrustData: plain,
 * transferable data (CA DERs and one RevocationSet per CA) built in the trust worker by
 * `evaluateTrust` (and `loadTrustData` where nothing is in force), and read on the serving
 * path through a TrustStore (trust-store.ts).
 */
import { createHash } from 'node:crypto';
import { errorMessage, InputError } from '../errors.js';
import { isoTime } from '../time.js';
import { type Certificate, parseCertificate } from './certificate.js';
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
import { buildRevocationSet, type RevocationSet } from './revocation-set.js';

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
  /**
   * SHA-256 of the bytes of each CRL source (file, or --crl-url) whose CRLs are in force: a
   * fetched CRL is kept as the URL's last good copy only when its digest is here.
   */
  readonly crlDigests: Readonly<Record<string, string>>;
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
  /**
   * The CRLs of --crl-url, each read from `path` (its cached copy, or a fetch not yet accepted)
   * and named by its URL in problems, summaries and digests.
   */
  readonly crlUrls?: readonly CrlUrlSource[];
  readonly crlMissingPolicy: 'reject' | 'allow';
}

export interface CrlUrlSource {
  readonly url: string;
  readonly path: string;
}

const CLIENT_CA = 'client-ca-file';
const CRL_FILE = 'crl-file';
const CRL_URL = 'crl-url';

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
  for (const { file, flag, bytes } of files.crls) {
    const crls = tried(problems, () => readCrlFile(flag, file, bytes, cas, now, warnings));
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
    const rollback =
      inForce === undefined ? null : rollbackProblem(inForce, ca, merged, flagOf(files, merged));
    if (rollback !== null) {
      problems.push(rollback);
      held.push(caIndex);
      return;
    }
    issuers.push(merged);
  });

  const notInForce = new Set(held.flatMap((caIndex) => perCa.get(caIndex)?.files ?? []));
  const crlDigests: Record<string, string> = {};
  for (const { file, sha256 } of files.crls) {
    if (!refusedFiles.has(file) && !notInForce.has(file)) crlDigests[file] = sha256;
  }
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
      crlDigests,
    },
    problems,
    held,
  };
}

/** The flag that names the first source of `issuer` (for its rollback problem). */
function flagOf(files: TrustFiles, issuer: IssuerRevocations): string {
  const first = issuer.files[0];
  return files.crls.find((c) => c.file === first)?.flag ?? CRL_FILE;
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
  const crlDigests = { ...data.crlDigests };
  for (const file of keptFiles) {
    const digest = inForce.crlDigests[file];
    if (digest === undefined) delete crlDigests[file];
    else crlDigests[file] = digest;
  }
  return {
    ...data,
    issuers: [...data.issuers, ...kept].sort((a, b) => a.caIndex - b.caIndex),
    crls: [
      ...data.crls,
      ...inForce.crls.filter((c) => keptFiles.has(c.file) && !loadedFiles.has(c.file)),
    ],
    crlDigests,
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
  flag: string,
  file: string,
  bytes: Buffer,
  cas: readonly Certificate[],
  now: number,
  warnings: string[],
): { crl: ParsedCrl; caIndex: number }[] {
  return blocksIn(flag, file, bytes, ['X509 CRL'], 'CRL (PEM "X509 CRL" block or DER)').map(
    (block) => {
      const crl = parseCrlOf(flag, file, block.der);
      const caIndex = findSigner(flag, crl, cas, file);
      if (crl.thisUpdate > now + MAX_FUTURE_SKEW_MS) {
        throw new InputError(
          flag,
          file,
          `CRL of "${crl.issuer}" is not valid yet (thisUpdate ${isoTime(crl.thisUpdate)})`,
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
  /** Each CRL source read: its name (a path, or the URL), the flag that named it, its bytes. */
  readonly crls: ReadonlyArray<{
    readonly file: string;
    readonly flag: string;
    readonly bytes: Buffer;
    readonly sha256: string;
  }>;
  /** CRL sources (or named CRL paths) that could not be read. */
  readonly unreadable: readonly string[];
  readonly problems: readonly InputError[];
  /**
   * SHA-256 of the policy, then of each source's name, length and SHA-256 (the CA bundle, then
   * each CRL file, then each URL's copy), or of why it could not be read: two loads with the
   * same digest read the same bytes from the same sources.
   */
  readonly digest: string;
}

/**
 * Reads every trust input (all of them are in memory until the load is done). When the digest
 * is that of the data in force, a load would find exactly that data again: its checks depend
 * on the bytes, and on the time only for CRLs not valid yet, which cannot become so later. So
 * the reload that follows one change twice (a SIGHUP and the watcher's event) costs a read and
 * a hash, not a parse. A URL's CRL is named by its URL, not by the file it is read from: its
 * cached copy and a fetch of the same bytes are the same input.
 */
export function readTrustFiles(inputs: TrustInputs): TrustFiles {
  const digest = createHash('sha256').update(
    `kube-crl-proxy inputs v3\ncrl-missing-policy=${inputs.crlMissingPolicy}\n`,
  );
  const problems: InputError[] = [];
  const unreadable: string[] = [];
  const crls: { file: string; flag: string; bytes: Buffer; sha256: string }[] = [];
  const read = (flag: string, name: string, path = name): Buffer | null => {
    try {
      const bytes = readInput(flag, path);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      digest.update(`${Buffer.byteLength(name)}:${name}:${bytes.length}:${sha256}\n`);
      if (flag !== CLIENT_CA) crls.push({ file: name, flag, bytes, sha256 });
      return bytes;
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      digest.update(`${Buffer.byteLength(name)}:${name}:!${err.problem}\n`);
      problems.push(
        path === name ? err : new InputError(flag, name, `cannot read ${path}: ${err.problem}`),
      );
      if (flag !== CLIENT_CA) unreadable.push(name);
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
  for (const file of listing.files) read(CRL_FILE, file);
  for (const { url, path } of inputs.crlUrls ?? []) read(CRL_URL, url, path);
  return { caBundle, crls, unreadable, problems, digest: digest.digest('hex') };
}

function expiryWarning(file: string, issuer: string, nextUpdate: number): string {
  return `${file}: CRL of "${issuer}" expired at ${isoTime(nextUpdate)} (--crl-expired-policy applies)`;
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

function parseCrlOf(flag: string, file: string, der: Buffer): ParsedCrl {
  try {
    return parseCrl(der);
  } catch (err) {
    if (err instanceof DerError || err instanceof CrlError || err instanceof PemError) {
      throw new InputError(flag, file, `invalid CRL: ${err.message}`);
    }
    throw err;
  }
}

/**
 * The CA of `cas` that signed `crl` — same subject bytes, same key identifier when both have
 * one, and the signature verifies — or why there is none (worded for --client-ca-file).
 */
export function crlSigner(
  crl: ParsedCrl,
  cas: readonly Certificate[],
): { readonly index: number } | { readonly problem: string } {
  const issuerDer = Buffer.from(crl.issuerDer);
  const candidates = cas.flatMap((ca, i) => (ca.subjectDer.equals(issuerDer) ? [i] : []));
  if (candidates.length === 0) {
    return { problem: `CRL issuer "${crl.issuer}" is not a CA of --client-ca-file` };
  }
  for (const index of candidates) {
    const ca = cas[index] as Certificate;
    if (
      crl.authorityKeyId !== null &&
      ca.subjectKeyId !== null &&
      crl.authorityKeyId !== ca.subjectKeyId
    )
      continue;
    try {
      if (verifyCrlSignature(crl, ca.x509.publicKey)) return { index };
    } catch (err) {
      return { problem: errorMessage(err) };
    }
  }
  return {
    problem: `CRL signature of "${crl.issuer}" does not verify against any CA of --client-ca-file`,
  };
}

function findSigner(
  flag: string,
  crl: ParsedCrl,
  cas: readonly Certificate[],
  file: string,
): number {
  const signer = crlSigner(crl, cas);
  if ('problem' in signer) throw new InputError(flag, file, signer.problem);
  return signer.index;
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
  flag: string,
): InputError | null {
  const file = issuer.files[0] ?? null;
  if (before.crlNumber !== null && issuer.crlNumber !== null) {
    if (BigInt(issuer.crlNumber) >= BigInt(before.crlNumber)) return null;
    return new InputError(
      flag,
      file,
      `CRL number ${issuer.crlNumber} of "${ca.subject}" is lower than the one in force (${before.crlNumber}): refusing a rollback`,
    );
  }
  if (issuer.thisUpdate >= before.thisUpdate) return null;
  return new InputError(
    flag,
    file,
    `CRL of "${ca.subject}" is older (thisUpdate ${isoTime(issuer.thisUpdate)}) than the one in force (${isoTime(before.thisUpdate)}): refusing a rollback`,
  );
}

/** Whether two DER lists hold the same bytes in the same order. */
export function sameDers(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return (
    a.length === b.length && a.every((der, i) => Buffer.compare(der, b[i] as Uint8Array) === 0)
  );
}
