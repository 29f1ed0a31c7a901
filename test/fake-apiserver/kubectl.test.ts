/**
 * The real kubectl 1.32.4 against the fake apiserver directly (no proxy): Tables, watches
 * over HTTP/2 and HTTP/1.1, `auth whoami` for certificate and token users.
 */
import assert from 'node:assert/strict';
import { after, before, type TestContext, test } from 'node:test';
import {
  type FakeApiserver,
  type FakeApiserverOptions,
  startFakeApiserver,
} from '../../src/demo/fake-apiserver/index.js';
import { Authority } from '../../src/demo/pki-factory.js';
import { makePki, type TestPki } from '../support/pki.js';
import {
  type KubeconfigUser,
  type KubectlEnv,
  killChild,
  OutputWatcher,
  runKubectl,
  spawnKubectl,
  TempDir,
  writeKubeconfig,
} from './testkit.js';

const TEST_TIMEOUT = 90_000;
let pki: TestPki;

before(async () => {
  pki = await makePki();
});

after(() => pki?.cleanup());

interface Setup {
  readonly fake: FakeApiserver;
  readonly env: KubectlEnv;
}

async function setup(
  t: TestContext,
  user: KubeconfigUser,
  opts: Partial<FakeApiserverOptions> & { http1?: boolean } = {},
): Promise<Setup> {
  const fake = await startFakeApiserver({
    tls: { cert: pki.apiserver.certPem, key: pki.apiserver.keyPem },
    clientCA: pki.clusterCa.certPem,
    requestheader: { clientCA: pki.frontProxyCa.certPem },
    ...opts,
  });
  t.after(() => fake.close());
  const dir = await TempDir.create();
  t.after(() => dir.remove());
  const kubeconfig = await writeKubeconfig(dir, fake.url, pki.clusterCa.certPem, user);
  const env: KubectlEnv = {
    kubeconfig,
    cacheDir: dir.file('cache'),
    home: dir.path,
    ...(opts.http1 === true ? { http1: true } : {}),
  };
  return { fake, env };
}

async function certUser(commonName: string, organizations: string[] = []): Promise<KubeconfigUser> {
  return { cert: await pki.clusterCa.issue({ commonName, organizations, usage: 'client' }) };
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

test('kubectl get nodes prints the server-side Table columns', {
  timeout: TEST_TIMEOUT,
}, async (t) => {
  const { fake, env } = await setup(t, await certUser('alice', ['dev']));
  const r = await runKubectl(env, ['get', 'nodes']);
  assert.equal(r.code, 0, r.stderr);
  const [header, row] = lines(r.stdout);
  assert.match(header ?? '', /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION$/);
  assert.match(row ?? '', /^node-1\s+Ready\s+control-plane\s+\d+s\s+v1\.32\.4$/);
  const list = await fake.waitForRequest((q) => q.path === '/api/v1/nodes');
  const accept = list.rawHeaders.find(([n]) => n === 'accept')?.[1] ?? '';
  assert.match(accept, /as=Table;v=v1;g=meta\.k8s\.io/);
  assert.equal(list.protocol, 'h2');
  assert.equal(list.authenticatedBy, 'x509');
});

test('kubectl get pods prints READY, STATUS and RESTARTS', { timeout: TEST_TIMEOUT }, async (t) => {
  const { fake, env } = await setup(t, await certUser('alice', ['dev']));
  fake.addPod('starting', { phase: 'Pending', containers: ['app', 'sidecar'] });
  const r = await runKubectl(env, ['get', 'pods']);
  assert.equal(r.code, 0, r.stderr);
  const [header, ...rows] = lines(r.stdout);
  assert.match(header ?? '', /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
  assert.match(rows[0] ?? '', /^demo\s+1\/1\s+Running\s+0\s+\d+s$/);
  assert.match(rows[1] ?? '', /^starting\s+0\/2\s+ContainerCreating\s+0\s+\d+s$/);
  const missing = await runKubectl(env, ['get', 'pod', 'nope']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Error from server \(NotFound\): pods "nope" not found/);
});

async function watchShowsLaterEvents(t: TestContext, http1: boolean): Promise<void> {
  const { fake, env } = await setup(t, await certUser('alice', ['dev']), { http1 });
  const child = spawnKubectl(env, ['get', 'pods', '--watch', '--output-watch-events']);
  t.after(() => killChild(child));
  const out = new OutputWatcher(child);
  await out.waitFor(/^ADDED\s+demo\s+1\/1\s+Running/);
  const watch = await fake.waitForRequest(
    (q) => q.path === '/api/v1/namespaces/default/pods' && /(^|&)watch=true(&|$)/.test(q.query),
    20_000,
  );
  assert.equal(watch.protocol, http1 ? 'http/1.1' : 'h2');
  assert.match(watch.query, /resourceVersion=\d+/);
  // Both changes happen after kubectl's watch is open, so they must be streamed, not replayed.
  fake.addPod('web');
  await out.waitFor(/^ADDED\s+web\s+1\/1\s+Running/);
  fake.setPodPhase('demo', 'Succeeded');
  await out.waitFor(/^MODIFIED\s+demo\s+0\/1\s+Completed/);
  assert.equal(lines(out.output).filter((l) => /^ADDED\s+demo/.test(l)).length, 1);
}

test('kubectl get pods -w streams ADDED and MODIFIED over HTTP/2', { timeout: TEST_TIMEOUT }, (t) =>
  watchShowsLaterEvents(t, false),
);

test(
  'kubectl get pods -w streams ADDED and MODIFIED over HTTP/1.1 (DISABLE_HTTP2)',
  { timeout: TEST_TIMEOUT },
  (t) => watchShowsLaterEvents(t, true),
);

test('kubectl auth whoami shows the x509 CN and every O', { timeout: TEST_TIMEOUT }, async (t) => {
  const { fake, env } = await setup(t, await certUser('jane', ['team-a', 'ops, admins', 'team-b']));
  const r = await runKubectl(env, ['auth', 'whoami', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const review = JSON.parse(r.stdout);
  assert.equal(review.kind, 'SelfSubjectReview');
  assert.deepEqual(review.status.userInfo, {
    username: 'jane',
    groups: ['team-a', 'ops, admins', 'team-b', 'system:authenticated'],
  });
  const post = await fake.waitForRequest((q) => q.path.endsWith('/selfsubjectreviews'));
  assert.equal(post.method, 'POST');
  assert.equal(post.peerCommonName, 'jane');
});

test('kubectl auth whoami with a static bearer token', { timeout: TEST_TIMEOUT }, async (t) => {
  const { fake, env } = await setup(
    t,
    { token: 'token-for-bob' },
    { tokens: { 'token-for-bob': { username: 'bob', uid: 'uid-42', groups: ['builders'] } } },
  );
  const r = await runKubectl(env, ['auth', 'whoami', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).status.userInfo, {
    username: 'bob',
    uid: 'uid-42',
    groups: ['builders', 'system:authenticated'],
  });
  const post = await fake.waitForRequest((q) => q.path.endsWith('/selfsubjectreviews'));
  assert.equal(post.authenticatedBy, 'token');
  assert.equal(post.peerCommonName, null);
});

test('kubectl with a certificate from an unknown CA is not authenticated', {
  timeout: TEST_TIMEOUT,
}, async (t) => {
  const rogue = await Authority.create({ commonName: 'rogue-ca' });
  const cert = await rogue.issue({ commonName: 'mallory', organizations: ['system:masters'] });
  const { fake, env } = await setup(t, { cert });
  const r = await runKubectl(env, ['get', '--raw', '/api/v1/pods']);
  assert.equal(r.code, 1);
  // client-go presents its certificate whatever CAs the server lists (GetClientCertificate),
  // and an untrusted certificate is an authentication error, not anonymous: 401.
  assert.match(r.stderr, /error: You must be logged in to the server \(Unauthorized\)/);
  const seen = await fake.waitForRequest((q) => q.path === '/api/v1/pods');
  assert.equal(seen.peerCommonName, 'mallory');
  assert.equal(seen.authenticatedBy, null);
  assert.equal(seen.user, null);
});
