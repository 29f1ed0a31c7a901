/**
 * `kube-crl-proxy check-cert CERT`: would the proxy accept this client certificate now (or at
 * `--at`), and if not, why — the same reason and message a client would get in its 401 Status.
 *
 * Nothing is re-implemented: the trust inputs load through the proxy's own loadTrustData (so a
 * configuration the proxy would refuse is refused here too, exit 2), the handshake's chain
 * check is done offline (tls/offline-chain.ts) and its result goes through the proxy's own
 * verifyPeer, which maps it and runs the CA, validity, CRL, deny-file and identity checks.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import type { Argv, CommandModule } from 'yargs';
import { type Policy, parseCrlUrl } from '../config/config.js';
import { RUN_OPTIONS } from '../config/options.js';
import { toYaml } from '../config/yaml.js';
import { ConfigError, errorMessage, InputError } from '../errors.js';
import { parseCertificate, readCertificateFields } from '../pki/certificate.js';
import { DenyList, denyWarnings, loadDenyFile } from '../pki/deny-list.js';
import { readBlocksOf } from '../pki/files.js';
import { goStringText, quoteGoString } from '../pki/names.js';
import { type CrlUrlSource, loadTrustData, type TrustData } from '../pki/trust.js';
import { TrustStore } from '../pki/trust-store.js';
import { isoTime } from '../time.js';
import { verifyChainOffline } from '../tls/offline-chain.js';
import { type Handshake, type Identity, type Verdict, verifyPeer } from '../tls/verify.js';
import { cachedCopyPath } from '../watcher/crl-url-poller.js';
import { EXIT_NO, EXIT_OK, fail } from './exit.js';
import {
  AT_OPTION,
  configFileKeys,
  INSPECTION_GROUP,
  OUTPUT_OPTION,
  type OutputFormat,
  parseAt,
} from './inspect-common.js';

/** The flags of the proxy that decide a certificate's fate, shared with `run` and `--config`. */
const TRUST_KEYS = [
  'client-ca-file',
  'crl-file',
  'crl-url',
  'crl-cache-dir',
  'crl-missing-policy',
  'crl-expired-policy',
  'deny-file',
];

export const CHECK_CERT_OPTIONS = {
  'client-ca-file': {
    ...RUN_OPTIONS['client-ca-file'],
    describe: 'PEM bundle of the CAs that sign client certificates (as the proxy uses it)',
  },
  'crl-file': RUN_OPTIONS['crl-file'],
  'crl-url': {
    ...RUN_OPTIONS['crl-url'],
    describe:
      "the proxy's --crl-url: the last good copy the proxy keeps in --crl-cache-dir is read (nothing is fetched); repeatable",
  },
  'crl-cache-dir': {
    ...RUN_OPTIONS['crl-cache-dir'],
    describe: "the proxy's --crl-cache-dir, where the copies of the --crl-url CRLs are",
  },
  'crl-missing-policy': RUN_OPTIONS['crl-missing-policy'],
  'crl-expired-policy': RUN_OPTIONS['crl-expired-policy'],
  'deny-file': {
    ...RUN_OPTIONS['deny-file'],
    describe: "the proxy's deny file: a certificate it names is refused (reason denied)",
  },
  at: AT_OPTION,
  output: OUTPUT_OPTION,
  config: {
    type: 'string',
    group: INSPECTION_GROUP,
    describe: `the proxy's --config file: ${TRUST_KEYS.join(', ')} are read from it (flags override it)`,
  },
} as const;

/** `--output json`: one object; these fields are stable (documented in docs/cli.md). */
export const CHECK_CERT_JSON_FIELDS: Readonly<Record<string, string>> = {
  outcome: '"accepted" or "refused"',
  reason:
    "null when accepted; else the proxy's reason, as in the metric label (revoked, unknown_ca, cert_expired, cert_not_yet_valid, crl_missing, crl_expired, invalid_purpose, invalid_cert, invalid_identity, denied)",
  message: 'null when accepted; else the message of the 401 Status a client would get',
  identity:
    'null when refused; else { user, groups }: what the apiserver would see (X-Remote-User, one X-Remote-Group per group); a byte that is not part of valid UTF-8 (a T61String above 0x7F) is written as U+FFFD here and as \\xHH in the text output',
  certificate:
    '{ file, subject, issuer, serial (uppercase hex), notBefore, notAfter (RFC 3339), sha256Fingerprint, spkiSha256 (lowercase hex: the SHA-256 of the SubjectPublicKeyInfo DER, as a --deny-file spki entry takes it) }',
  checkedAt: 'the time of the check (RFC 3339): now, or --at',
  clientCaFile: 'the CA bundle used',
  crls: 'every CRL loaded: [{ file, issuer, crlNumber (decimal string or null), thisUpdate, nextUpdate (or null), entries }]',
  denyFile: 'the deny file used, or null',
  warnings: 'what the proxy would log as warnings while loading these inputs',
};

interface CheckCertArgs {
  readonly cert: string;
  readonly 'client-ca-file'?: string;
  readonly 'crl-file': string[];
  readonly 'crl-url': string[];
  readonly 'crl-cache-dir'?: string;
  readonly 'crl-missing-policy': Policy;
  readonly 'crl-expired-policy': Policy;
  readonly 'deny-file'?: string;
  readonly at?: string;
  readonly output: OutputFormat;
}

export const checkCertCommand: CommandModule<object, CheckCertArgs> = {
  command: 'check-cert <cert>',
  describe:
    'would the proxy accept this client certificate, and as whom; if not, why (exit 0 accepted, 1 refused, 2 bad input)',
  builder: (y) =>
    (y as Argv)
      .positional('cert', {
        type: 'string',
        describe: 'client certificate (PEM or DER), optionally followed by its intermediates',
      })
      .config('config', (path: string) => configFileKeys(path, TRUST_KEYS))
      // After .config(), which would otherwise replace the help text and group of --config.
      .options(CHECK_CERT_OPTIONS)
      .example(
        '$0 check-cert alice.crt --client-ca-file=/etc/kubernetes/pki/ca.crt --crl-file=/etc/kubernetes/pki/crl/',
        'is alice.crt accepted right now?',
      )
      .example(
        '$0 check-cert alice.crt --config=/etc/kube-crl-proxy/config.yaml --at=2027-01-01T00:00:00Z -o json',
        'the same inputs as the running proxy, one year ahead, as JSON',
      ) as unknown as Argv<CheckCertArgs>,
  handler: (args) => {
    process.exitCode = checkCert(args);
  },
};

function checkCert(args: CheckCertArgs): number {
  const now = parseAt(args.at);
  const certs = readClientCertificates(args.cert);
  const leaf = certs[0] as X509Certificate;
  const trust = loadTrust(args, now);
  const deny = loadDeny(args['deny-file']);
  const chain = verifyChainOffline({
    leaf,
    untrusted: certs.slice(1),
    trusted: trust.entries.map((e) => e.cert.x509),
    now,
  });
  const verdict = verifyPeer(
    handshakeResult(leaf, chain.error),
    trust,
    deny,
    {
      requireClientCert: true,
      crlMissingPolicy: args['crl-missing-policy'],
      crlExpiredPolicy: args['crl-expired-policy'],
    },
    now,
  );
  const report = reportOf(args.cert, leaf, verdict, trust.data, deny, now);
  process.stdout.write(
    args.output === 'json'
      ? `${JSON.stringify(report, null, 2)}\n`
      : text(report, verdict.outcome === 'accepted' ? verdict.identity : null),
  );
  return report.outcome === 'accepted' ? EXIT_OK : EXIT_NO;
}

/** The CA bundle and CRLs exactly as the proxy loads them; what it would refuse exits 2. */
function loadTrust(args: CheckCertArgs, now: number): TrustStore {
  const clientCaFile: unknown = args['client-ca-file'];
  if (clientCaFile === undefined || clientCaFile === '') {
    fail("--client-ca-file: is required (or give the proxy's --config)");
  }
  if (typeof clientCaFile !== 'string') fail('--client-ca-file: give it once, as one file');
  try {
    const inputs = {
      clientCaFile,
      crlFiles: args['crl-file'],
      crlUrls: cachedCopies(args),
      crlMissingPolicy: args['crl-missing-policy'],
    };
    return new TrustStore(loadTrustData(inputs, null, now));
  } catch (err) {
    if (err instanceof InputError) fail(`the proxy would not start: ${err.message}`);
    throw err;
  }
}

/** The copies of the --crl-url CRLs the proxy keeps (the proxy's last good CRL of each). */
function cachedCopies(args: CheckCertArgs): CrlUrlSource[] {
  const urls = args['crl-url'];
  if (urls.length === 0) return [];
  const dir = args['crl-cache-dir'];
  if (dir === undefined || dir === '') fail('--crl-cache-dir: is required with --crl-url');
  try {
    return urls.map(parseCrlUrl).map((url) => ({ url, path: cachedCopyPath(dir, url) }));
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

/** The deny list exactly as the proxy loads it; a file it would refuse exits 2. */
function loadDeny(file: string | undefined): DenyList {
  if (file === undefined || file === '') return DenyList.EMPTY;
  try {
    return new DenyList(loadDenyFile(file));
  } catch (err) {
    if (err instanceof InputError) fail(`the proxy would not start: ${err.message}`);
    throw err;
  }
}

function readClientCertificates(file: string): X509Certificate[] {
  try {
    return readBlocksOf('cert', file, ['CERTIFICATE'], 'certificate').map(
      (block) => parseCertificate(block.der).x509,
    );
  } catch (err) {
    fail(
      `${file}: ${err instanceof InputError ? err.problem : `unreadable certificate: ${errorMessage(err)}`}`,
    );
  }
}

/**
 * What verifyPeer reads from a TLS handshake: the peer certificate and OpenSSL's chain result.
 * Here the chain result comes from the offline check.
 */
function handshakeResult(leaf: X509Certificate, chainError: string | null): Handshake {
  return {
    peerCertificate: leaf.raw,
    authorized: chainError === null,
    authorizationError: chainError,
  };
}

export interface CheckCertReport {
  readonly outcome: 'accepted' | 'refused';
  readonly reason: string | null;
  readonly message: string | null;
  readonly identity: { readonly user: string; readonly groups: readonly string[] } | null;
  readonly certificate: {
    readonly file: string;
    readonly subject: string;
    readonly issuer: string;
    readonly serial: string;
    readonly notBefore: string;
    readonly notAfter: string;
    readonly sha256Fingerprint: string;
    readonly spkiSha256: string;
  };
  readonly checkedAt: string;
  readonly clientCaFile: string;
  readonly crls: readonly {
    readonly file: string;
    readonly issuer: string;
    readonly crlNumber: string | null;
    readonly thisUpdate: string;
    readonly nextUpdate: string | null;
    readonly entries: number;
  }[];
  readonly denyFile: string | null;
  readonly warnings: readonly string[];
}

function reportOf(
  file: string,
  leaf: X509Certificate,
  verdict: Verdict,
  data: TrustData,
  deny: DenyList,
  now: number,
): CheckCertReport {
  const cert = parseCertificate(leaf.raw);
  return {
    outcome: verdict.outcome === 'accepted' ? 'accepted' : 'refused',
    reason: verdict.outcome === 'rejected' ? verdict.reason : null,
    message: verdict.outcome === 'rejected' ? verdict.message : null,
    identity:
      verdict.outcome === 'accepted'
        ? {
            user: goStringText(verdict.identity.user),
            groups: verdict.identity.groups.map(goStringText),
          }
        : null,
    certificate: {
      file,
      subject: cert.subject,
      issuer: cert.issuer,
      serial: cert.serial,
      notBefore: isoTime(cert.notBefore),
      notAfter: isoTime(cert.notAfter),
      sha256Fingerprint: cert.fingerprint256,
      spkiSha256: createHash('sha256')
        .update(readCertificateFields(cert.der).subjectPublicKeyInfo)
        .digest('hex'),
    },
    checkedAt: isoTime(now),
    clientCaFile: data.clientCaFile,
    crls: data.crls.map((crl) => ({
      file: crl.file,
      issuer: crl.issuer,
      crlNumber: crl.crlNumber,
      thisUpdate: isoTime(crl.thisUpdate),
      nextUpdate: crl.nextUpdate === null ? null : isoTime(crl.nextUpdate),
      entries: crl.entries,
    })),
    denyFile: deny.data?.file ?? null,
    warnings: [
      ...data.warnings,
      ...(deny.data === null ? [] : denyWarnings(deny.data, data.caSubjects, now)),
    ],
  };
}

/** `identity` as the proxy forwards it (Go strings), quoted so two names never print alike. */
function text(report: CheckCertReport, identity: Identity | null): string {
  const head =
    identity !== null
      ? `accepted: forwarded as user ${quoteGoString(identity.user)}${groupsText(identity.groups)}\n`
      : `refused (${report.reason}): ${report.message}\n`;
  const details = toYaml({
    certificate: report.certificate,
    checkedAt: report.checkedAt,
    clientCaFile: report.clientCaFile,
    crls: report.crls,
    ...(report.denyFile === null ? {} : { denyFile: report.denyFile }),
  });
  const warnings = report.warnings.map((w) => `warning: ${w}\n`).join('');
  return `${head}${warnings}${indent(details)}`;
}

function groupsText(groups: readonly string[]): string {
  return groups.length === 0
    ? ' with no groups'
    : ` with groups ${groups.map(quoteGoString).join(', ')}`;
}

function indent(block: string): string {
  return block
    .trimEnd()
    .split('\n')
    .map((line) => `  ${line}\n`)
    .join('');
}
