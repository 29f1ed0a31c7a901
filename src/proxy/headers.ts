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

/** What becomes of one client header on its way upstream. */
const Fate = {
  Keep: 0,
  Drop: 1,
  /** Merged into the X-Forwarded-For the proxy sends. */
  ForwardedFor: 2,
  /** `te`: kept as `te: trailers` where the protocol allows it, otherwise dropped. */
  Te: 3,
} as const;
type Fate = (typeof Fate)[keyof typeof Fate];

/**
 * The decision for one header of a request, by its lower-cased name: identity headers,
 * hop-by-hop headers and the names listed in Connection are dropped.
 */
function fateOf(
  lower: string,
  rules: IdentityHeaderRules,
  connectionListed: ReadonlySet<string>,
  keepUpgrade: boolean,
): Fate {
  if (isIdentityLowerName(rules, lower)) return Fate.Drop;
  if (keepUpgrade && (lower === 'upgrade' || lower === 'connection')) return Fate.Drop; // re-added
  if (HOP_BY_HOP.has(lower)) return lower === 'te' ? Fate.Te : Fate.Drop;
  if (connectionListed.has(lower)) return Fate.Drop;
  if (lower === 'x-forwarded-for') return Fate.ForwardedFor;
  return Fate.Keep;
}

/** The lower-cased, trimmed tokens of a Connection value (several fields joined by commas). */
export function connectionTokens(value: string, into = new Set<string>()): Set<string> {
  if (value === '') return into;
  for (const token of value.split(',')) into.add(token.trim().toLowerCase());
  return into;
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
  return sanitize(
    headers,
    identity === null ? [] : identityHeaders(identity, rules),
    rules,
    options,
  );
}

function sanitize(
  headers: HeaderList,
  identityFields: HeaderList,
  rules: IdentityHeaderRules,
  options: SanitizeOptions,
): HeaderList {
  const connectionListed = new Set<string>();
  for (const [name, value] of headers) {
    if (name.length === 10 && name.toLowerCase() === 'connection')
      connectionTokens(value, connectionListed);
  }
  const keepUpgrade = options.keepUpgrade === true;
  const out: HeaderList = [];
  let forwardedFor: string | null = null;
  for (const [name, value] of headers) {
    switch (fateOf(name.toLowerCase(), rules, connectionListed, keepUpgrade)) {
      case Fate.Keep:
        out.push([name, value]);
        break;
      case Fate.ForwardedFor:
        forwardedFor = joinForwardedFor(forwardedFor, value);
        break;
      case Fate.Te:
        if (options.keepTeTrailers && value.trim().toLowerCase() === 'trailers')
          out.push([name, value]);
        break;
    }
  }
  if (keepUpgrade) {
    const upgrade = headers.find(([n]) => n.toLowerCase() === 'upgrade');
    if (upgrade !== undefined) out.push(['Connection', 'Upgrade'], ['Upgrade', upgrade[1]]);
  }
  if (options.forwardedFor !== undefined) {
    out.push(['X-Forwarded-For', joinForwardedFor(forwardedFor, options.forwardedFor)]);
  } else if (forwardedFor !== null) {
    out.push(['X-Forwarded-For', forwardedFor]);
  }
  for (const field of identityFields) out.push(field);
  return out;
}

/** An X-Forwarded-For list so far (null: none) with `next` appended. */
function joinForwardedFor(sent: string | null, next: string): string {
  return sent === null ? next : `${sent}, ${next}`;
}

/**
 * The identity fields of a certificate; frozen, as a connection shares them by its requests.
 * The values are Go strings held one char per byte, which every path writes as latin1: the
 * apiserver reads back the exact bytes its own x509 parser would have made of the name.
 */
function identityHeaders(identity: Identity, rules: IdentityHeaderRules): HeaderList {
  const fields: HeaderList = [
    [rules.userHeader, identity.user],
    ...identity.groups.map((group): [string, string] => [rules.groupHeader, group]),
  ];
  for (const field of fields) Object.freeze(field);
  return fields;
}

/**
 * What a client connection adds to each request it sends upstream: its address for
 * X-Forwarded-For and the identity of its certificate, made once per connection (and written
 * once as head lines for HTTP/1.1).
 */
export class ConnectionHeaders {
  private readonly identityFields: HeaderList;
  private readonly identityLines: string;
  /** X-Forwarded-For with the client's address alone, then the identity lines. */
  readonly lines: string;

  constructor(
    private readonly remoteAddress: string,
    identity: Identity | null,
    private readonly rules: IdentityHeaderRules,
  ) {
    this.identityFields = identity === null ? [] : identityHeaders(identity, rules);
    let text = '';
    for (const [name, value] of this.identityFields) text += `${name}: ${value}\r\n`;
    this.identityLines = text;
    this.lines = `X-Forwarded-For: ${remoteAddress}\r\n${text}`;
  }

  /** sanitizeRequestHeaders(headers, identity, rules, { forwardedFor: remoteAddress, keepTeTrailers }). */
  fields(headers: HeaderList, keepTeTrailers: boolean): HeaderList {
    return sanitize(headers, this.identityFields, this.rules, {
      keepTeTrailers,
      forwardedFor: this.remoteAddress,
    });
  }

  /**
   * sanitizeRequestHeaders(headers, identity, rules, { forwardedFor: remoteAddress }) written
   * as the lines of an HTTP/1.1 head, without the names the caller writes itself (Host,
   * Content-Length; Transfer-Encoding is hop-by-hop). `connectionListed`: the tokens of the
   * request's Connection fields (the head parser's).
   */
  headLines(headers: HeaderList, connectionListed: ReadonlySet<string>): string {
    let text = '';
    let forwardedFor: string | null = null;
    for (const [name, value] of headers) {
      const lower = name.toLowerCase();
      const fate = fateOf(lower, this.rules, connectionListed, false);
      if (fate === Fate.Keep) {
        if (lower !== 'host' && lower !== 'content-length') text += `${name}: ${value}\r\n`;
      } else if (fate === Fate.ForwardedFor) {
        forwardedFor = joinForwardedFor(forwardedFor, value);
      }
    }
    if (forwardedFor === null) return text + this.lines;
    return `${text}X-Forwarded-For: ${joinForwardedFor(forwardedFor, this.remoteAddress)}\r\n${this.identityLines}`;
  }
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
