/**
 * `kube-crl-proxy check-config [flags]`: the configuration check before binding, as `haproxy
 * -c` and `nginx -t` are. The flags and `--config` are read exactly as the run command reads
 * them; every input is loaded once through the proxy's own loaders; nothing listens.
 *
 * A subcommand rather than a `--check` flag on the run command: a unit's `ExecStartPre=` that
 * lost its flag would start a second proxy that binds the port, whereas a mistyped subcommand
 * is refused by the parser.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import type { Config, CrlUrls, InputFiles } from '../config/config.js';
import { gatherSettings, loadConfig, type Settings } from '../config/sources.js';
import { ConfigError, ConfigErrors, InputError } from '../errors.js';
import { reloadCredentials } from '../pki/credentials.js';
import { denyWarnings, loadDenyFile } from '../pki/deny-list.js';
import { readInput } from '../pki/files.js';
import { readBlocks } from '../pki/pem.js';
import { type CrlUrlSource, evaluateTrust, type TrustData } from '../pki/trust.js';
import { isoTime } from '../time.js';
import { FetchError, fetchCrl } from '../watcher/crl-fetch.js';
import { cachedCopyPath } from '../watcher/crl-url-poller.js';
import { EXIT_CONFIG, EXIT_OK } from './exit.js';
import { commandLine, withRunFlags } from './run-flags.js';

export const checkConfigCommand: CommandModule = {
  command: 'check-config',
  describe:
    'check the configuration and load every input once, as the proxy would at start, without listening; list every problem (exit 0 valid, 2 not)',
  builder: (y: Argv) =>
    withRunFlags(y).example(
      '$0 check-config --config=/etc/kube-crl-proxy/config.yaml',
      "what the unit's ExecStartPre runs before the proxy binds its ports",
    ),
  handler: async (args) => {
    const settings = gatherSettings(commandLine(args, 'check-config', {}));
    process.exitCode = await checkConfig(settings);
  },
};

interface Findings {
  readonly checked: string[];
  readonly warnings: string[];
  /** Each names the flag as typed, or with the --config file its value came from. */
  readonly problems: ConfigError[];
}

async function checkConfig(settings: Settings): Promise<number> {
  let config: Config | null = null;
  let configErrors: readonly ConfigError[] = [];
  try {
    config = loadConfig(settings);
  } catch (err) {
    if (!(err instanceof ConfigErrors)) throw err;
    configErrors = err.errors;
  }
  const findings = await findProblems(settings, config?.crlUrls ?? null, configErrors);
  for (const line of findings.checked) process.stdout.write(`${line}\n`);
  for (const warning of findings.warnings) {
    process.stderr.write(`kube-crl-proxy: warning: ${warning}\n`);
  }
  if (findings.problems.length === 0) {
    process.stdout.write('configuration valid\n');
    return EXIT_OK;
  }
  for (const p of findings.problems) process.stderr.write(`kube-crl-proxy: ${p.message}\n`);
  const count = findings.problems.length;
  process.stderr.write(
    `kube-crl-proxy: ${count} problem${count === 1 ? '' : 's'}; the proxy would not start\n`,
  );
  return EXIT_CONFIG;
}

/**
 * Every problem of a configuration: those of its flags and `--config` file (`configErrors`, from
 * loadConfig), then those of the inputs the flags that passed name, each loaded once through
 * the proxy's own loaders. The --crl-url CRLs are fetched only for a valid configuration
 * (`urls` from its Config).
 */
export async function findProblems(
  settings: Settings,
  urls: CrlUrls | null,
  configErrors: readonly ConfigError[],
): Promise<Findings> {
  const { args } = settings;
  const findings: Findings = { checked: [], warnings: [], problems: [...configErrors] };
  const badFlags = new Set(configErrors.map((err) => err.flag));
  const now = Date.now();
  checkCredentials(inputFiles(args, badFlags), findings, now);
  let caSubjects: readonly string[] = [];
  if (
    !badFlags.has('client-ca-file') &&
    !badFlags.has('crl-file') &&
    !URL_FLAGS.some((f) => badFlags.has(f))
  ) {
    caSubjects = await checkTrust(
      args,
      findings.problems.length === 0 ? urls : null,
      findings,
      now,
    );
  }
  if (!badFlags.has('deny-file'))
    checkDeny(stringArg(args, 'deny-file'), caSubjects, findings, now);
  findings.problems.splice(
    configErrors.length,
    Infinity,
    ...findings.problems.slice(configErrors.length).map((err) => settings.relabel(err)),
  );
  return findings;
}

function stringArg(args: Record<string, unknown>, flag: string): string | null {
  const value = args[flag];
  return typeof value === 'string' && value !== '' ? value : null;
}

/** The credential files named by flags that passed the configuration check. */
function inputFiles(args: Record<string, unknown>, badFlags: ReadonlySet<string>) {
  const file = (flag: string) => (badFlags.has(flag) ? null : stringArg(args, flag));
  return {
    tlsCertFile: file('tls-cert-file'),
    tlsPrivateKeyFile: file('tls-private-key-file'),
    upstreamCaFile: file('upstream-ca-file'),
    proxyClientCertFile: file('proxy-client-cert-file'),
    proxyClientKeyFile: file('proxy-client-key-file'),
  };
}

/**
 * The serving pair, the front-proxy-client pair and the upstream CA, through the proxy's own
 * loader, which checks each input on its own and reports every problem.
 */
function checkCredentials(
  files: ReturnType<typeof inputFiles>,
  findings: Findings,
  now: number,
): void {
  const { tlsCertFile, tlsPrivateKeyFile, upstreamCaFile, proxyClientCertFile } = files;
  const { proxyClientKeyFile } = files;
  if (
    tlsCertFile === null ||
    tlsPrivateKeyFile === null ||
    upstreamCaFile === null ||
    proxyClientCertFile === null ||
    proxyClientKeyFile === null
  ) {
    return;
  }
  const inputs: InputFiles = {
    tlsCertFile,
    tlsPrivateKeyFile,
    upstreamCaFile,
    proxyClientCertFile,
    proxyClientKeyFile,
    clientCaFile: '',
    crlFiles: [],
    denyFile: null,
  };
  const { credentials, problems } = reloadCredentials(inputs, null);
  for (const err of problems) record(findings, err);
  if (credentials === null) return;
  findings.warnings.push(...credentials.warnings);
  const serving = new X509Certificate(credentials.servingCertPem);
  const proxyClient = new X509Certificate(credentials.proxyClientCertPem);
  findings.checked.push(
    `serving: ${tlsCertFile} + ${tlsPrivateKeyFile}: ${describe(serving, findings, now)}`,
    `front-proxy client: ${proxyClientCertFile} + ${proxyClientKeyFile}: ${describe(proxyClient, findings, now)}`,
    `upstream CA: ${upstreamCaFile}: ${certificatesIn(credentials.upstreamCaPem)
      .map((ca) => describe(ca, findings, now))
      .join('; ')}`,
  );
}

/** The flags of --crl-url; when one is refused, the CRLs are not checked. */
const URL_FLAGS = [
  'crl-url',
  'crl-url-ca-file',
  'crl-url-interval',
  'crl-url-timeout',
  'crl-url-max-bytes',
  'crl-cache-dir',
];

/**
 * The client CA bundle and every CRL with the CRL policies, through the proxy's own loader,
 * which checks each CRL source on its own and reports every problem. Each --crl-url is fetched
 * once, with the proxy's limits, into a temporary directory (its cache is left alone); when
 * that fails, its cached copy is checked, as the proxy would start from it. The subjects of the
 * CAs, for the deny file's check.
 */
async function checkTrust(
  args: Record<string, unknown>,
  urls: CrlUrls | null,
  findings: Findings,
  now: number,
): Promise<readonly string[]> {
  const clientCaFile = stringArg(args, 'client-ca-file');
  if (clientCaFile === null) return [];
  const crlFiles = Array.isArray(args['crl-file']) ? (args['crl-file'] as string[]) : [];
  const crlMissingPolicy = args['crl-missing-policy'] === 'allow' ? 'allow' : 'reject';
  const fetched = mkdtempSync(join(tmpdir(), 'kube-crl-proxy-check-'));
  try {
    const crlUrls = urls === null ? [] : await fetchEach(urls, fetched, findings);
    const { data, problems } = evaluateTrust(
      { clientCaFile, crlFiles, crlUrls, crlMissingPolicy },
      null,
      now,
    );
    for (const err of problems) record(findings, err);
    if (data === null) return [];
    findings.checked.push(
      `client CA: ${clientCaFile}: ${data.caDers
        .map((der) => describe(new X509Certificate(der), findings, now))
        .join('; ')}`,
      ...crlLines(data),
    );
    const expiredPolicy = args['crl-expired-policy'] === 'allow' ? 'allow' : 'reject';
    const consequence =
      expiredPolicy === 'reject'
        ? "--crl-expired-policy=reject: its CA's certificates are refused until a fresh CRL is loaded"
        : '--crl-expired-policy=allow: the stale CRL stays in use';
    findings.warnings.push(
      ...data.warnings.map((w) =>
        w.includes('(--crl-expired-policy applies)')
          ? w.replace('(--crl-expired-policy applies)', `(${consequence})`)
          : w,
      ),
    );
    return data.caSubjects;
  } finally {
    rmSync(fetched, { recursive: true, force: true });
  }
}

/**
 * Each URL's CRL as the proxy would read it at start: fetched now, or its cached copy when the
 * fetch fails (a warning); neither is a problem, as it stops the proxy.
 */
async function fetchEach(urls: CrlUrls, dir: string, findings: Findings): Promise<CrlUrlSource[]> {
  let caPem: string | null = null;
  if (urls.caFile !== null) {
    try {
      caPem = readInput('crl-url-ca-file', urls.caFile).toString('utf8');
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      record(findings, err);
    }
  }
  const sources: CrlUrlSource[] = [];
  await Promise.all(
    urls.urls.map(async (url, i) => {
      const destination = join(dir, `${i}.crl`);
      const copy = cachedCopyPath(urls.cacheDir, url);
      try {
        const { timeoutMs, maxBytes } = urls;
        await fetchCrl(url, { caPem, timeoutMs, maxBytes, validators: null, destination });
        sources.push({ url, path: destination });
      } catch (err) {
        if (!(err instanceof FetchError)) throw err;
        if (existsSync(copy)) {
          findings.warnings.push(
            `--crl-url: ${url}: ${err.message}; the proxy would start from its cached copy ${copy}`,
          );
          sources.push({ url, path: copy });
        } else {
          findings.problems.push(
            new ConfigError(
              'crl-url',
              `${url}: ${err.message}, and ${urls.cacheDir} holds no copy of it`,
            ),
          );
        }
      }
    }),
  );
  return urls.urls.flatMap((url) => sources.filter((s) => s.url === url));
}

/** The deny file, through the proxy's own reader. */
function checkDeny(
  file: string | null,
  caSubjects: readonly string[],
  findings: Findings,
  now: number,
): void {
  if (file === null) return;
  try {
    const deny = loadDenyFile(file);
    findings.checked.push(`deny file: ${file}: ${deny.entries.length} entries`);
    findings.warnings.push(...denyWarnings(deny, caSubjects, now));
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    record(findings, err);
  }
}

function record(findings: Findings, err: InputError): void {
  findings.problems.push(err.toConfigError());
}

function crlLines(data: TrustData): string[] {
  return data.crls.map(
    (crl) =>
      `CRL: ${crl.file}: issuer ${crl.issuer}, number ${crl.crlNumber ?? 'none'}, ${crl.entries} revoked, next update ${crl.nextUpdate === null ? 'none' : isoTime(crl.nextUpdate)}`,
  );
}

function certificatesIn(pem: string): X509Certificate[] {
  return readBlocks(Buffer.from(pem), ['CERTIFICATE']).map((b) => new X509Certificate(b.der));
}

/** Subject and validity of a certificate; one outside its validity is also a warning. */
function describe(cert: X509Certificate, findings: Findings, now: number): string {
  const subject = cert.subject.split('\n').join(', ');
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (notAfter < now) findings.warnings.push(`"${subject}" expired at ${isoTime(notAfter)}`);
  if (notBefore > now) {
    findings.warnings.push(`"${subject}" is not valid before ${isoTime(notBefore)}`);
  }
  return `${subject}, expires ${isoTime(notAfter)}`;
}
