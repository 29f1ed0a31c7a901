/**
 * The deny file (--deny-file): emergency locks an operator sets without the CA key. A YAML list
 * whose entries each name clients by one selector — the user or a group they are forwarded as,
 * one certificate (issuer and serial, or the SHA-256 of its DER), or one key (the SHA-256 of its
 * SubjectPublicKeyInfo, so a certificate re-issued for a stolen key is caught too) — with an
 * optional free-text reason and an optional end (`until`). Any problem refuses the whole file,
 * naming the entry; a refused file keeps the list in force.
 *
 * `parseDenyFile` runs in the trust worker (YAML parsing is slow: see readDenyFile); `DenyList`
 * is the serving side's index, built once per deny snapshot.
 */
import { createHash } from 'node:crypto';
import { parseRfc3339 } from '../config/config.js';
import { parseYaml } from '../config/yaml.js';
import { errorMessage, InputError } from '../errors.js';
import { readInput } from './files.js';
import { parseSerialText, serialHex } from './revocation-set.js';

const FLAG = 'deny-file';

/**
 * A deny file is for emergencies, a few entries at a time (a CRL carries the long list). The
 * YAML parser is slow per entry (bench/README.md#figures-behind-design-choices-in-src), so this bounds a reload's work in the
 * worker.
 */
export const MAX_DENY_FILE_BYTES = 1024 * 1024;
const MAX_REASON_LENGTH = 1024;

export type DenySelector =
  | { readonly kind: 'user'; readonly value: string }
  | { readonly kind: 'group'; readonly value: string }
  /** `serial`: uppercase hex without leading zeros; `issuer`: as written in the file. */
  | { readonly kind: 'serial'; readonly serial: string; readonly issuer: string }
  /** Lowercase hex. */
  | { readonly kind: 'fingerprint'; readonly sha256: string }
  | { readonly kind: 'spki'; readonly sha256: string };

export interface DenyEntry {
  /** Position in the file, counted from 1 (as the messages name it). */
  readonly index: number;
  readonly selector: DenySelector;
  readonly reason: string | null;
  /** When the entry lapses (ms since the epoch); null: it stays until removed. */
  readonly until: number | null;
}

/** The deny list as plain data (sent as is to cluster workers). */
export interface DenyData {
  readonly file: string;
  readonly entries: readonly DenyEntry[];
  /** SHA-256 of the file's bytes: the same digest is the same list. */
  readonly digest: string;
}

const SELECTORS = ['user', 'group', 'serial', 'fingerprint', 'spki'] as const;
const KEYS: ReadonlySet<string> = new Set([...SELECTORS, 'issuer', 'reason', 'until']);
const KEY_LIST = 'user, group, serial (with issuer), fingerprint, spki, reason, until';

/** The deny file's bytes and their SHA-256 (DenyData.digest). */
export function readDenyBytes(file: string): { readonly bytes: Buffer; readonly digest: string } {
  const bytes = readInput(FLAG, file);
  if (bytes.length > MAX_DENY_FILE_BYTES) {
    throw new InputError(
      FLAG,
      file,
      `is ${bytes.length} bytes, more than ${MAX_DENY_FILE_BYTES}: a deny file is for emergency locks; revoke long-term in a CRL`,
    );
  }
  return { bytes, digest: createHash('sha256').update(bytes).digest('hex') };
}

/** Reads and checks the deny file; throws an InputError naming the entry at fault. */
export function loadDenyFile(file: string): DenyData {
  const { bytes, digest } = readDenyBytes(file);
  return { file, digest, entries: parseDenyEntries(file, bytes) };
}

/** The entries of a deny file's bytes; throws an InputError naming the entry at fault. */
export function parseDenyEntries(file: string, bytes: Buffer): DenyEntry[] {
  const problem = (text: string) => new InputError(FLAG, file, text);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw problem('is not UTF-8 text');
  }
  let document: unknown;
  try {
    // The failsafe schema reads every scalar as a string: serials and fingerprints made of
    // digits stay hex text, and `user: yes` is the user "yes".
    document = parseYaml(text, { schema: 'failsafe' });
  } catch (err) {
    throw problem(`is not valid YAML: ${errorMessage(err).split('\n')[0]}`);
  }
  if (document === null || document === undefined) {
    throw problem('holds no list (write [] to deny nothing)');
  }
  if (!Array.isArray(document)) {
    throw problem(
      'must be a YAML list of entries such as - {user: alice} (write [] to deny nothing)',
    );
  }
  return document.map((item: unknown, i) => {
    try {
      return readEntry(item, i + 1);
    } catch (err) {
      if (err instanceof EntryError) throw problem(`entry ${i + 1}: ${err.message}`);
      throw err;
    }
  });
}

class EntryError extends Error {}

function readEntry(item: unknown, index: number): DenyEntry {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    throw new EntryError('must be a mapping such as {user: alice}');
  }
  const fields = new Map<string, string>();
  for (const [key, value] of Object.entries(item)) {
    if (!KEYS.has(key)) throw new EntryError(`unknown key "${key}" (keys: ${KEY_LIST})`);
    if (typeof value !== 'string')
      throw new EntryError(`${key} must be one value, not a list or mapping`);
    fields.set(key, value);
  }
  const selectors = SELECTORS.filter((key) => fields.has(key));
  if (selectors.length === 0) {
    throw new EntryError(
      'names no client: give one of user, group, serial (with issuer), fingerprint, spki',
    );
  }
  if (selectors.length > 1) {
    throw new EntryError(
      `has ${selectors.join(' and ')}: one selector per entry (write one entry each)`,
    );
  }
  const kind = selectors[0] as (typeof SELECTORS)[number];
  const value = fields.get(kind) as string;
  if (kind !== 'serial' && fields.has('issuer')) {
    throw new EntryError('issuer goes only with serial');
  }
  return {
    index,
    selector: readSelector(kind, value, fields.get('issuer')),
    reason: readReason(fields.get('reason')),
    until: readUntil(fields.get('until')),
  };
}

function readSelector(
  kind: (typeof SELECTORS)[number],
  value: string,
  issuer: string | undefined,
): DenySelector {
  switch (kind) {
    case 'user':
    case 'group':
      if (value === '') throw new EntryError(`${kind} is empty`);
      return { kind, value };
    case 'serial': {
      const bytes = parseSerialText(value);
      if (bytes === null) {
        throw new EntryError(
          `serial "${value}" is not hex (as openssl x509 -noout -serial prints it; colons allowed)`,
        );
      }
      if (issuer === undefined) {
        throw new EntryError(
          'serial needs the issuer of the certificate (e.g. issuer: "CN=kubernetes"): a serial is unique only within its CA',
        );
      }
      if (issuerKeys(issuer) === null) {
        throw new EntryError(`issuer "${issuer}" is not a name such as "CN=kubernetes"`);
      }
      return { kind, serial: serialHex(bytes), issuer };
    }
    case 'fingerprint':
    case 'spki': {
      const hex = value.replace(/:/g, '').toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(hex)) {
        const of = kind === 'spki' ? 'SubjectPublicKeyInfo' : 'certificate';
        throw new EntryError(
          `${kind} "${value}" is not a SHA-256 (of the ${of} DER) in hex: 64 hex digits, colons allowed`,
        );
      }
      return { kind, sha256: hex };
    }
  }
}

function readReason(reason: string | undefined): string | null {
  if (reason === undefined) return null;
  if (reason.length > MAX_REASON_LENGTH) {
    throw new EntryError(`reason is ${reason.length} characters, more than ${MAX_REASON_LENGTH}`);
  }
  // It is shown to the client (the Status message) and written to the log as one line.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (/[\u0000-\u001f\u007f]/.test(reason)) {
    throw new EntryError('reason contains a control character (a line break or tab, say)');
  }
  return reason;
}

function readUntil(until: string | undefined): number | null {
  if (until === undefined) return null;
  const ms = parseRfc3339(until);
  if (ms === null) {
    throw new EntryError(`until "${until}" is not an RFC 3339 time such as 2026-12-08T09:00:00Z`);
  }
  return ms;
}

// ---- issuer names ------------------------------------------------------------------------------

/**
 * The comparable forms of a Name written as text, or null when it is not one: the proxy's own
 * display form (`O=acme, CN=users-ca`, RDNs in certificate order, as in its Status messages and
 * logs), `openssl x509 -issuer`'s (`issuer=O = acme, CN = users-ca`: same order, spaces around
 * `=`) and RFC 4514's (`CN=users-ca,O=acme`: reversed, as `-nameopt RFC2253` and Go print it)
 * all give the same keys. Attribute types and values compare without regard to case, so a
 * lock never misses a certificate over the spelling of its issuer; the serial must match too.
 */
export function issuerKeys(text: string): readonly [string, string] | null {
  const rdns = nameRdns(text.trim().replace(/^issuer\s*=\s*(?=\S+\s*=)/i, ''));
  if (rdns === null) return null;
  const key = (list: string[][]) => list.map((atoms) => atoms.join('+')).join(',');
  return [key(rdns), key([...rdns].reverse())];
}

/** The key of a Name as the proxy displays it (names.ts formatName): certificate order. */
export function displayedNameKey(display: string): string | null {
  return issuerKeys(display)?.[0] ?? null;
}

/** RDNs of a Name as text, each a sorted list of `TYPE=value` atoms; null when malformed. */
function nameRdns(text: string): string[][] | null {
  const rdns: string[][] = [];
  let atoms: string[] = [];
  let atom = '';
  const close = (): boolean => {
    const normal = normalAtom(atom);
    if (normal === null) return false;
    atoms.push(normal);
    atom = '';
    return true;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\' && i + 1 < text.length) {
      atom += c + text[++i];
    } else if (c === '+' || c === ',') {
      if (!close()) return null;
      if (c === ',') {
        rdns.push(atoms.sort());
        atoms = [];
      }
    } else {
      atom += c;
    }
  }
  if (!close()) return null;
  rdns.push(atoms.sort());
  return rdns;
}

function normalAtom(atom: string): string | null {
  const eq = atom.indexOf('=');
  if (eq <= 0) return null;
  const type = atom.slice(0, eq).trim();
  const value = atom.slice(eq + 1).trim();
  if (!/^[A-Za-z][A-Za-z0-9-]*$|^\d+(\.\d+)+$/.test(type) || value === '') return null;
  return `${type.toUpperCase()}=${value.toLowerCase()}`;
}

// ---- serving side ------------------------------------------------------------------------------

/** What the deny check reads from a client certificate (tls/verify.ts's PeerCert). */
export interface DenyCandidate {
  readonly der: Buffer;
  /** Uppercase hex without leading zeros. */
  readonly serial: string;
  /** As names.ts formatName displays it. */
  readonly issuer: string;
  readonly fields: { readonly subjectPublicKeyInfo: Buffer };
  /** The identity it would be forwarded as (Go strings: one char per byte), or its problem. */
  readonly identity:
    | { readonly user: string; readonly groups: readonly string[] }
    | { readonly problem: string };
}

/** Hashes of one certificate, made at its first deny check that needs them. */
interface Digests {
  fingerprint?: string;
  spki?: string;
  issuerKey?: string | null;
}
const digests = new WeakMap<DenyCandidate, Digests>();

function digestsOf(candidate: DenyCandidate): Digests {
  let found = digests.get(candidate);
  if (found === undefined) {
    found = {};
    digests.set(candidate, found);
  }
  return found;
}

/**
 * The deny list in force, indexed once per deny snapshot: a check is a few map lookups, and
 * a certificate's SHA-256 digests are computed (once per certificate) only when the list has
 * entries of that kind.
 */
export class DenyList {
  static readonly EMPTY = new DenyList(null);

  readonly data: DenyData | null;
  private readonly users = new Map<string, DenyEntry[]>();
  private readonly groups = new Map<string, DenyEntry[]>();
  /** By serial; the issuer is compared on a hit. */
  private readonly serials = new Map<string, { entry: DenyEntry; issuers: readonly string[] }[]>();
  private readonly fingerprints = new Map<string, DenyEntry[]>();
  private readonly spkis = new Map<string, DenyEntry[]>();
  private readonly empty: boolean;

  constructor(data: DenyData | null) {
    this.data = data;
    for (const entry of data?.entries ?? []) {
      const s = entry.selector;
      switch (s.kind) {
        case 'user':
          addTo(this.users, goString(s.value), entry);
          break;
        case 'group':
          addTo(this.groups, goString(s.value), entry);
          break;
        case 'serial':
          addTo(this.serials, s.serial, { entry, issuers: issuerKeys(s.issuer) ?? [] });
          break;
        case 'fingerprint':
          addTo(this.fingerprints, s.sha256, entry);
          break;
        case 'spki':
          addTo(this.spkis, s.sha256, entry);
          break;
      }
    }
    this.empty = (data?.entries.length ?? 0) === 0;
  }

  /** The first entry of the file, in force at `now`, that names this certificate; or null. */
  match(candidate: DenyCandidate, now: number): DenyEntry | null {
    if (this.empty) return null;
    let found: DenyEntry | null = null;
    const { identity } = candidate;
    if ('user' in identity) {
      found = earliest(found, this.users.get(identity.user), now);
      if (this.groups.size > 0) {
        for (const group of identity.groups) found = earliest(found, this.groups.get(group), now);
      }
    }
    const serialHits = this.serials.get(candidate.serial);
    if (serialHits === undefined && this.fingerprints.size === 0 && this.spkis.size === 0) {
      return found;
    }
    const memo = digestsOf(candidate);
    if (serialHits !== undefined) {
      if (memo.issuerKey === undefined) memo.issuerKey = displayedNameKey(candidate.issuer);
      const key = memo.issuerKey;
      for (const hit of serialHits) {
        if (key !== null && hit.issuers.includes(key)) found = earliest(found, [hit.entry], now);
      }
    }
    if (this.fingerprints.size > 0) {
      memo.fingerprint ??= sha256Hex(candidate.der);
      found = earliest(found, this.fingerprints.get(memo.fingerprint), now);
    }
    if (this.spkis.size > 0) {
      memo.spki ??= sha256Hex(candidate.fields.subjectPublicKeyInfo);
      found = earliest(found, this.spkis.get(memo.spki), now);
    }
    return found;
  }
}

/** `found` or the first of `entries` in force at `now`, whichever comes first in the file. */
function earliest(
  found: DenyEntry | null,
  entries: readonly DenyEntry[] | undefined,
  now: number,
): DenyEntry | null {
  let first = found;
  for (const entry of entries ?? []) {
    if (entry.until !== null && now >= entry.until) continue;
    if (first === null || entry.index < first.index) first = entry;
  }
  return first;
}

/** The Status message of a client refused by `entry`. */
export function deniedMessage(entry: DenyEntry): string {
  const until = entry.until === null ? '' : `, until ${isoTime(entry.until)}`;
  const reason = entry.reason === null ? '' : `: ${entry.reason}`;
  return `client certificate denied by --deny-file entry ${entry.index} (${selectorText(entry.selector)}${until})${reason}`;
}

export function selectorText(selector: DenySelector): string {
  switch (selector.kind) {
    case 'user':
    case 'group':
      return `${selector.kind} ${selector.value}`;
    case 'serial':
      return `serial ${selector.serial}, issuer ${selector.issuer}`;
    case 'fingerprint':
    case 'spki':
      return `${selector.kind} ${selector.sha256}`;
  }
}

/**
 * What an operator should know about a list that loads: entries already lapsed, and serial
 * entries whose issuer is none of the CAs of --client-ca-file (they can match nothing while
 * that bundle is in force).
 */
export function denyWarnings(data: DenyData, caSubjects: readonly string[], now: number): string[] {
  const cas = new Set(caSubjects.map(displayedNameKey));
  const warnings: string[] = [];
  for (const entry of data.entries) {
    const where = `${data.file}: entry ${entry.index} (${selectorText(entry.selector)})`;
    if (entry.until !== null && entry.until <= now) {
      warnings.push(`${where} lapsed at ${isoTime(entry.until)}: it denies nothing`);
    }
    if (entry.selector.kind === 'serial') {
      const keys = issuerKeys(entry.selector.issuer) ?? [];
      if (!keys.some((key) => cas.has(key))) {
        warnings.push(
          `${where}: no CA of --client-ca-file has that name, so it matches no certificate`,
        );
      }
    }
  }
  return warnings;
}

/** Text as the identity holds it: its UTF-8 bytes, one char per byte (verify.ts's Identity). */
function goString(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

function addTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
