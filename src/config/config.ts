/**
 * Flags + config file → one validated, frozen Config. Nothing deeper re-reads flags.
 * File contents (certificates, CRLs) are validated by pki/ when they are loaded.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Options } from 'yargs';
import { ConfigError, errorMessage } from '../errors.js';
import { REQUIRED_RUN_OPTIONS, RUN_OPTIONS, type RunOptionName } from './options.js';
import { resolveTlsPolicy, type TlsPolicy } from './tls-policy.js';
import { parseYaml } from './yaml.js';

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

/** Reads a `--config` file (YAML or JSON) and checks its keys against the flags. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `cannot read ${path}: ${errorMessage(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text); // YAML is a superset of JSON
  } catch (err) {
    throw new ConfigError(
      'config',
      `${path} is not valid YAML or JSON: ${firstLine(errorMessage(err))}`,
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError('config', `${path} must hold a mapping of flag names to values`);
  }
  for (const key of Object.keys(parsed)) {
    if (!(key in RUN_OPTIONS)) {
      throw new ConfigError(
        'config',
        `${path}: unknown key "${key}" (keys are the flag names, e.g. client-ca-file)`,
      );
    }
  }
  return parsed as Record<string, unknown>;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

/** The default of every flag that has one. */
export function defaultArgs(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, option] of Object.entries(RUN_OPTIONS) as [string, Options][]) {
    if (option.default !== undefined) out[name] = option.default;
  }
  return out;
}

/** Validates flags (kebab-case keys, as yargs or a caller gives them; defaults filled in) into a Config. */
export function resolveConfig(given: Readonly<Record<string, unknown>>): Config {
  const args: Record<string, unknown> = { ...defaultArgs() };
  for (const [name, value] of Object.entries(given)) if (value !== undefined) args[name] = value;
  for (const name of REQUIRED_RUN_OPTIONS) {
    const value = args[name];
    if (value === undefined || value === '') throw new ConfigError(name, 'is required');
  }
  const config: Config = {
    listen: parseHostPort('listen', str(args, 'listen')),
    metricsListen: parseHostPort('metrics-listen', str(args, 'metrics-listen')),
    files: {
      tlsCertFile: str(args, 'tls-cert-file'),
      tlsPrivateKeyFile: str(args, 'tls-private-key-file'),
      clientCaFile: str(args, 'client-ca-file'),
      crlFiles: strList(args, 'crl-file'),
      denyFile: optionalPath(args, 'deny-file'),
      upstreamCaFile: str(args, 'upstream-ca-file'),
      proxyClientCertFile: str(args, 'proxy-client-cert-file'),
      proxyClientKeyFile: str(args, 'proxy-client-key-file'),
    },
    requireClientCert: args['require-client-cert'] === true,
    rejectMode: parseRejectMode(args['reject-mode']),
    tls: resolveTlsPolicy(str(args, 'tls-min-version'), str(args, 'tls-cipher-suites')),
    crlMissingPolicy: oneOf(
      'crl-missing-policy',
      ['reject', 'allow'] as const,
      args['crl-missing-policy'],
    ),
    crlExpiredPolicy: oneOf(
      'crl-expired-policy',
      ['reject', 'allow'] as const,
      args['crl-expired-policy'],
    ),
    crlUrls: resolveCrlUrls(args),
    upstream: parseUpstream(str(args, 'upstream')),
    upstreamPoolSize: parseCount('upstream-pool-size', args['upstream-pool-size'], 0, 64),
    upstreamTimeoutMs: parseDuration('upstream-timeout', str(args, 'upstream-timeout')),
    requestHeaders: {
      usernameHeaders: headerList('requestheader-username-headers', args),
      groupHeaders: headerList('requestheader-group-headers', args),
      extraHeadersPrefixes: headerList('requestheader-extra-headers-prefix', args),
      uidHeaders: headerList('requestheader-uid-headers', args),
    },
    shutdownGraceMs: parseDuration('shutdown-grace', str(args, 'shutdown-grace')),
    limits: {
      tlsHandshakeTimeoutMs: positiveDuration('tls-handshake-timeout', args),
      httpHeaderTimeoutMs: positiveDuration('http-header-timeout', args),
      httpIdleTimeoutMs: positiveDuration('http-idle-timeout', args),
      h2PingIntervalMs: positiveDuration('h2-ping-interval', args),
      maxConnections: parseCount('max-connections', args['max-connections'], 1, 10_000_000),
      maxHeaderBytes: parseCount(
        'max-header-bytes',
        args['max-header-bytes'],
        1024,
        16 * 1024 * 1024,
      ),
      maxHeaderCount: parseCount('max-header-count', args['max-header-count'], 16, 65_536),
      h2MaxConcurrentStreams: parseCount(
        'h2-max-concurrent-streams',
        args['h2-max-concurrent-streams'],
        1,
        1_000_000,
      ),
    },
    workers: parseWorkers(str(args, 'workers')),
    logLevel: oneOf('log-level', ['debug', 'info', 'warn', 'error'] as const, args['log-level']),
  };
  if (
    config.files.crlFiles.length === 0 &&
    config.crlUrls === null &&
    config.crlMissingPolicy === 'reject'
  ) {
    throw new ConfigError(
      'crl-file',
      'no CRL given (--crl-file or --crl-url); every CA of --client-ca-file needs one under --crl-missing-policy=reject (the default)',
    );
  }
  return deepFreeze(config);
}

function str(args: Readonly<Record<string, unknown>>, name: RunOptionName): string {
  const value = args[name];
  if (typeof value === 'number') return String(value);
  if (typeof value !== 'string')
    throw new ConfigError(name, `expected a string, got ${JSON.stringify(value)}`);
  return value;
}

function resolveCrlUrls(args: Readonly<Record<string, unknown>>): CrlUrls | null {
  const urls = strList(args, 'crl-url').map(parseCrlUrl);
  const duplicate = urls.find((url, i) => urls.indexOf(url) !== i);
  if (duplicate !== undefined) throw new ConfigError('crl-url', `${duplicate} is given twice`);
  const caFile = optionalPath(args, 'crl-url-ca-file');
  const cacheDir = optionalPath(args, 'crl-cache-dir');
  const settings = {
    intervalMs: parseDuration('crl-url-interval', str(args, 'crl-url-interval')),
    timeoutMs: parseDuration('crl-url-timeout', str(args, 'crl-url-timeout')),
    maxBytes: parseCount('crl-url-max-bytes', args['crl-url-max-bytes'], 1024, 2 ** 30),
  };
  if (settings.intervalMs < 1000) throw new ConfigError('crl-url-interval', 'must be 1s or more');
  if (settings.timeoutMs <= 0) throw new ConfigError('crl-url-timeout', 'must be longer than 0');
  if (urls.length === 0) return null;
  if (cacheDir === null) {
    throw new ConfigError(
      'crl-cache-dir',
      'is required with --crl-url: the last good CRL of each URL is kept there, so a restart while its server is down still enforces it',
    );
  }
  if (strList(args, 'crl-file').some((path) => resolve(path) === resolve(cacheDir))) {
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

function oneOf<T extends string>(name: string, allowed: readonly T[], value: unknown): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value))
    return value as T;
  throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
}

function parseRejectMode(value: unknown): RejectMode {
  const mode = oneOf('reject-mode', ['alert', 'status', 'close', 'http'] as const, value);
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
