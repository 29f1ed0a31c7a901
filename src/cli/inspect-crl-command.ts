/**
 * `kube-crl-proxy inspect-crl FILE`: what a CRL file holds, as the proxy reads it — every CRL
 * of the file (or of the directory, as --crl-file reads one), its freshness, its signature
 * against the CA bundle, and with `--serial` whether a certificate is on it.
 *
 * It reads with the proxy's own DER walk (pki/crl.ts), so a million-entry CRL takes about a
 * second; @peculiar/x509 refuses CRLs far smaller at its default limits (bench/README.md#crl-tool-kube-crl-proxy-crl-issue-19).
 */
import type { Argv, CommandModule } from 'yargs';
import { GROUPS, RUN_OPTIONS } from '../config/options.js';
import { errorMessage, InputError } from '../errors.js';
import { type Certificate, parseCertificate } from '../pki/certificate.js';
import type { ParsedCrl } from '../pki/crl.js';
import { expandCrlPaths, readBlocksOf } from '../pki/files.js';
import {
  buildRevocationSet,
  parseSerialText,
  revokedAt,
  serialBytes,
  serialHex,
} from '../pki/revocation-set.js';
import { crlSigner } from '../pki/trust.js';
import { isoTime } from '../time.js';
import { EXIT_NO, EXIT_OK, fail } from './exit.js';
import {
  AT_OPTION,
  OUTPUT_OPTION,
  type OutputFormat,
  parseAt,
  readCrls,
} from './inspect-common.js';

export const INSPECT_CRL_OPTIONS = {
  'client-ca-file': {
    ...RUN_OPTIONS['client-ca-file'],
    describe: "verify each CRL's signature against the CAs of this bundle (as the proxy does)",
  },
  serial: {
    type: 'string',
    group: GROUPS.revocation,
    describe: 'look up this certificate serial (hex, as openssl prints it; colons allowed)',
  },
  at: AT_OPTION,
  output: OUTPUT_OPTION,
} as const;

/** `--output json`: one object; these fields are stable (documented in docs/cli.md). */
export const INSPECT_CRL_JSON_FIELDS: Readonly<Record<string, string>> = {
  path: 'the FILE argument',
  checkedAt: 'the time freshness is judged at (RFC 3339): now, or --at',
  clientCaFile: 'the CA bundle signatures were checked against, or null',
  'crls[]': 'one entry per CRL, in file order (files of a directory in name order)',
  'crls[].file': 'the file the CRL was read from',
  'crls[].index': 'position of the CRL in its file, from 0',
  'crls[].issuer': 'issuer name, e.g. "CN=kubernetes"',
  'crls[].crlNumber': 'CRL number as a decimal string, or null',
  'crls[].thisUpdate': 'RFC 3339',
  'crls[].nextUpdate': 'RFC 3339, or null (a CRL without nextUpdate never goes stale)',
  'crls[].secondsToNextUpdate': 'seconds from checkedAt to nextUpdate (negative: expired), or null',
  'crls[].expired': 'true when checkedAt is past nextUpdate (--crl-expired-policy applies)',
  'crls[].entries': 'number of revoked certificates listed',
  'crls[].authorityKeyId': 'authority key identifier, lowercase hex, or null',
  'crls[].signatureAlgorithm': 'e.g. ecdsa-with-SHA256 (the OID when not a common one)',
  'crls[].signature.status':
    '"verified", "not_checked" (no --client-ca-file) or "invalid" (the proxy would refuse the file)',
  'crls[].signature.by': 'the CA that verified it: { subject, sha256Fingerprint }, or null',
  'crls[].signature.problem': 'why it is invalid, or null',
  'crls[].serial': 'with --serial: { serial, revoked, revokedAt (RFC 3339 or null) }; else null',
};

interface InspectCrlArgs {
  readonly file: string;
  readonly 'client-ca-file'?: string;
  readonly serial?: string;
  readonly at?: string;
  readonly output: OutputFormat;
}

export const inspectCrlCommand: CommandModule<object, InspectCrlArgs> = {
  command: 'inspect-crl <file>',
  describe:
    'show the CRLs of a file or directory: issuer, number, freshness, entries, signature; --serial looks one up (exit 0, 1 if a signature is invalid, 2 bad input)',
  builder: (y) =>
    (y as Argv)
      .positional('file', {
        type: 'string',
        describe: 'CRL file (PEM with any number of CRLs, or DER) or a directory of them',
      })
      .options(INSPECT_CRL_OPTIONS)
      .example(
        '$0 inspect-crl /etc/kubernetes/pki/crl/ --client-ca-file=/etc/kubernetes/pki/ca.crt',
        'freshness and signature of every CRL the proxy would load',
      )
      .example(
        '$0 inspect-crl ca.crl --serial=5C:1D:09:AA -o json',
        'is serial 5C1D09AA revoked?',
      ) as unknown as Argv<InspectCrlArgs>,
  handler: (args) => {
    process.exitCode = inspectCrl(args);
  },
};

type SignatureStatus =
  | { readonly status: 'verified'; readonly by: CaRef; readonly problem: null }
  | { readonly status: 'not_checked'; readonly by: null; readonly problem: null }
  | { readonly status: 'invalid'; readonly by: null; readonly problem: string };

interface CaRef {
  readonly subject: string;
  readonly sha256Fingerprint: string;
}

export interface CrlReport {
  readonly file: string;
  readonly index: number;
  readonly issuer: string;
  readonly crlNumber: string | null;
  readonly thisUpdate: string;
  readonly nextUpdate: string | null;
  readonly secondsToNextUpdate: number | null;
  readonly expired: boolean;
  readonly entries: number;
  readonly authorityKeyId: string | null;
  readonly signatureAlgorithm: string;
  readonly signature: SignatureStatus;
  readonly serial: {
    readonly serial: string;
    readonly revoked: boolean;
    readonly revokedAt: string | null;
  } | null;
}

export interface InspectCrlReport {
  readonly path: string;
  readonly checkedAt: string;
  readonly clientCaFile: string | null;
  readonly crls: readonly CrlReport[];
}

function inspectCrl(args: InspectCrlArgs): number {
  const now = parseAt(args.at);
  const serial = args.serial === undefined ? null : parseSerial(args.serial);
  const clientCaFile = args['client-ca-file'] ?? null;
  const cas = clientCaFile === null ? null : readCas(clientCaFile);
  const crls: CrlReport[] = [];
  for (const file of crlFilesOf(args.file)) {
    readCrls(file).forEach((crl, index) => {
      crls.push(reportOf(file, index, crl, cas, serial, now));
    });
  }
  const report: InspectCrlReport = { path: args.file, checkedAt: isoTime(now), clientCaFile, crls };
  process.stdout.write(
    args.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : text(report),
  );
  return crls.some((c) => c.signature.status === 'invalid') ? EXIT_NO : EXIT_OK;
}

function parseSerial(value: string): string {
  const bytes = parseSerialText(value);
  if (bytes === null) fail(`--serial: "${value}" is not a hexadecimal serial`);
  return serialHex(bytes);
}

function crlFilesOf(path: string): string[] {
  const { files, failures } = expandCrlPaths('crl-file', [path]);
  const [failure] = failures;
  if (failure !== undefined) fail(`${failure.file ?? path}: ${failure.problem}`);
  if (files.length === 0) fail(`${path}: directory holds no CRL file`);
  return files;
}

/** The CAs of the bundle, as the proxy keeps them (basicConstraints CA:TRUE only). */
function readCas(file: string): Certificate[] {
  try {
    return readBlocksOf(
      'client-ca-file',
      file,
      ['CERTIFICATE', 'TRUSTED CERTIFICATE'],
      'certificate',
    )
      .map((block) => parseCertificate(block.der))
      .filter((cert) => cert.isCA);
  } catch (err) {
    fail(
      `--client-ca-file: ${file}: ${err instanceof InputError ? err.problem : errorMessage(err)}`,
    );
  }
}

function reportOf(
  file: string,
  index: number,
  crl: ParsedCrl,
  cas: readonly Certificate[] | null,
  serial: string | null,
  now: number,
): CrlReport {
  return {
    file,
    index,
    issuer: crl.issuer,
    crlNumber: crl.crlNumber,
    thisUpdate: isoTime(crl.thisUpdate),
    nextUpdate: crl.nextUpdate === null ? null : isoTime(crl.nextUpdate),
    secondsToNextUpdate: crl.nextUpdate === null ? null : Math.round((crl.nextUpdate - now) / 1000),
    expired: crl.nextUpdate !== null && now > crl.nextUpdate,
    entries: crl.entries.count,
    authorityKeyId: crl.authorityKeyId,
    signatureAlgorithm: ALGORITHM_NAMES[crl.signatureAlgorithm.oid] ?? crl.signatureAlgorithm.oid,
    signature: cas === null ? NOT_CHECKED : signatureStatus(crl, cas),
    serial: serial === null ? null : lookUp(crl, serial),
  };
}

const NOT_CHECKED: SignatureStatus = { status: 'not_checked', by: null, problem: null };

/** The proxy's own rule (trust.ts crlSigner). */
function signatureStatus(crl: ParsedCrl, cas: readonly Certificate[]): SignatureStatus {
  const signer = crlSigner(crl, cas);
  if ('problem' in signer) return invalid(signer.problem);
  const ca = cas[signer.index] as Certificate;
  return {
    status: 'verified',
    by: { subject: ca.subject, sha256Fingerprint: ca.fingerprint256 },
    problem: null,
  };
}

function invalid(problem: string): SignatureStatus {
  return { status: 'invalid', by: null, problem };
}

function lookUp(crl: ParsedCrl, serial: string): NonNullable<CrlReport['serial']> {
  const at = revokedAt(buildRevocationSet([crl.entries]), serialBytes(serial));
  return { serial, revoked: at >= 0, revokedAt: at >= 0 ? isoTime(at) : null };
}

const ALGORITHM_NAMES: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.2.840.113549.1.1.10': 'rsassa-pss',
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.3.101.112': 'ED25519',
  '1.3.101.113': 'ED448',
};

function text(report: InspectCrlReport): string {
  const counts = new Map<string, number>();
  for (const crl of report.crls) counts.set(crl.file, (counts.get(crl.file) ?? 0) + 1);
  return report.crls
    .map((crl) => {
      const of = counts.get(crl.file) ?? 1;
      const title = of > 1 ? `${crl.file} (CRL ${crl.index + 1} of ${of})` : crl.file;
      const rows: [string, string][] = [
        ['issuer', crl.issuer],
        ['CRL number', crl.crlNumber ?? 'none'],
        ['thisUpdate', crl.thisUpdate],
        ['nextUpdate', nextUpdateText(crl)],
        ['entries', String(crl.entries)],
        ['authority key id', crl.authorityKeyId ?? 'none'],
        ['signature', `${crl.signatureAlgorithm}, ${signatureText(crl.signature)}`],
      ];
      if (crl.serial !== null) rows.push([`serial ${crl.serial.serial}`, serialText(crl.serial)]);
      return `${title}\n${rows.map(([k, v]) => `  ${label(k)}${v}\n`).join('')}`;
    })
    .join('\n');
}

/** `key:` padded into a column; a long key (a long serial) still gets its space. */
function label(key: string): string {
  return `${key}:`.padEnd(18).padEnd(key.length + 2);
}

function nextUpdateText(crl: CrlReport): string {
  if (crl.nextUpdate === null || crl.secondsToNextUpdate === null) return 'none (never goes stale)';
  const span = durationText(Math.abs(crl.secondsToNextUpdate));
  return crl.expired ? `${crl.nextUpdate} (EXPIRED ${span} ago)` : `${crl.nextUpdate} (in ${span})`;
}

function signatureText(signature: SignatureStatus): string {
  if (signature.status === 'verified')
    return `verified by ${signature.by.subject} (SHA-256 ${signature.by.sha256Fingerprint})`;
  if (signature.status === 'not_checked') return 'not checked (give --client-ca-file)';
  return `INVALID: ${signature.problem}`;
}

function serialText(serial: NonNullable<CrlReport['serial']>): string {
  return serial.revoked ? `REVOKED at ${serial.revokedAt}` : 'not revoked by this CRL';
}

/** `6d 23h`, `3h 5m`, `42s`: the two largest units are enough for a freshness glance. */
function durationText(seconds: number): string {
  const units: [string, number][] = [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ];
  const parts: string[] = [];
  let rest = Math.round(seconds);
  for (const [name, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || (parts.length > 0 && parts.length < 2)) parts.push(`${n}${name}`);
    if (parts.length === 2) break;
  }
  return parts.length === 0 ? '0s' : parts.join(' ');
}
