/**
 * Authentication exactly as kube-apiserver 1.32 chains it
 * (pkg/kubeapiserver/authenticator/config.go): a union of requestheader, x509 and bearer
 * token authenticators where the first one to find a user wins, errors are collected, and
 * only a chain that found nobody AND raised no error falls back to anonymous
 * (union.NewFailOnError). That last rule is why an untrusted client certificate, or the
 * front-proxy certificate with a CN outside --requestheader-allowed-names, gets 401 and not
 * anonymous.
 */
import { X509Certificate } from 'node:crypto';
import { readBlocks } from '../../pki/pem.js';
import type { FakeApiserverOptions } from './index.js';
import type { AuthenticatedBy, UserInfo } from './types.js';

/** One header line as received: lowercased name, value untouched. */
export type HeaderLine = readonly [name: string, value: string];

export interface RequestHeaderConfig {
  readonly roots: readonly X509Certificate[];
  readonly allowedNames: readonly string[];
  /** All header names below are lowercased. */
  readonly usernameHeaders: readonly string[];
  readonly uidHeaders: readonly string[];
  readonly groupHeaders: readonly string[];
  readonly extraHeadersPrefix: readonly string[];
}

export interface TokenUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
}

export interface AuthenticationConfig {
  readonly clientCARoots: readonly X509Certificate[] | null;
  readonly requestheader: RequestHeaderConfig | null;
  readonly tokens: ReadonlyMap<string, TokenUser>;
  readonly anonymous: boolean;
}

/** The certificates a TLS client presented: its leaf and whatever else it sent. */
export interface ClientCertificate {
  readonly leaf: X509Certificate;
  readonly presented: readonly X509Certificate[];
  /**
   * Chain verdicts per trust bundle (null = verified, else why not), kept with the
   * connection so a connection's certificate is verified once, not per request.
   */
  readonly verdicts: Map<readonly X509Certificate[], string | null>;
}

export type AuthenticationResult =
  | { readonly by: AuthenticatedBy; readonly user: UserInfo }
  | { readonly by: null; readonly reasons: readonly string[] };

type Outcome =
  | { readonly kind: 'user'; readonly by: AuthenticatedBy; readonly user: UserInfo }
  | { readonly kind: 'none' }
  | { readonly kind: 'error'; readonly reason: string };

const NONE: Outcome = { kind: 'none' };
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EKU_ANY = '2.5.29.37.0';
const MAX_INTERMEDIATES = 8;
const ALL_AUTHENTICATED = 'system:authenticated';
const ALL_UNAUTHENTICATED = 'system:unauthenticated';

export const ANONYMOUS_USER: UserInfo = {
  username: 'system:anonymous',
  groups: [ALL_UNAUTHENTICATED],
  extra: {},
};

/** The authenticator chain kube-apiserver would build from the equivalent flags. */
export function authenticationConfig(opts: FakeApiserverOptions): AuthenticationConfig {
  const rh = opts.requestheader;
  return {
    clientCARoots:
      opts.clientCA === undefined ? null : readCertificateBundle(opts.clientCA, 'clientCA'),
    requestheader:
      rh === undefined
        ? null
        : {
            roots: readCertificateBundle(rh.clientCA, 'requestheader.clientCA'),
            allowedNames: rh.allowedNames ?? ['front-proxy-client'],
            usernameHeaders: headerNames(rh.usernameHeaders ?? ['X-Remote-User']),
            uidHeaders: headerNames(rh.uidHeaders ?? []),
            groupHeaders: headerNames(rh.groupHeaders ?? ['X-Remote-Group']),
            extraHeadersPrefix: headerNames(rh.extraHeadersPrefix ?? ['X-Remote-Extra-']),
          },
    tokens: new Map(Object.entries(opts.tokens ?? {})),
    anonymous: opts.anonymousAuth ?? true,
  };
}

/** Header names compare case-insensitively; blank entries are dropped, as kube trims them. */
function headerNames(names: readonly string[]): string[] {
  return names.map((n) => n.trim().toLowerCase()).filter((n) => n !== '');
}

/** Every certificate in a PEM bundle; an empty bundle is a configuration mistake. */
export function readCertificateBundle(pem: string, what: string): X509Certificate[] {
  const certs = readBlocks(Buffer.from(pem), ['CERTIFICATE']).map(
    (block) => new X509Certificate(block.der),
  );
  if (certs.length === 0) throw new Error(`${what}: no CERTIFICATE in the PEM bundle`);
  return certs;
}

export function authenticate(
  config: AuthenticationConfig,
  cert: ClientCertificate | null,
  headers: readonly HeaderLine[],
): AuthenticationResult {
  const errors: string[] = [];
  const steps = [
    () => requestHeaderStep(config.requestheader, cert, headers),
    () => x509Step(config.clientCARoots, cert),
    () => bearerTokenStep(config.tokens, headers),
  ];
  for (const step of steps) {
    const outcome = step();
    if (outcome.kind === 'user')
      return { by: outcome.by, user: withAuthenticatedGroup(outcome.user) };
    if (outcome.kind === 'error') errors.push(outcome.reason);
  }
  if (errors.length > 0) return { by: null, reasons: errors };
  if (!config.anonymous) return { by: null, reasons: ['anonymous requests are disabled'] };
  return { by: 'anonymous', user: ANONYMOUS_USER };
}

/** headerrequest.go behind x509request.Verifier: trust the headers only from the front proxy. */
function requestHeaderStep(
  rh: RequestHeaderConfig | null,
  cert: ClientCertificate | null,
  headers: readonly HeaderLine[],
): Outcome {
  if (rh === null || cert === null) return NONE;
  const chainError = verdict(cert, rh.roots);
  if (chainError !== null) return { kind: 'error', reason: chainError };
  const cn = subjectIdentity(cert.leaf).commonName;
  if (rh.allowedNames.length > 0 && !rh.allowedNames.includes(cn)) {
    return { kind: 'error', reason: `x509: subject with cn=${cn} is not in the allowed list` };
  }
  const username = firstHeaderValue(headers, rh.usernameHeaders);
  if (username === '') return NONE;
  const uid = firstHeaderValue(headers, rh.uidHeaders);
  return {
    kind: 'user',
    by: 'requestheader',
    user: {
      username,
      ...(uid === '' ? {} : { uid }),
      groups: allHeaderValues(headers, rh.groupHeaders),
      extra: extraFromHeaders(headers, rh.extraHeadersPrefix),
    },
  };
}

/** x509.go with CommonNameUserConversion: CN is the user, every O a group. */
function x509Step(
  roots: readonly X509Certificate[] | null,
  cert: ClientCertificate | null,
): Outcome {
  if (roots === null || cert === null) return NONE;
  const chainError = verdict(cert, roots);
  if (chainError !== null) {
    return {
      kind: 'error',
      reason: `verifying certificate serial ${cert.leaf.serialNumber} failed: ${chainError}`,
    };
  }
  const { commonName, organizations } = subjectIdentity(cert.leaf);
  if (commonName === '') return NONE;
  return {
    kind: 'user',
    by: 'x509',
    user: { username: commonName, groups: organizations, extra: {} },
  };
}

/** bearertoken.go: a token nobody recognises is an error (401), not anonymous. */
function bearerTokenStep(
  tokens: ReadonlyMap<string, TokenUser>,
  headers: readonly HeaderLine[],
): Outcome {
  const authorization = firstHeaderValue(headers, ['authorization']).trim();
  if (authorization === '') return NONE;
  const [scheme = '', token = ''] = authorization.split(' ');
  if (scheme.toLowerCase() !== 'bearer' || token === '') return NONE;
  const entry = tokens.get(token);
  if (entry === undefined) return { kind: 'error', reason: 'invalid bearer token' };
  return {
    kind: 'user',
    by: 'token',
    user: {
      username: entry.username,
      ...(entry.uid === undefined ? {} : { uid: entry.uid }),
      groups: [...(entry.groups ?? [])],
      extra: {},
    },
  };
}

/** group.AuthenticatedGroupAdder: everyone authenticated is in system:authenticated. */
function withAuthenticatedGroup(user: UserInfo): UserInfo {
  const marked = user.groups.some((g) => g === ALL_AUTHENTICATED || g === ALL_UNAUTHENTICATED);
  return marked ? user : { ...user, groups: [...user.groups, ALL_AUTHENTICATED] };
}

/** Go's http.Header.Get per configured name: the FIRST line of a name; first non-empty wins. */
function firstHeaderValue(headers: readonly HeaderLine[], names: readonly string[]): string {
  for (const name of names) {
    const line = headers.find(([n]) => n === name);
    if (line !== undefined && line[1] !== '') return line[1];
  }
  return '';
}

/** Every line of every group header, in order; a line is one group even if it has commas. */
function allHeaderValues(headers: readonly HeaderLine[], names: readonly string[]): string[] {
  const values: string[] = [];
  for (const name of names) {
    for (const [n, v] of headers) if (n === name && v !== '') values.push(v);
  }
  return values;
}

function extraFromHeaders(
  headers: readonly HeaderLine[],
  prefixes: readonly string[],
): Record<string, string[]> {
  const extra: Record<string, string[]> = {};
  for (const prefix of prefixes) {
    for (const [name, value] of headers) {
      if (!name.startsWith(prefix)) continue;
      const key = pathUnescape(name.slice(prefix.length));
      extra[key] = [...(extra[key] ?? []), value];
    }
  }
  return extra;
}

/** url.PathUnescape; a malformed escape keeps the raw key, as headerrequest.go does. */
function pathUnescape(encoded: string): string {
  if (/%(?![0-9a-fA-F]{2})/.test(encoded)) return encoded;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    if (encoded[i] === '%') {
      bytes.push(Number.parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(encoded[i] as string, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Subject CN (the last one, as Go's pkix.Name keeps it) and every O in order. */
export function subjectIdentity(cert: X509Certificate): {
  commonName: string;
  organizations: string[];
} {
  // Typed as single strings, but Node gives an array for a repeated attribute (several O).
  const subject = cert.toLegacyObject().subject as unknown as Record<
    string,
    string | string[] | undefined
  >;
  const asList = (v: string | string[] | undefined): string[] =>
    v === undefined ? [] : Array.isArray(v) ? v : [v];
  return { commonName: asList(subject.CN).at(-1) ?? '', organizations: asList(subject.O) };
}

function verdict(cert: ClientCertificate, roots: readonly X509Certificate[]): string | null {
  let known = cert.verdicts.get(roots);
  if (known === undefined) {
    known = verifyClientChain(cert.leaf, cert.presented, roots, Date.now());
    cert.verdicts.set(roots, known);
  }
  return known;
}

/**
 * Go's x509.Certificate.Verify with KeyUsages=[ClientAuth], reduced to what matters here:
 * a path of valid-now certificates, signatures checked, from the leaf through CA
 * intermediates the client sent up to one of `roots`, with no certificate on it that
 * restricts its extended key usage to something other than client auth.
 */
export function verifyClientChain(
  leaf: X509Certificate,
  presented: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  now: number,
): string | null {
  if (!isCurrent(leaf, now)) return 'x509: certificate has expired or is not yet valid';
  if (!allowsClientAuth(leaf)) return 'x509: certificate specifies an incompatible key usage';
  if (roots.some((root) => root.raw.equals(leaf.raw))) return null;
  const intermediates = presented.filter((c) => c.ca && !c.raw.equals(leaf.raw));
  return reachesRoot(leaf, intermediates, roots, now, 0)
    ? null
    : 'x509: certificate signed by unknown authority';
}

function reachesRoot(
  cert: X509Certificate,
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  now: number,
  depth: number,
): boolean {
  const usable = (ca: X509Certificate) =>
    isCurrent(ca, now) && allowsClientAuth(ca) && issuedBy(cert, ca);
  if (roots.some(usable)) return true;
  if (depth >= MAX_INTERMEDIATES) return false;
  return intermediates.some(
    (ca) =>
      usable(ca) &&
      reachesRoot(
        ca,
        intermediates.filter((other) => other !== ca),
        roots,
        now,
        depth + 1,
      ),
  );
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

function isCurrent(cert: X509Certificate, now: number): boolean {
  return Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
}

/** No EKU extension means any usage, as in Go. */
function allowsClientAuth(cert: X509Certificate): boolean {
  const ekus = cert.keyUsage;
  return ekus === undefined || ekus.includes(EKU_CLIENT_AUTH) || ekus.includes(EKU_ANY);
}
