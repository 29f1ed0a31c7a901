/**
 * The one header-sanitising function, used by the HTTP/1.1, HTTP/2 and upgrade paths alike:
 * client-supplied identity headers (any case, `_` for `-`) and hop-by-hop headers out, the
 * certificate's identity in.
 */
import type { RequestHeaderNames } from '../config/config.js';
import type { Identity } from '../tls/verify.js';

/** Header name/value pairs in wire order; names as received (any case). */
export type HeaderList = Array<[string, string]>;

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'http2-settings',
]);

/** What identity headers look like, lowercased with `_` read as `-` (proxies differ on that). */
export interface IdentityHeaderRules {
  readonly exact: ReadonlySet<string>;
  readonly prefixes: readonly string[];
  readonly userHeader: string;
  readonly groupHeader: string;
}

/** The configured names plus kube's standard ones, all stripped; the first configured ones set. */
export function identityHeaderRules(names: RequestHeaderNames): IdentityHeaderRules {
  const norm = (n: string) => normalizeName(n);
  const exact = new Set(
    [
      ...names.usernameHeaders,
      ...names.groupHeaders,
      ...names.uidHeaders,
      'X-Remote-User',
      'X-Remote-Group',
      'X-Remote-Uid',
    ].map(norm),
  );
  const prefixes = [...new Set([...names.extraHeadersPrefixes, 'X-Remote-Extra-'].map(norm))];
  return {
    exact,
    prefixes,
    userHeader: names.usernameHeaders[0] as string,
    groupHeader: names.groupHeaders[0] as string,
  };
}

function normalizeName(name: string): string {
  return normalizeLowerName(name.toLowerCase());
}

/** normalizeName of a name already lower-cased (white space is not changed by that). */
function normalizeLowerName(lower: string): string {
  const trimmed = lower.trim();
  return trimmed.includes('_') ? trimmed.replaceAll('_', '-') : trimmed;
}

/** Whether a lower-cased header name is an identity header under `rules`. */
function isIdentityLowerName(rules: IdentityHeaderRules, lower: string): boolean {
  const n = normalizeLowerName(lower);
  if (rules.exact.has(n)) return true;
  for (const prefix of rules.prefixes) if (n.startsWith(prefix)) return true;
  return false;
}

export interface SanitizeOptions {
  /** Keep `Connection: Upgrade` and `Upgrade` (the upgrade path re-sends them). */
  readonly keepUpgrade?: boolean;
  /** Keep `te: trailers` (allowed on HTTP/2). */
  readonly keepTeTrailers?: boolean;
  /** Client address appended to X-Forwarded-For. */
  readonly forwardedFor?: string;
}

/**
 * Returns the headers to send upstream: identity and hop-by-hop headers removed (also those
 * the client listed in Connection), then the identity headers of `identity` appended.
 */
export function sanitizeRequestHeaders(
  headers: HeaderList,
  identity: Identity | null,
  rules: IdentityHeaderRules,
  options: SanitizeOptions = {},
): HeaderList {
  const connectionListed = new Set<string>();
  for (const [name, value] of headers) {
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      for (const token of value.split(',')) connectionListed.add(token.trim().toLowerCase());
    }
  }
  const out: HeaderList = [];
  let forwardedFor: string | null = null;
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (isIdentityLowerName(rules, lower)) continue;
    if (options.keepUpgrade && (lower === 'upgrade' || lower === 'connection')) continue; // re-added below
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'te' && options.keepTeTrailers && value.trim().toLowerCase() === 'trailers')
        out.push([name, value]);
      continue;
    }
    if (connectionListed.has(lower)) continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor === null ? value : `${forwardedFor}, ${value}`;
      continue;
    }
    out.push([name, value]);
  }
  if (options.keepUpgrade) {
    const upgrade = headers.find(([n]) => n.toLowerCase() === 'upgrade');
    if (upgrade !== undefined) out.push(['Connection', 'Upgrade'], ['Upgrade', upgrade[1]]);
  }
  if (options.forwardedFor !== undefined) {
    out.push([
      'X-Forwarded-For',
      forwardedFor === null ? options.forwardedFor : `${forwardedFor}, ${options.forwardedFor}`,
    ]);
  } else if (forwardedFor !== null) {
    out.push(['X-Forwarded-For', forwardedFor]);
  }
  if (identity !== null) {
    out.push([rules.userHeader, headerValue(identity.user)]);
    for (const group of identity.groups) out.push([rules.groupHeader, headerValue(group)]);
  }
  return out;
}

/**
 * Header values are written as latin1 by Node: UTF-8 text is passed as its bytes so the
 * apiserver (Go, which reads header bytes as UTF-8) sees the certificate's exact name.
 */
export function headerValue(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII fast path
  return /^[\u0000-\u007f]*$/.test(text) ? text : Buffer.from(text, 'utf8').toString('latin1');
}

/** Response headers that must not be copied to the client (hop-by-hop). */
export function sanitizeResponseHeaders(headers: HeaderList): HeaderList {
  const connectionListed = new Set<string>();
  for (const [name, value] of headers) {
    if (name.toLowerCase() === 'connection') {
      for (const token of value.split(',')) connectionListed.add(token.trim().toLowerCase());
    }
  }
  return headers.filter(([name]) => {
    const lower = name.toLowerCase();
    return !HOP_BY_HOP.has(lower) && !connectionListed.has(lower);
  });
}

/** Node's rawHeaders ([n0, v0, n1, v1, …]) as pairs. */
export function pairsFromRaw(raw: readonly string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] as string, raw[i + 1] as string]);
  return out;
}
