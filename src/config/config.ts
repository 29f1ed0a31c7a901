/**
 * Flags + config file → one validated, frozen Config. Nothing deeper re-reads flags.
 * File contents (certificates, CRLs) are validated by pki/ when they are loaded.
 */
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Options } from 'yargs';
import { ConfigError, ConfigErrors } from '../errors.js';
import { REQUIRED_RUN_OPTIONS, RUN_OPTIONS, type RunOptionName } from './options.js';
import { resolveTlsPolicy, type TlsPolicy } from './tls-policy.js';

export type Policy = 'reject' | 'allow';
/** How a refused client is told (--reject-mode); `http` is the former name of `status`. */
export type RejectMode = 'alert' | 'status' | 'close';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface UpstreamTarget extends HostPort {
  /** For SNI and certificate hostname checks; IP literals are checked as IP SANs. */
  readonly servername: string;
  readonly url: string;
}

export interface RequestHeaderNames {
  readonly usernameHeaders: readonly string[];
  readonly groupHeaders: readonly string[];
  readonly extraHeadersPrefixes: readonly string[];
  readonly uidHeaders: readonly string[];
}

/** The files the proxy reads, by the flag that named them (watched for changes). */
export interface InputFiles {
  readonly tlsCertFile: string;
  readonly tlsPrivateKeyFile: string;
  readonly clientCaFile: string;
  readonly crlFiles: readonly string[];
  /** null: no deny file. */
  readonly denyFile: string | null;
  readonly upstreamCaFile: string;
  readonly proxyClientCertFile: string;
  readonly proxyClientKeyFile: string;
}

/** --crl-url and its settings. */
export interface CrlUrls {
  /** Each URL as the WHATWG parser writes it (its `href`): the name in logs, metrics and the cache. */
  readonly urls: readonly string[];
  /** CAs of the https:// servers; null when every URL is http://. */
  readonly caFile: string | null;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly cacheDir: string;
}

export interface Limits {
  readonly tlsHandshakeTimeoutMs: number;
  readonly httpHeaderTimeoutMs: number;
  readonly httpIdleTimeoutMs: number;
  readonly h2PingIntervalMs: number;
  readonly maxConnections: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
  readonly h2MaxConcurrentStreams: number;
}

export interface Config {
  readonly listen: HostPort;
  readonly metricsListen: HostPort;
  readonly files: InputFiles;
  readonly requireClientCert: boolean;
  readonly rejectMode: RejectMode;
  /** The client-facing listener's TLS versions and cipher suites. */
  readonly tls: TlsPolicy;
  readonly crlMissingPolicy: Policy;
  readonly crlExpiredPolicy: Policy;
  /** null without --crl-url. */
  readonly crlUrls: CrlUrls | null;
  readonly upstream: UpstreamTarget;
  readonly upstreamPoolSize: number;
  readonly upstreamTimeoutMs: number;
  readonly requestHeaders: RequestHeaderNames;
  readonly shutdownGraceMs: number;
  readonly limits: Limits;
  readonly workers: number;
  readonly logLevel: LogLevel;
}

/** The default of every flag that has one. */
export function defaultArgs(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, option] of Object.entries(RUN_OPTIONS) as [string, Options][]) {
    if (option.default !== undefined) out[name] = option.default;
  }
  return out;
}

/**
 * Validates flags (kebab-case keys, as yargs or a caller gives them; defaults filled in) into a
 * Config, or throws ConfigErrors with every problem found, not only the first.
 */
export function resolveConfig(given: Readonly<Record<string, unknown>>): Config {
  const args: Record<string, unknown> = { ...defaultArgs() };
  for (const [name, value] of Object.entries(given)) if (value !== undefined) args[name] = value;
  const problems: ConfigError[] = [];
  const missing = new Set<string>();
  for (const name of REQUIRED_RUN_OPTIONS) {
    const value = args[name];
    if (value === undefined || value === '') {
      missing.add(name);
      problems.push(new ConfigError(name, 'is required'));
    }
  }
  // A refused field is left undefined: the Config is thrown away when any problem was found.
  const check = <T>(read: () => T): T => {
    try {
      return read();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      if (!missing.has(err.flag)) problems.push(err);
      return undefined as T;
    }
  };
  const config: Config = {
    listen: check(() => parseHostPort('listen', str(args, 'listen'))),
    metricsListen: check(() => parseHostPort('metrics-listen', str(args, 'metrics-listen'))),
    files: {
      tlsCertFile: check(() => str(args, 'tls-cert-file')),
      tlsPrivateKeyFile: check(() => str(args, 'tls-private-key-file')),
      clientCaFile: check(() => str(args, 'client-ca-file')),
      crlFiles: check(() => strList(args, 'crl-file')),
      denyFile: check(() => optionalPath(args, 'deny-file')),
      upstreamCaFile: check(() => str(args, 'upstream-ca-file')),
      proxyClientCertFile: check(() => str(args, 'proxy-client-cert-file')),
      proxyClientKeyFile: check(() => str(args, 'proxy-client-key-file')),
    },
    requireClientCert: args['require-client-cert'] === true,
    rejectMode: check(() => parseRejectMode(args['reject-mode'])),
    tls: check(() =>
      resolveTlsPolicy(str(args, 'tls-min-version'), str(args, 'tls-cipher-suites')),
    ),
    crlMissingPolicy: check(() => oneOf('crl-missing-policy', args['crl-missing-policy'])),
    crlExpiredPolicy: check(() => oneOf('crl-expired-policy', args['crl-expired-policy'])),
    crlUrls: resolveCrlUrls(args, check),
    upstream: check(() => parseUpstream(str(args, 'upstream'))),
    upstreamPoolSize: check(() =>
      parseCount('upstream-pool-size', args['upstream-pool-size'], 0, 64),
    ),
    upstreamTimeoutMs: check(() =>
      parseDuration('upstream-timeout', str(args, 'upstream-timeout')),
    ),
    requestHeaders: {
      usernameHeaders: check(() => headerList('requestheader-username-headers', args)),
      groupHeaders: check(() => headerList('requestheader-group-headers', args)),
      extraHeadersPrefixes: check(() => headerList('requestheader-extra-headers-prefix', args)),
      uidHeaders: check(() => headerList('requestheader-uid-headers', args)),
    },
    shutdownGraceMs: check(() => parseDuration('shutdown-grace', str(args, 'shutdown-grace'))),
    limits: {
      tlsHandshakeTimeoutMs: check(() => positiveDuration('tls-handshake-timeout', args)),
      httpHeaderTimeoutMs: check(() => positiveDuration('http-header-timeout', args)),
      httpIdleTimeoutMs: check(() => positiveDuration('http-idle-timeout', args)),
      h2PingIntervalMs: check(() => positiveDuration('h2-ping-interval', args)),
      maxConnections: check(() =>
        parseCount('max-connections', args['max-connections'], 1, 10_000_000),
      ),
      maxHeaderBytes: check(() =>
        parseCount('max-header-bytes', args['max-header-bytes'], 1024, 16 * 1024 * 1024),
      ),
      maxHeaderCount: check(() =>
        parseCount('max-header-count', args['max-header-count'], 16, 65_536),
      ),
      h2MaxConcurrentStreams: check(() =>
        parseCount('h2-max-concurrent-streams', args['h2-max-concurrent-streams'], 1, 1_000_000),
      ),
    },
    workers: check(() => parseWorkers(str(args, 'workers'))),
    logLevel: check(() => oneOf('log-level', args['log-level'])),
  };
  if (
    config.files.crlFiles?.length === 0 &&
    config.crlUrls === null &&
    config.crlMissingPolicy === 'reject'
  ) {
    problems.push(
      new ConfigError(
        'crl-file',
        'no CRL given (--crl-file or --crl-url); every CA of --client-ca-file needs one under --crl-missing-policy=reject (the default)',
      ),
    );
  }
  if (problems.length > 0) throw new ConfigErrors(problems);
  return deepFreeze(config);
}

type Check = <T>(read: () => T) => T;

function str(args: Readonly<Record<string, unknown>>, name: RunOptionName): string {
  const value = args[name];
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value))
    throw new ConfigError(name, `given ${value.length} times; give it once`);
  if (typeof value !== 'string')
    throw new ConfigError(name, `expected a string, got ${JSON.stringify(value)}`);
  return value;
}

/** --crl-url and its settings; null without a URL, undefined when refused (see check). */
function resolveCrlUrls(args: Readonly<Record<string, unknown>>, check: Check): CrlUrls | null {
  const urls = check(() => strList(args, 'crl-url'))
    ?.map((value) => check(() => parseCrlUrl(value)))
    .filter((url) => url !== undefined);
  const duplicate = urls?.find((url, i) => urls.indexOf(url) !== i);
  if (duplicate !== undefined) {
    check(() => {
      throw new ConfigError('crl-url', `${duplicate} is given twice`);
    });
  }
  const caFile = check(() => optionalPath(args, 'crl-url-ca-file'));
  const cacheDir = check(() => optionalPath(args, 'crl-cache-dir'));
  const settings = {
    intervalMs: check(() => {
      const ms = parseDuration('crl-url-interval', str(args, 'crl-url-interval'));
      if (ms < 1000) throw new ConfigError('crl-url-interval', 'must be 1s or more');
      return ms;
    }),
    timeoutMs: check(() => {
      const ms = parseDuration('crl-url-timeout', str(args, 'crl-url-timeout'));
      if (ms <= 0) throw new ConfigError('crl-url-timeout', 'must be longer than 0');
      return ms;
    }),
    maxBytes: check(() =>
      parseCount('crl-url-max-bytes', args['crl-url-max-bytes'], 1024, 2 ** 30),
    ),
  };
  if (urls === undefined || urls.length === 0) return null;
  return check(() => {
    if (cacheDir === null) {
      throw new ConfigError(
        'crl-cache-dir',
        'is required with --crl-url: the last good CRL of each URL is kept there, so a restart while its server is down still enforces it',
      );
    }
    if (cacheDir === undefined) return undefined as never;
    const crlFiles = Array.isArray(args['crl-file']) ? args['crl-file'] : [args['crl-file']];
    if (crlFiles.some((path) => typeof path === 'string' && resolve(path) === resolve(cacheDir))) {
      throw new ConfigError(
        'crl-cache-dir',
        `${cacheDir} is also a --crl-file directory: the cache holds files that are not CRLs; use a directory of its own`,
      );
    }
    if (caFile === null && urls.some((url) => url.startsWith('https:'))) {
      throw new ConfigError(
        'crl-url-ca-file',
        'is required with an https:// --crl-url: the CRL server is verified against it (system CAs are not used)',
      );
    }
    return { urls, caFile, cacheDir, ...settings };
  });
}

/**
 * An http:// or https:// URL without credentials (it is shown in logs and metrics), as the
 * WHATWG parser writes it, without its fragment: the URL's name everywhere, its cache included.
 */
export function parseCrlUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('crl-url', `"${value}" is not a URL (e.g. http://pki.example/ca.crl)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('crl-url', `${value}: must be http:// or https://, got ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(
      'crl-url',
      `${url.protocol}//…@${url.host}: credentials in the URL would be shown in logs and metrics`,
    );
  }
  url.hash = '';
  return url.href;
}

/** A path flag that may be left out; an empty value (as a --config file can give) is none. */
function optionalPath(args: Readonly<Record<string, unknown>>, name: RunOptionName): string | null {
  const value = args[name];
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') {
    throw new ConfigError(name, `expected a file path, got ${JSON.stringify(value)}`);
  }
  return value;
}

function strList(args: Readonly<Record<string, unknown>>, name: RunOptionName): string[] {
  const value = args[name];
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((item) => {
    if (typeof item !== 'string' || item === '') {
      throw new ConfigError(name, `expected file paths, got ${JSON.stringify(item)}`);
    }
    return item;
  });
}

type ChoiceOption = {
  [K in RunOptionName]: (typeof RUN_OPTIONS)[K] extends { choices: readonly string[] } ? K : never;
}[RunOptionName];
type ChoiceOf<K extends ChoiceOption> = (typeof RUN_OPTIONS)[K]['choices'][number];

/** A flag with a fixed set of values, those declared in options.ts. */
function oneOf<K extends ChoiceOption>(name: K, value: unknown): ChoiceOf<K> {
  const allowed: readonly string[] = RUN_OPTIONS[name].choices;
  if (typeof value === 'string' && allowed.includes(value)) return value as ChoiceOf<K>;
  throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
}

function parseRejectMode(value: unknown): RejectMode {
  const mode = oneOf('reject-mode', value);
  return mode === 'http' ? 'status' : mode;
}

const HEADER_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function headerList(name: RunOptionName, args: Readonly<Record<string, unknown>>): string[] {
  const items = str(args, name)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new ConfigError(name, 'needs at least one header name');
  for (const item of items) {
    if (!HEADER_TOKEN.test(item))
      throw new ConfigError(name, `"${item}" is not a valid header name`);
  }
  return items;
}

/** `host:port`, `[v6]:port`; the host may be a name, an IPv4 or a bracketed IPv6 address. */
export function parseHostPort(name: string, value: string): HostPort {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (match === null || host === undefined || !Number.isInteger(port) || port > 65535) {
    throw new ConfigError(name, `"${value}" is not host:port (e.g. 0.0.0.0:6443 or [::1]:6443)`);
  }
  if (match[1] !== undefined && isIP(host) !== 6) {
    throw new ConfigError(name, `"${host}" is not an IPv6 address`);
  }
  return { host, port };
}

export function parseUpstream(value: string): UpstreamTarget {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('upstream', `"${value}" is not a URL (e.g. https://127.0.0.1:16443)`);
  }
  if (url.protocol !== 'https:') {
    throw new ConfigError(
      'upstream',
      `must be an https:// URL (the apiserver is reached over mTLS), got ${url.protocol}`,
    );
  }
  if (
    url.pathname !== '/' ||
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== ''
  ) {
    throw new ConfigError(
      'upstream',
      `must be scheme://host:port only, without path, query or credentials: "${value}"`,
    );
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? 443 : Number(url.port);
  return { host, port, servername: host, url: `https://${url.host}` };
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Go-style durations as kube flags spell them: 500ms, 30s, 5m, 1h; with `days`, also 7d (for
 * CRL lifetimes, which Go's units make awkward).
 */
export function parseDuration(name: string, value: string, { days = false } = {}): number {
  const match = DURATION.exec(value.trim());
  const unit = match?.[2];
  if (match === null || unit === undefined || (unit === 'd' && !days)) {
    const examples = days ? '7d, 24h, 30m' : '500ms, 30s, 5m';
    throw new ConfigError(name, `"${value}" is not a duration (e.g. ${examples})`);
  }
  return Math.round(Number(match[1]) * (UNIT_MS[unit] as number));
}

/** RFC 3339 date-time: a date, a time, and an explicit offset (no local-time guesses). */
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * An RFC 3339 time as ms since the epoch, or null when it is not one. Fields out of range (a
 * 30 February, a 60th second) are refused, as Go's time.Parse refuses them, rather than rolled
 * over as Date.parse would.
 */
export function parseRfc3339(text: string): number | null {
  const m = RFC3339.exec(text);
  if (m === null) return null;
  const field = (i: number) => Number(m[i] ?? 0);
  const [year, month, day] = [field(1), field(2), field(3)];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth ||
    field(4) > 23 ||
    field(5) > 59 ||
    field(6) > 59 ||
    field(9) > 23 ||
    field(10) > 59
  ) {
    return null;
  }
  const ms = Date.parse(text.replace(' ', 'T').toUpperCase());
  return Number.isNaN(ms) ? null : ms;
}

function positiveDuration(name: RunOptionName, args: Readonly<Record<string, unknown>>): number {
  const ms = parseDuration(name, str(args, name));
  if (ms <= 0) throw new ConfigError(name, 'must be longer than 0');
  return ms;
}

function parseCount(name: string, value: unknown, min: number, max: number): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(
      name,
      `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function parseWorkers(value: string): number {
  if (value === 'auto') return availableParallelism();
  return parseCount('workers', value, 1, 256);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
