/**
 * `kube-crl-proxy crl revoke|renew|list`: the CRL of a file-based CA (kubeadm's ca.crt and
 * ca.key, or any such pair) issued where a running proxy reads it. Each write is one new CRL,
 * numbered one higher, renamed over the old file (atomic-file.ts); the proxy's watcher applies it.
 */
import { statSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { parseDuration } from '../config/config.js';
import { ConfigError, errorMessage, InputError } from '../errors.js';
import { type Certificate, parseCertificate } from '../pki/certificate.js';
import { CRL_REASONS, MAX_SERIAL_BYTES, type ParsedCrl, reasonName } from '../pki/crl.js';
import {
  CA_CERT,
  CRL,
  type CrlAuthority,
  type IssuedCrl,
  issueCrl,
  loadAuthority,
  type Revocation,
  readCurrentCrl,
} from '../pki/crl-issuer.js';
import { readBlocksOf, readInput } from '../pki/files.js';
import { type PemBlock, toPem } from '../pki/pem.js';
import { parseSerialText, serialHex } from '../pki/revocation-set.js';
import { isoTime } from '../time.js';
import { FileWriteError, withFileLock, writeFileAtomically, writeTarget } from './atomic-file.js';
import { EXIT_OK, fail } from './exit.js';
import { OUTPUT_OPTION, type OutputFormat, readCrls } from './inspect-common.js';

const GROUP = 'CRL:';

/**
 * What --reason accepts: the RFC 5280 reasons but removeFromCRL (delta CRLs only) and
 * aACompromise (attribute certificates); unspecified writes no reason code (section 5.3.1).
 */
const REASONS = CRL_REASONS.filter(
  (name): name is string => name !== null && name !== 'removeFromCRL' && name !== 'aaCompromise',
);

/** The flags revoke and renew share. */
export const CRL_SIGNING_OPTIONS = {
  'ca-cert': {
    type: 'string',
    group: GROUP,
    describe: 'the CA certificate (PEM or DER), e.g. /etc/kubernetes/pki/ca.crt [required]',
  },
  'ca-key': {
    type: 'string',
    group: GROUP,
    describe:
      'its private key (PEM: PKCS#8, EC or RSA; unencrypted), e.g. /etc/kubernetes/pki/ca.key [required]',
  },
  crl: {
    type: 'string',
    group: GROUP,
    describe:
      'the CRL file to update (created when missing, as PEM; a DER file stays DER), e.g. /etc/kubernetes/pki/crl/ca.crl [required]',
  },
  'next-update': {
    type: 'string',
    group: GROUP,
    default: '7d',
    describe: "the new CRL's nextUpdate, from now: 7d, 24h, 30m",
  },
} as const;

export const CRL_REVOKE_OPTIONS = {
  ...CRL_SIGNING_OPTIONS,
  serial: {
    type: 'string',
    array: true,
    group: GROUP,
    describe: 'revoke this serial (hex, as openssl prints it; colons allowed); repeatable',
  },
  'serial-file': {
    type: 'string',
    group: GROUP,
    describe: 'revoke the serials of this file: one hex serial per line; # starts a comment',
  },
  reason: {
    choices: REASONS,
    default: 'unspecified',
    group: GROUP,
    describe: 'the reason code of the new entries (unspecified: none is written)',
  },
} as const;

export const CRL_LIST_OPTIONS = { output: OUTPUT_OPTION } as const;

/** `crl list --output json`: one object; these fields are stable (documented in docs/cli.md). */
export const CRL_LIST_JSON_FIELDS: Readonly<Record<string, string>> = {
  file: 'the FILE argument',
  'crls[]': 'one entry per CRL of the file, in file order',
  'crls[].issuer': 'issuer name, e.g. "CN=kubernetes"',
  'crls[].crlNumber': 'CRL number as a decimal string, or null',
  'crls[].thisUpdate': 'RFC 3339',
  'crls[].nextUpdate': 'RFC 3339, or null',
  'crls[].count': 'number of entries',
  'crls[].entries[]': 'the revoked certificates, in CRL order',
  'crls[].entries[].serial': 'uppercase hex, no leading zero bytes',
  'crls[].entries[].revokedAt': 'RFC 3339',
  'crls[].entries[].reason':
    'keyCompromise, superseded, … as in --reason (caCompromise, aaCompromise in that spelling), or null when the entry has no reason code',
};

interface SigningArgs {
  readonly 'ca-cert'?: string;
  readonly 'ca-key'?: string;
  readonly crl?: string;
  readonly 'next-update': string;
}

interface RevokeArgs extends SigningArgs {
  readonly cert?: string[];
  readonly serial?: string[];
  readonly 'serial-file'?: string;
  readonly reason: string;
}

interface ListArgs {
  readonly file: string;
  readonly output: OutputFormat;
}

const revokeCommand: CommandModule<object, RevokeArgs> = {
  command: 'revoke [cert..]',
  describe:
    'add certificates (files, or serials) to the CRL and sign it again (exit 0 written, 2 refused: nothing written)',
  builder: (y) =>
    (y as Argv)
      .positional('cert', {
        type: 'string',
        array: true,
        describe: 'certificate files (PEM or DER) to revoke: the first certificate of each',
      })
      .options(CRL_REVOKE_OPTIONS)
      .example(
        '$0 crl revoke alice.crt --reason keyCompromise --ca-cert /etc/kubernetes/pki/ca.crt --ca-key /etc/kubernetes/pki/ca.key --crl /etc/kubernetes/pki/crl/ca.crl',
        "revoke alice's certificate; running proxies reading that CRL cut her connections",
      )
      .example(
        '$0 crl revoke --serial 5C:1D:09:AA --ca-cert ca.crt --ca-key ca.key --crl ca.crl',
        'revoke by serial, when the certificate file is gone',
      ) as unknown as Argv<RevokeArgs>,
  handler: (args) => runCrlCommand(() => revoke(args)),
};

const renewCommand: CommandModule<object, SigningArgs> = {
  command: 'renew',
  describe:
    'sign the same entries again with a new thisUpdate and nextUpdate: run it daily (exit 0 written, 2 refused: nothing written)',
  builder: (y) =>
    (y as Argv)
      .options(CRL_SIGNING_OPTIONS)
      .example(
        '$0 crl renew --ca-cert /etc/kubernetes/pki/ca.crt --ca-key /etc/kubernetes/pki/ca.key --crl /etc/kubernetes/pki/crl/ca.crl',
        'what deploy/systemd/kube-crl-proxy-crl-renew.timer runs every day',
      ) as unknown as Argv<SigningArgs>,
  handler: (args) => runCrlCommand(() => renew(args)),
};

const listCommand: CommandModule<object, ListArgs> = {
  command: 'list <file>',
  describe: "show a CRL file's entries (serial, date, reason), issuer, number and dates",
  builder: (y) =>
    (y as Argv)
      .positional('file', { type: 'string', describe: 'CRL file (PEM or DER)' })
      .options(CRL_LIST_OPTIONS)
      .example(
        '$0 crl list /etc/kubernetes/pki/crl/ca.crl -o json',
        'the entries as JSON',
      ) as unknown as Argv<ListArgs>,
  handler: (args) => {
    process.exitCode = list(args);
  },
};

export const crlCommand: CommandModule = {
  command: 'crl',
  describe: "issue the CRL of a file-based CA (kubeadm's ca.crt and ca.key): revoke, renew, list",
  builder: (y) =>
    y
      .command(revokeCommand as unknown as CommandModule)
      .command(renewCommand as unknown as CommandModule)
      .command(listCommand as unknown as CommandModule)
      .demandCommand(1, 'give a crl command: revoke, renew or list'),
  handler: () => {},
};

/** Runs a writing command; what it refuses exits 2 with one line, having written nothing. */
async function runCrlCommand(command: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await command();
  } catch (err) {
    if (err instanceof InputError || err instanceof ConfigError) fail(err.message);
    if (err instanceof FileWriteError) fail(`--${CRL}: ${err.message}`);
    throw err;
  }
}

async function revoke(args: RevokeArgs): Promise<number> {
  const signing = signingInputs(args);
  const ca = authority(signing);
  const reason = reasonCode(args.reason);
  const requests: Request[] = [
    ...(args.cert ?? []).map((file) => certificateRequest(file, ca, reason)),
    ...(args.serial ?? []).map((text) => serialRequest('--serial', text, reason)),
    ...(args['serial-file'] === undefined ? [] : serialFileRequests(args['serial-file'], reason)),
  ];
  if (requests.length === 0) fail('crl revoke: give certificate files, --serial or --serial-file');
  const issued = await update(signing.crl, ca, requests, signing.validityMs);
  process.stdout.write(revokeReport(requests, issued) + writtenLine(signing.crl, issued));
  return EXIT_OK;
}

async function renew(args: SigningArgs): Promise<number> {
  const signing = signingInputs(args);
  const ca = authority(signing);
  const issued = await update(signing.crl, ca, [], signing.validityMs);
  process.stdout.write(writtenLine(signing.crl, issued));
  return EXIT_OK;
}

interface SigningInputs {
  readonly authority: { certFile: string; keyFile: string };
  readonly crl: string;
  readonly validityMs: number;
}

function signingInputs(args: SigningArgs): SigningInputs {
  const required = (flag: 'ca-cert' | 'ca-key' | 'crl'): string => {
    const value: unknown = args[flag];
    if (value === undefined || value === '') fail(`--${flag}: is required`);
    if (typeof value !== 'string') fail(`--${flag}: give it once`);
    return value;
  };
  const validityMs = parseDuration('next-update', args['next-update'], { days: true });
  if (validityMs < 1000) fail('--next-update: must be at least 1s');
  return {
    authority: {
      certFile: required('ca-cert'),
      keyFile: required('ca-key'),
    },
    crl: required('crl'),
    validityMs,
  };
}

/** One certificate to revoke, with what names it in the report. */
interface Request extends Revocation {
  readonly label: string;
}

function reasonCode(name: string): number | null {
  return name === 'unspecified' ? null : CRL_REASONS.indexOf(name);
}

/** The first certificate of `file`, which must be one `ca` issued (and not `ca` itself). */
function certificateRequest(file: string, ca: CrlAuthority, reason: number | null): Request {
  let cert: Certificate;
  try {
    const [block] = readBlocksOf('cert', file, ['CERTIFICATE'], 'certificate');
    cert = parseCertificate((block as PemBlock).der);
  } catch (err) {
    fail(`${file}: ${err instanceof InputError ? err.problem : errorMessage(err)}`);
  }
  if (cert.der.equals(ca.cert.der)) fail(`${file}: is --${CA_CERT} itself`);
  if (!cert.x509.checkIssued(ca.cert.x509) || !cert.x509.verify(ca.cert.x509.publicKey)) {
    fail(
      `${file}: "${cert.subject}" (serial ${cert.serial}) was not issued by --${CA_CERT} "${ca.cert.subject}"`,
    );
  }
  return {
    serial: parseSerialText(cert.serial) as Uint8Array,
    reason,
    label: `${file}: ${cert.subject}`,
  };
}

/** `where` names the input in messages: `--serial` or `--serial-file: F: line N`. */
function serialRequest(where: string, text: string, reason: number | null): Request {
  const serial = parseSerialText(text);
  if (serial === null) fail(`${where}: "${text}" is not a hexadecimal serial`);
  if (serial.length > MAX_SERIAL_BYTES) {
    fail(`${where}: "${text}" is longer than ${MAX_SERIAL_BYTES} bytes`);
  }
  return { serial, reason, label: where };
}

function serialFileRequests(file: string, reason: number | null): Request[] {
  let text: string;
  try {
    text = readInput('serial-file', file).toString('utf8');
  } catch (err) {
    if (err instanceof InputError) fail(err.message);
    throw err;
  }
  const requests: Request[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '').trim();
    const where = `--serial-file: ${file}: line ${index + 1}`;
    if (line !== '') requests.push(serialRequest(where, line, reason));
  });
  if (requests.length === 0) fail(`--serial-file: ${file}: holds no serial`);
  return requests;
}

/** Read, extend, sign and replace the CRL, holding its lock throughout. */
function update(
  path: string,
  ca: CrlAuthority,
  revoke: readonly Revocation[],
  validityMs: number,
): Promise<IssuedCrl> {
  return withFileLock(path, () => {
    const bytes = currentBytes(path);
    const current = bytes === null ? null : readCurrentCrl(path, bytes, ca);
    const now = Math.floor(Date.now() / 1000) * 1000;
    const issued = issueCrl(ca, { current, revoke, now, nextUpdate: now + validityMs });
    const out = current?.format === 'der' ? issued.der : Buffer.from(toPem('X509 CRL', issued.der));
    writeFileAtomically(path, out);
    return issued;
  });
}

/** The CRL file's bytes; null when there is none yet. */
function currentBytes(path: string): Buffer | null {
  const target = writeTarget(path);
  try {
    if (statSync(target).isDirectory()) throw new InputError(CRL, path, 'is a directory');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return readInput(CRL, target);
}

/** Lines per entry up to this many; beyond it (a --serial-file), the counts only. */
const MAX_LISTED = 50;

function revokeReport(requests: readonly Request[], issued: IssuedCrl): string {
  const lines: string[] = [];
  if (requests.length <= MAX_LISTED) {
    const added = new Set(issued.added);
    const already = new Map(issued.alreadyListed.map((e) => [e.serial, e.revokedAt]));
    const reported = new Set<string>();
    for (const request of requests) {
      const serial = serialHex(request.serial);
      if (reported.has(serial)) continue;
      reported.add(serial);
      if (added.has(serial)) {
        const reason = request.reason === null ? '' : `, reason ${reasonName(request.reason)}`;
        lines.push(`revoked ${serial} (${request.label})${reason}\n`);
      } else {
        lines.push(
          `already revoked ${serial} (${request.label}) at ${isoTime(already.get(serial) ?? 0)}: its entry is kept as it was\n`,
        );
      }
    }
  }
  lines.push(
    `${issued.added.length} added, ${issued.alreadyListed.length} already listed (their entries kept as they were)\n`,
  );
  return lines.join('');
}

function writtenLine(path: string, issued: IssuedCrl): string {
  const { crl } = issued;
  return `wrote ${path}: CRL number ${issued.crlNumber} of "${crl.issuer}", ${crl.entries.count} ${crl.entries.count === 1 ? 'entry' : 'entries'}, thisUpdate ${isoTime(crl.thisUpdate)}, nextUpdate ${crl.nextUpdate === null ? 'none' : isoTime(crl.nextUpdate)}\n`;
}

export interface CrlListReport {
  readonly file: string;
  readonly crls: readonly {
    readonly issuer: string;
    readonly crlNumber: string | null;
    readonly thisUpdate: string;
    readonly nextUpdate: string | null;
    readonly count: number;
    readonly entries: readonly {
      readonly serial: string;
      readonly revokedAt: string;
      readonly reason: string | null;
    }[];
  }[];
}

function list(args: ListArgs): number {
  const report: CrlListReport = {
    file: args.file,
    crls: readCrls(args.file).map((crl) => ({
      issuer: crl.issuer,
      crlNumber: crl.crlNumber,
      thisUpdate: isoTime(crl.thisUpdate),
      nextUpdate: crl.nextUpdate === null ? null : isoTime(crl.nextUpdate),
      count: crl.entries.count,
      entries: entriesOf(crl),
    })),
  };
  process.stdout.write(
    args.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : listText(report),
  );
  return EXIT_OK;
}

function entriesOf(crl: ParsedCrl): CrlListReport['crls'][number]['entries'] {
  const { count, width, serials, revokedAt, reasons } = crl.entries;
  const out = new Array<CrlListReport['crls'][number]['entries'][number]>(count);
  for (let i = 0; i < count; i++) {
    out[i] = {
      serial: serialHex(serials.subarray(i * width, (i + 1) * width)),
      revokedAt: isoTime(revokedAt[i] as number),
      reason: reasonName(reasons[i] as number),
    };
  }
  return out;
}

function listText(report: CrlListReport): string {
  return report.crls
    .map((crl) => {
      const head = [
        ['issuer', crl.issuer],
        ['CRL number', crl.crlNumber ?? 'none'],
        ['thisUpdate', crl.thisUpdate],
        ['nextUpdate', crl.nextUpdate ?? 'none'],
        ['entries', String(crl.count)],
      ]
        .map(([k, v]) => `  ${`${k}:`.padEnd(13)}${v}\n`)
        .join('');
      if (crl.count === 0) return `${report.file}\n${head}`;
      const width = crl.entries.reduce((w, e) => Math.max(w, e.serial.length), 6);
      const rows = crl.entries
        .map((e) => `  ${e.serial.padEnd(width)}  ${e.revokedAt}  ${e.reason ?? '-'}\n`)
        .join('');
      return `${report.file}\n${head}\n  ${'SERIAL'.padEnd(width)}  ${'REVOKED'.padEnd(20)}  REASON\n${rows}`;
    })
    .join('\n');
}

/** The CA that signs, its warnings (a CA without cRLSign) on stderr. */
function authority(signing: SigningInputs): CrlAuthority {
  const ca = loadAuthority(signing.authority);
  for (const warning of ca.warnings) process.stderr.write(`warning: ${warning}\n`);
  return ca;
}
