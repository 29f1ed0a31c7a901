/**
 * Authentication and authorization as kube-apiserver 1.32 does them, driven with Node's own
 * HTTP/1.1 and HTTP/2 clients so header lines can repeat exactly as a front proxy sends them.
 */
import assert from 'node:assert/strict';
import { after, before, type TestContext, test } from 'node:test';
import {
  type FakeApiserver,
  type FakeApiserverOptions,
  startFakeApiserver,
} from '../../src/demo/fake-apiserver/index.js';
import { Authority, type IssuedCert } from '../../src/demo/pki-factory.js';
import { makePki, type TestPki } from '../support/pki.js';
import { type ClientOptions, type ClientResponse, requestH1, requestH2 } from './testkit.js';

const SSR_PATH = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
const SSR_BODY = JSON.stringify({
  kind: 'SelfSubjectReview',
  apiVersion: 'authentication.k8s.io/v1',
});
const UNAUTHORIZED = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'Unauthorized',
  reason: 'Unauthorized',
  code: 401,
};

let pki: TestPki;

before(async () => {
  pki = await makePki();
});

after(() => pki?.cleanup());

async function start(
  t: TestContext,
  opts: Partial<FakeApiserverOptions> = {},
): Promise<FakeApiserver> {
  const fake = await startFakeApiserver({
    tls: { cert: pki.apiserver.certPem, key: pki.apiserver.keyPem },
    clientCA: pki.clusterCa.certPem,
    requestheader: { clientCA: pki.frontProxyCa.certPem },
    tokens: { 'tok-1': { username: 'robot', groups: ['bots'] } },
    ...opts,
  });
  t.after(() => fake.close());
  return fake;
}

type Send = (url: string, opts: ClientOptions) => Promise<ClientResponse>;

/** POSTs a SelfSubjectReview and returns the userInfo the fake saw (or the raw answer). */
async function whoami(
  fake: FakeApiserver,
  send: Send,
  cert: IssuedCert | undefined,
  headers: ReadonlyArray<readonly [string, string]> = [],
): Promise<ClientResponse & { userInfo?: unknown }> {
  const res = await send(`${fake.url}${SSR_PATH}`, {
    ca: pki.clusterCa.certPem,
    ...(cert === undefined ? {} : { cert }),
    method: 'POST',
    headers: [['content-type', 'application/json'], ...headers],
    body: SSR_BODY,
  });
  if (res.status !== 201) return res;
  return { ...res, userInfo: JSON.parse(res.body).status.userInfo };
}

const FRONT_PROXY_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['X-Remote-User', 'alice'],
  ['X-Remote-Group', 'devs'],
  ['X-Remote-Group', 'ops, admins'],
  ['X-Remote-Extra-Foo%2Fbar', 'one'],
  ['X-Remote-Extra-Foo%2Fbar', 'two'],
  ['X-Remote-Extra-Scopes', 'view'],
];

const FRONT_PROXY_IDENTITY = {
  username: 'alice',
  groups: ['devs', 'ops, admins', 'system:authenticated'],
  extra: { 'foo/bar': ['one', 'two'], scopes: ['view'] },
};

for (const [protocol, send] of [
  ['http/1.1', requestH1],
  ['h2', requestH2],
] as const) {
  test(`requestheader identity from the front proxy over ${protocol}`, async (t) => {
    const fake = await start(t);
    const res = await whoami(fake, send, pki.frontProxyClient, FRONT_PROXY_HEADERS);
    assert.equal(res.status, 201, res.body);
    assert.deepEqual(res.userInfo, FRONT_PROXY_IDENTITY);
    const seen = await fake.waitForRequest((r) => r.path === SSR_PATH);
    assert.equal(seen.protocol, protocol);
    assert.equal(seen.authenticatedBy, 'requestheader');
    assert.equal(seen.peerCommonName, 'front-proxy-client');
    assert.deepEqual(seen.user, FRONT_PROXY_IDENTITY);
    assert.deepEqual(
      seen.rawHeaders.filter(([name]) => name.startsWith('x-remote-')),
      FRONT_PROXY_HEADERS.map(([name, value]) => [name.toLowerCase(), value]),
    );
  });
}

test('a front-proxy certificate whose CN is not allowed is not trusted for headers', async (t) => {
  const fake = await start(t);
  const impostor = await pki.frontProxyCa.issue({ commonName: 'evil-proxy', usage: 'client' });
  const res = await whoami(fake, requestH1, impostor, FRONT_PROXY_HEADERS);
  // requestheader errors (CN not allowed) and x509 errors (not the client CA): 401, not anonymous.
  assert.equal(res.status, 401);
  assert.deepEqual(JSON.parse(res.body), UNAUTHORIZED);
  const seen = await fake.waitForRequest((r) => r.path === SSR_PATH);
  assert.equal(seen.peerCommonName, 'evil-proxy');
  assert.equal(seen.authenticatedBy, null);
  assert.equal(seen.user, null);
});

test('allowedNames [] trusts any certificate of the requestheader CA', async (t) => {
  const fake = await start(t, {
    requestheader: { clientCA: pki.frontProxyCa.certPem, allowedNames: [] },
  });
  const other = await pki.frontProxyCa.issue({ commonName: 'aggregator', usage: 'client' });
  const res = await whoami(fake, requestH2, other, FRONT_PROXY_HEADERS);
  assert.equal(res.status, 201, res.body);
  assert.deepEqual(res.userInfo, FRONT_PROXY_IDENTITY);
});

test('headers from a client-CA certificate are ignored: the CN is the user', async (t) => {
  const fake = await start(t);
  const user = await pki.clusterCa.issue({ commonName: 'carol', organizations: ['qa'] });
  const res = await whoami(fake, requestH1, user, FRONT_PROXY_HEADERS);
  assert.equal(res.status, 201, res.body);
  assert.deepEqual(res.userInfo, { username: 'carol', groups: ['qa', 'system:authenticated'] });
});

test('the front proxy without a username header falls through to the next authenticators', async (t) => {
  const fake = await start(t);
  const noUser = FRONT_PROXY_HEADERS.filter(([name]) => name !== 'X-Remote-User');
  const unauthenticated = await whoami(fake, requestH1, pki.frontProxyClient, noUser);
  assert.equal(unauthenticated.status, 401);
  // …where a bearer token on the same request still authenticates.
  const withToken = await whoami(fake, requestH1, pki.frontProxyClient, [
    ...noUser,
    ['Authorization', 'Bearer tok-1'],
  ]);
  assert.equal(withToken.status, 201, withToken.body);
  assert.deepEqual(withToken.userInfo, {
    username: 'robot',
    groups: ['bots', 'system:authenticated'],
  });
});

test('custom requestheader names are honoured case-insensitively', async (t) => {
  const fake = await start(t, {
    requestheader: {
      clientCA: pki.frontProxyCa.certPem,
      usernameHeaders: ['X-Proxy-User', 'X-Remote-User'],
      uidHeaders: ['X-Remote-Uid'],
      groupHeaders: ['X-Proxy-Group'],
      extraHeadersPrefix: ['X-Proxy-Extra-'],
    },
  });
  const res = await whoami(fake, requestH2, pki.frontProxyClient, [
    ['x-proxy-user', ''],
    ['X-REMOTE-USER', 'dave'],
    ['X-Remote-Uid', 'u-1'],
    ['X-Proxy-Group', 'g1'],
    ['X-Remote-Group', 'ignored'],
    ['X-Proxy-Extra-Reason', 'audit'],
  ]);
  assert.equal(res.status, 201, res.body);
  assert.deepEqual(res.userInfo, {
    username: 'dave',
    uid: 'u-1',
    groups: ['g1', 'system:authenticated'],
    extra: { reason: ['audit'] },
  });
});

test('x509: a chain through an intermediate the client presents is verified', async (t) => {
  const fake = await start(t);
  const intermediate = await Authority.create({ commonName: 'client-intermediate' }, pki.clusterCa);
  const leaf = await intermediate.issue({ commonName: 'erin', organizations: ['x', 'y'] });
  const chained: IssuedCert = { ...leaf, certPem: leaf.certPem + intermediate.certPem };
  const res = await whoami(fake, requestH1, chained);
  assert.equal(res.status, 201, res.body);
  assert.deepEqual(res.userInfo, { username: 'erin', groups: ['x', 'y', 'system:authenticated'] });
  const alone = await whoami(fake, requestH1, leaf);
  assert.equal(alone.status, 401, 'without its intermediate the leaf does not verify');
});

test('x509: unknown CA, expired, server-only and CN-less certificates get 401', async (t) => {
  const fake = await start(t);
  const rogue = await Authority.create({ commonName: 'rogue-ca' });
  const day = 86_400_000;
  const bad = await Promise.all([
    rogue.issue({ commonName: 'mallory', organizations: ['system:masters'] }),
    pki.clusterCa.issue({
      commonName: 'old',
      notBefore: new Date(Date.now() - 10 * day),
      notAfter: new Date(Date.now() - day),
    }),
    pki.clusterCa.issue({ commonName: 'server-only', usage: 'server' }),
    pki.clusterCa.issue({ organizations: ['no-cn'] }),
  ]);
  for (const cert of bad) {
    const res = await whoami(fake, requestH1, cert);
    assert.equal(res.status, 401, `${cert.x509.subject} must not authenticate`);
    assert.deepEqual(JSON.parse(res.body), UNAUTHORIZED);
  }
  const recorded = fake.requests.filter((r) => r.path === SSR_PATH);
  assert.deepEqual(
    recorded.map((r) => r.peerCommonName),
    ['mallory', 'old', 'server-only', ''],
  );
  assert.ok(recorded.every((r) => r.user === null && r.authenticatedBy === null));
});

test('bearer tokens: known → user, unknown → 401, other schemes → anonymous', async (t) => {
  const fake = await start(t);
  const known = await whoami(fake, requestH2, undefined, [['authorization', 'Bearer tok-1']]);
  assert.equal(known.status, 201);
  assert.deepEqual(known.userInfo, { username: 'robot', groups: ['bots', 'system:authenticated'] });
  const unknown = await whoami(fake, requestH2, undefined, [['authorization', 'Bearer nope']]);
  assert.equal(unknown.status, 401);
  assert.deepEqual(JSON.parse(unknown.body), UNAUTHORIZED);
  const basic = await whoami(fake, requestH2, undefined, [['authorization', 'Basic Zm9vOmJhcg==']]);
  assert.equal(basic.status, 403);
  assert.deepEqual(
    fake.requests.map((r) => r.authenticatedBy),
    ['token', null, 'anonymous'],
  );
});

test('anonymous: 403 Forbidden on resources and discovery, 200 on /version and health', async (t) => {
  const fake = await start(t);
  const get = (path: string) => requestH1(`${fake.url}${path}`, { ca: pki.clusterCa.certPem });
  const pods = await get('/api/v1/pods');
  assert.equal(pods.status, 403);
  assert.deepEqual(JSON.parse(pods.body), {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message:
      'pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" at the cluster scope',
    reason: 'Forbidden',
    details: { kind: 'pods' },
    code: 403,
  });
  const pod = JSON.parse((await get('/api/v1/namespaces/default/pods/demo')).body);
  assert.equal(
    pod.message,
    'pods "demo" is forbidden: User "system:anonymous" cannot get resource "pods" in API group "" in the namespace "default"',
  );
  const api = JSON.parse((await get('/api')).body);
  assert.equal(api.message, 'forbidden: User "system:anonymous" cannot get path "/api"');
  const version = await get('/version');
  assert.equal(version.status, 200);
  assert.equal(JSON.parse(version.body).gitVersion, 'v1.32.4');
  for (const path of ['/healthz', '/livez', '/readyz']) {
    const health = await get(path);
    assert.equal(health.status, 200);
    assert.equal(health.body, 'ok');
  }
  const seen = await fake.waitForRequest((r) => r.path === '/version');
  assert.equal(seen.authenticatedBy, 'anonymous');
  assert.deepEqual(seen.user, {
    username: 'system:anonymous',
    groups: ['system:unauthenticated'],
    extra: {},
  });
});

test('anonymousAuth: false turns the anonymous fallback into 401', async (t) => {
  const fake = await start(t, { anonymousAuth: false });
  const res = await requestH2(`${fake.url}/version`, { ca: pki.clusterCa.certPem });
  assert.equal(res.status, 401);
  assert.deepEqual(JSON.parse(res.body), UNAUTHORIZED);
});
