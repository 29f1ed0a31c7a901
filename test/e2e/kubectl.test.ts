/**
 * End to end with the real kubectl: kubectl → kube-crl-proxy (the real binary) → the fake
 * kube-apiserver. Identity assertions are on what the fake recorded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import {
  type KubectlEnv,
  killChild,
  newKubectlEnv,
  OutputWatcher,
  requestH1,
  requestH2,
  runKubectl,
  spawnKubectl,
  TempDir,
} from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import type { ProxyProcess } from '../support/proxy-process.js';

const TOKEN = 'robot-token-0123456789';

const cluster = new TestCluster({
  aliceGroups: ['dev', 'ops'],
  apiserver: () => ({
    tokens: {
      [TOKEN]: {
        username: 'system:serviceaccount:default:robot',
        groups: ['system:serviceaccounts'],
      },
    },
  }),
});
let proxy: ProxyProcess;
/** The same with --reject-mode=status: refused clients get the 401 Status for their request. */
let statusProxy: ProxyProcess;
let tmp: TempDir;
let mallory: IssuedCert;
let eve: IssuedCert;

before(async () => {
  await cluster.start();
  tmp = await TempDir.create('kcp-e2e-');
  mallory = await cluster.pki.user('mallory', ['dev']);
  const { Authority } = await import('../../src/demo/pki-factory.js');
  eve = await (await Authority.create({ commonName: 'kubernetes' })).issue({
    commonName: 'eve',
    organizations: ['system:masters'],
  });
  cluster.pki.writeCrl({
    revoked: [{ serial: mallory.serial, revokedAt: new Date('2026-11-01T00:00:00Z') }],
    crlNumber: 2,
  });
  [proxy, statusProxy] = await Promise.all([
    cluster.proxy(),
    cluster.proxy(['--reject-mode=status']),
  ]);
});

after(async () => {
  await tmp?.remove();
  await cluster.stop();
});

/** `kubectl auth whoami -o json` as `user`: the identity the apiserver reports. */
async function whoami(user: {
  cert?: IssuedCert;
  token?: string;
}): Promise<{ username: string; groups: string[] }> {
  const result = await runKubectl(await kubectlEnv(user), ['auth', 'whoami', '-o', 'json']);
  assert.equal(result.code, 0, result.stderr);
  const review = JSON.parse(result.stdout) as {
    status: { userInfo: { username: string; groups: string[] } };
  };
  return review.status.userInfo;
}

function kubectlEnv(
  user: { cert?: IssuedCert; token?: string },
  options: { cacheDir?: string; http1?: boolean; server?: ProxyProcess } = {},
): Promise<KubectlEnv> {
  return newKubectlEnv(
    tmp,
    (options.server ?? proxy).url,
    cluster.pki.clusterCa.certPem,
    user,
    options,
  );
}

const requestsSince = (mark: number) => cluster.fake.requests.slice(mark);

describe('kubectl through kube-crl-proxy', () => {
  test('get nodes arrives as the certificate user with every O as a group', async () => {
    const mark = cluster.fake.requests.length;
    const result = await runKubectl(await kubectlEnv({ cert: cluster.alice }), ['get', 'nodes']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION/m);
    const list = requestsSince(mark).find((r) => r.path === '/api/v1/nodes');
    assert.ok(list, 'the fake saw the list request');
    assert.equal(list.authenticatedBy, 'requestheader');
    assert.equal(list.peerCommonName, 'front-proxy-client');
    assert.equal(list.user?.username, 'alice');
    assert.deepEqual(list.user?.groups, ['dev', 'ops', 'system:authenticated']);
    assert.equal(list.protocol, 'h2');
  });

  test('auth whoami -o json shows the CN and every O', async () => {
    const userInfo = await whoami({ cert: cluster.alice });
    assert.equal(userInfo.username, 'alice');
    assert.deepEqual(userInfo.groups, ['dev', 'ops', 'system:authenticated']);
  });

  for (const http1 of [false, true]) {
    test(`get pods -w shows events as they happen (${http1 ? 'HTTP/1.1' : 'HTTP/2'})`, async (t) => {
      const env = await kubectlEnv({ cert: cluster.alice }, { http1 });
      const child = spawnKubectl(env, ['get', 'pods', '-w']);
      t.after(() => killChild(child));
      const output = new OutputWatcher(child);
      await output.waitFor(/^demo\s/);
      const watch = await cluster.fake.waitForRequest(
        (r) =>
          r.query.includes('watch=') &&
          r.user?.username === 'alice' &&
          r.protocol === (http1 ? 'http/1.1' : 'h2'),
        15_000,
      );
      assert.equal(watch.authenticatedBy, 'requestheader');
      const name = `pod-${http1 ? 'h1' : 'h2'}-${Date.now()}`;
      cluster.fake.addPod(name, { phase: 'Pending' });
      await output.waitFor(new RegExp(`^${name}\\s+0/1\\s+`));
      cluster.fake.setPodPhase(name, 'Running');
      await output.waitFor(new RegExp(`^${name}\\s+\\S+\\s+Running`));
    });
  }

  test('a revoked certificate: kubectl prints the TLS alert, and nothing reaches the apiserver', async () => {
    const mark = cluster.fake.requests.length;
    const result = await runKubectl(await kubectlEnv({ cert: mallory }), ['get', 'pods']);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^Unable to connect to the server: remote error: tls: revoked certificate$/m,
    );
    assert.deepEqual(requestsSince(mark), [], 'nothing reached the apiserver');
  });

  test('--reject-mode=status, a revoked certificate: kubectl shows the revocation when it skips discovery', async () => {
    const mark = cluster.fake.requests.length;
    const result = await runKubectl(await kubectlEnv({ cert: mallory }, { server: statusProxy }), [
      'get',
      '--raw',
      '/api/v1/namespaces/default/pods',
    ]);
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      new RegExp(
        `client certificate revoked \\(serial ${mallory.serial}, issuer CN=kubernetes, revoked 2026-11-01T00:00:00Z\\)`,
      ),
    );
    assert.deepEqual(requestsSince(mark), [], 'nothing reached the apiserver');
  });

  test('--reject-mode=status, a revoked certificate: cold cache shows the generic message, warm cache the reason', async () => {
    const cold = await runKubectl(await kubectlEnv({ cert: mallory }, { server: statusProxy }), [
      'get',
      'pods',
    ]);
    assert.notEqual(cold.code, 0);
    assert.match(cold.stderr, /You must be logged in to the server/);
    // A returning user: discovery is cached (filled here by a good user on the same server).
    const cacheDir = tmp.file('shared-cache');
    const warmup = await runKubectl(
      await kubectlEnv({ cert: cluster.alice }, { cacheDir, server: statusProxy }),
      ['get', 'pods'],
    );
    assert.equal(warmup.code, 0, warmup.stderr);
    const warm = await runKubectl(
      await kubectlEnv({ cert: mallory }, { cacheDir, server: statusProxy }),
      ['get', 'pods'],
    );
    assert.notEqual(warm.code, 0);
    assert.match(
      warm.stderr,
      /error: You must be logged in to the server \(client certificate revoked \(serial [0-9A-F]+, issuer CN=kubernetes, revoked [0-9T:-]+Z\)\)/,
    );
  });

  test('--reject-mode=status: an unknown-CA certificate is refused and never reaches the apiserver', async () => {
    const mark = cluster.fake.requests.length;
    const result = await runKubectl(await kubectlEnv({ cert: eve }, { server: statusProxy }), [
      'get',
      '--raw',
      '/api',
    ]);
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      /client certificate is not signed by a trusted CA \(subject CN=eve, O=system:masters|subject O=system:masters, CN=eve/,
    );
    assert.deepEqual(requestsSince(mark), []);
  });

  test('no certificate + bearer token arrives as the token identity', async () => {
    const userInfo = await whoami({ token: TOKEN });
    assert.equal(userInfo.username, 'system:serviceaccount:default:robot');
    const seen = cluster.fake.requests.findLast((r) => r.path.endsWith('/selfsubjectreviews'));
    assert.equal(seen?.authenticatedBy, 'token');
  });
});

describe('client-supplied identity headers never reach the apiserver', () => {
  const spoofed: Array<[string, string]> = [
    ['X-Remote-User', 'admin'],
    ['x-remote-user', 'admin2'],
    ['X-REMOTE-GROUP', 'system:masters'],
    ['X-Remote-Group', 'system:masters'],
    ['X-Remote-Extra-Scopes', 'everything'],
    ['x-remote-extra-acme.com%2Fproject', 'x'],
    ['X_Remote_User', 'admin3'],
    ['X-Remote-Uid', '0'],
  ];

  function assertNoSpoof(
    rawHeaders: ReadonlyArray<readonly [string, string]>,
    expectUser: string | null,
  ): void {
    const identity = rawHeaders.filter(([n]) => /^x[-_]remote[-_]/i.test(n));
    const expected =
      expectUser === null
        ? []
        : [
            ['x-remote-user', expectUser],
            ['x-remote-group', 'dev'],
            ['x-remote-group', 'ops'],
          ];
    assert.deepEqual(identity, expected);
  }

  for (const [label, send] of [
    ['HTTP/1.1', requestH1],
    ['HTTP/2', requestH2],
  ] as const) {
    test(`from a certificate user over ${label}`, async () => {
      const path = `/api/v1/namespaces/default/pods?spoof=${label}-cert`;
      const res = await send(`${proxy.url}${path}`, {
        ca: cluster.pki.clusterCa.certPem,
        cert: cluster.alice,
        headers: spoofed,
      });
      assert.equal(res.status, 200);
      const seen = cluster.fake.requests.findLast((r) => r.query === `spoof=${label}-cert`);
      assert.ok(seen);
      assert.equal(seen.user?.username, 'alice');
      assert.deepEqual(seen.user?.groups, ['dev', 'ops', 'system:authenticated']);
      assert.deepEqual(seen.user?.extra, {});
      assertNoSpoof(seen.rawHeaders, 'alice');
    });

    test(`from an anonymous client over ${label}`, async () => {
      const res = await send(`${proxy.url}/api/v1/namespaces/default/pods?spoof=${label}-anon`, {
        ca: cluster.pki.clusterCa.certPem,
        headers: spoofed,
      });
      assert.equal(res.status, 403, 'anonymous is forbidden, not admin');
      const seen = cluster.fake.requests.findLast((r) => r.query === `spoof=${label}-anon`);
      assert.ok(seen);
      assert.equal(seen.authenticatedBy, 'anonymous');
      assertNoSpoof(seen.rawHeaders, null);
    });

    test(`from a revoked certificate over ${label} (--reject-mode=status): nothing arrives`, async () => {
      const mark = cluster.fake.requests.length;
      const res = await send(`${statusProxy.url}/api?spoof=${label}-revoked`, {
        ca: cluster.pki.clusterCa.certPem,
        cert: mallory,
        headers: spoofed,
      });
      assert.equal(res.status, 401);
      assert.match(res.body, /client certificate revoked/);
      assert.deepEqual(requestsSince(mark), []);
    });
  }
});
