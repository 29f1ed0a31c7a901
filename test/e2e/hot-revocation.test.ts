/**
 * Hot revocation (issue 4): every input is watched; a change is loaded, validated and swapped
 * in whole; a bad input never replaces the good snapshot and recovers by itself; newly revoked
 * certificates lose their open connections.
 */
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Authority, type CrlOptions, crlPem, type IssuedCert } from '../../src/demo/pki-factory.js';
import { requestH1, requestH2 } from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import { atomicWrite, proxyArgs } from '../support/pki.js';
import type { LogLine, ProxyProcess } from '../support/proxy-process.js';
import { scrapeMetric, startProxyProcess } from '../support/proxy-process.js';
import { eventually } from '../support/wait.js';

const cluster = new TestCluster({ anyProxyClientName: true });
let bob: IssuedCert;
let mallory: IssuedCert;

before(async () => {
  await cluster.start();
  bob = await cluster.pki.user('bob', ['ops']);
  mallory = await cluster.pki.user('mallory');
});

after(() => cluster.stop());

/** Refusals are read as the 401 Status here; tls-alert.test.ts has the TLS alert. */
async function startProxy(args: string[]): Promise<ProxyProcess> {
  return cluster.stopAfterwards(await startProxyProcess([...args, '--reject-mode=status']));
}

/**
 * Status of one request on a fresh connection; 0 when the connection was cut under it (a
 * snapshot swap may close a connection that was just accepted).
 */
async function status(proxy: ProxyProcess, cert: IssuedCert, path = '/api'): Promise<number> {
  try {
    return (await requestH1(`${proxy.url}${path}`, { ca: cluster.pki.clusterCa.certPem, cert }))
      .status;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') return 0;
    throw err;
  }
}

const metric = scrapeMetric;

const FAILURES = 'kube_crl_proxy_crl_reloads_total{result="failure"}';

const inForce = (generation: number) => (l: LogLine) =>
  l.msg === 'snapshot in force' && l.generation === generation;
const refused = (l: LogLine) => l.msg.startsWith('input refused');

/** The highest generation the proxy has reported so far. */
function generationOf(proxy: ProxyProcess): number {
  return proxy.logs.reduce(
    (g, l) => (typeof l.generation === 'number' && l.generation > g ? l.generation : g),
    1,
  );
}

describe('watching the inputs', () => {
  let proxy: ProxyProcess;
  let crlDir: string;
  let crlNumber = 10;
  const writeCrl = (name: string, options: CrlOptions) =>
    writeFileSync(join(crlDir, name), crlPem(cluster.pki.clusterCa.crl(options)));
  const refusedWithin = (cert: IssuedCert, what: string, on = () => proxy) =>
    eventually(async () => (await status(on(), cert)) === 401, 5000, what);

  before(async () => {
    crlDir = join(cluster.pki.dir, 'crl.d');
    mkdirSync(crlDir);
    writeCrl('main.crl', { revoked: [], crlNumber });
    proxy = await startProxy(
      proxyArgs(cluster.pki, cluster.fake.url).map((a) =>
        a.startsWith('--crl-file=') ? `--crl-file=${crlDir}` : a,
      ),
    );
  });

  test('write in place: a new handshake sees the new CRL within a second', async () => {
    assert.equal(await status(proxy, mallory), 200);
    writeCrl('main.crl', { revoked: [{ serial: mallory.serial }], crlNumber: ++crlNumber });
    const took = await refusedWithin(mallory, 'mallory refused after the write');
    assert.ok(took < 1000, `took ${took} ms`);
    assert.equal(await status(proxy, cluster.alice), 200);
  });

  test('write then rename (editors, openssl ca -out tmp && mv)', async () => {
    const tmp = join(cluster.pki.dir, 'main.crl.tmp');
    const revoked = [{ serial: mallory.serial }, { serial: bob.serial }];
    writeFileSync(tmp, crlPem(cluster.pki.clusterCa.crl({ revoked, crlNumber: ++crlNumber })));
    renameSync(tmp, join(crlDir, 'main.crl'));
    await refusedWithin(bob, 'bob refused after the rename');
  });

  test('a burst of writes is debounced and the last state wins', async () => {
    const generation = generationOf(proxy);
    for (let i = 0; i < 20; i++) {
      const revoked =
        i % 2 === 0 ? [{ serial: cluster.alice.serial }] : [{ serial: mallory.serial }];
      writeCrl('main.crl', { revoked, crlNumber: ++crlNumber });
    }
    await proxy.waitForLog(inForce(generation + 1), 5000);
    await new Promise((r) => setTimeout(r, 500));
    const swaps = generationOf(proxy) - generation;
    assert.ok(swaps <= 3, `20 writes made ${swaps} swaps`);
    assert.equal(await status(proxy, mallory), 401, 'the last write revoked mallory');
    assert.equal(await status(proxy, cluster.alice), 200, 'and only mallory');
  });

  test('a CRL added to and removed from a watched directory', async () => {
    // A second CA whose CRL comes and goes (allowed without one: --crl-missing-policy=allow).
    const secondCa = await Authority.create({ commonName: 'second-ca' });
    const carol = await secondCa.issue({ commonName: 'carol' });
    const bundle = cluster.pki.write(
      'dir-bundle.crt',
      cluster.pki.clusterCa.certPem + secondCa.certPem,
    );
    const dir = join(cluster.pki.dir, 'crl-add-remove.d');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'cluster.crl'),
      crlPem(cluster.pki.clusterCa.crl({ revoked: [{ serial: mallory.serial }] })),
    );
    const dirProxy = await startProxy(
      proxyArgs(cluster.pki, cluster.fake.url, ['--crl-missing-policy=allow']).map((a) => {
        if (a.startsWith('--crl-file=')) return `--crl-file=${dir}`;
        if (a.startsWith('--client-ca-file=')) return `--client-ca-file=${bundle}`;
        return a;
      }),
    );
    assert.equal(await status(dirProxy, carol), 200);
    writeFileSync(
      join(dir, 'second.crl'),
      crlPem(secondCa.crl({ revoked: [{ serial: carol.serial }] })),
    );
    await refusedWithin(carol, 'the added CRL applies', () => dirProxy);
    // Removing a CA's only CRL would un-revoke its certificates: refused, the CRL in force stays.
    unlinkSync(join(dir, 'second.crl'));
    const line = await dirProxy.waitForLog(refused, 5000);
    assert.match(line.msg, /no CRL for CA "CN=second-ca" any more; the one in force stays/);
    assert.equal(line.input, 'crl');
    assert.equal(await status(dirProxy, carol), 401, 'the CRL in force still applies');
    assert.equal(await status(dirProxy, mallory), 401, 'the other CRL still does');
  });
});

describe('a Kubernetes Secret mount (..data symlink swap)', () => {
  test('the new content applies after the atomic swap', async () => {
    const mount = join(cluster.pki.dir, 'secret-mount');
    mkdirSync(join(mount, '..2026_11_29_a'), { recursive: true });
    writeFileSync(
      join(mount, '..2026_11_29_a', 'ca.crl'),
      crlPem(cluster.pki.clusterCa.crl({ crlNumber: 1 })),
    );
    symlinkSync('..2026_11_29_a', join(mount, '..data'));
    symlinkSync('..data/ca.crl', join(mount, 'ca.crl'));
    const proxy = await startProxy(
      proxyArgs(cluster.pki, cluster.fake.url).map((a) =>
        a.startsWith('--crl-file=') ? `--crl-file=${join(mount, 'ca.crl')}` : a,
      ),
    );
    assert.equal(await status(proxy, bob), 200);
    // What kubelet does: a new timestamped dir, a temp symlink renamed over ..data, old dir removed.
    mkdirSync(join(mount, '..2026_11_29_b'));
    const revoked = [{ serial: bob.serial }];
    writeFileSync(
      join(mount, '..2026_11_29_b', 'ca.crl'),
      crlPem(cluster.pki.clusterCa.crl({ revoked, crlNumber: 2 })),
    );
    symlinkSync('..2026_11_29_b', join(mount, '..data_tmp'));
    renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
    rmSync(join(mount, '..2026_11_29_a'), { recursive: true });
    const took = await eventually(
      async () => (await status(proxy, bob)) === 401,
      5000,
      'bob refused after the swap',
    );
    assert.ok(took < 1000, `took ${took} ms`);
  });
});

describe('a bad input keeps its last good value, is logged once and counted, and recovers', () => {
  let proxy: ProxyProcess;
  let crlFile: string;
  let servingCert: string;
  let servingKey: string;
  let crlNumber = 100;
  const goodCrl = () =>
    crlPem(
      cluster.pki.clusterCa.crl({ revoked: [{ serial: mallory.serial }], crlNumber: ++crlNumber }),
    );

  before(async () => {
    crlFile = cluster.pki.write('watched.crl', goodCrl());
    servingCert = cluster.pki.write('watched-serving.crt', cluster.pki.serving.certPem);
    servingKey = cluster.pki.write('watched-serving.key', cluster.pki.serving.keyPem);
    const own: Record<string, string> = {
      'crl-file': crlFile,
      'tls-cert-file': servingCert,
      'tls-private-key-file': servingKey,
    };
    proxy = await startProxy(
      proxyArgs(cluster.pki, cluster.fake.url).map((a) => {
        const name = a.slice(2, a.indexOf('='));
        return own[name] === undefined ? a : `--${name}=${own[name]}`;
      }),
    );
  });

  async function expectRefusedThenRecover(
    label: string,
    breakIt: () => void,
    problem: RegExp,
    fix: () => void = () => atomicWrite(crlFile, goodCrl()),
  ) {
    const failuresBefore = await metric(proxy, FAILURES);
    const refusalsBefore = proxy.logs.filter(refused).length;
    const generation = generationOf(proxy);
    breakIt();
    const line = await proxy.waitForLog(
      (l) => refused(l) && proxy.logs.filter(refused).indexOf(l) >= refusalsBefore,
      5000,
    );
    assert.match(line.msg, problem, label);
    assert.equal(await status(proxy, mallory), 401, `${label}: still revoked`);
    assert.equal(await status(proxy, cluster.alice), 200, `${label}: still accepted`);
    assert.equal(await metric(proxy, FAILURES), failuresBefore + 1, `${label}: counted once`);
    // The watcher's periodic poll and any further events do not log the same state again.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(proxy.logs.filter(refused).length, refusalsBefore + 1, `${label}: logged once`);
    fix();
    await proxy.waitForLog(inForce(generation + 1), 5000);
    assert.equal(await status(proxy, mallory), 401);
  }

  test('a truncated CRL', async () => {
    const good = goodCrl();
    await expectRefusedThenRecover(
      'truncated',
      () => atomicWrite(crlFile, good.slice(0, good.length / 2)),
      /watched\.crl/,
    );
  });

  test('garbage', async () => {
    await expectRefusedThenRecover(
      'garbage',
      () => atomicWrite(crlFile, 'this is not a CRL\n'),
      /watched\.crl: contains no CRL/,
    );
  });

  test('a CRL with a bad signature', async () => {
    const impostor = await Authority.create({ commonName: 'kubernetes' });
    await expectRefusedThenRecover(
      'bad signature',
      () =>
        atomicWrite(
          crlFile,
          crlPem(
            cluster.pki.clusterCa.crl({
              crlNumber: crlNumber + 50,
              signingKey: impostor.cert.privateKey,
            }),
          ),
        ),
      /does not verify against any CA/,
    );
  });

  test('a CRL from an issuer not in the CA bundle', async () => {
    const stranger = await Authority.create({ commonName: 'stranger-ca' });
    await expectRefusedThenRecover(
      'unknown issuer',
      () => atomicWrite(crlFile, crlPem(stranger.crl({ crlNumber: 1 }))),
      /CRL issuer "CN=stranger-ca" is not a CA of --client-ca-file/,
    );
  });

  test('a lower CRL number than the one in force (rollback)', async () => {
    await expectRefusedThenRecover(
      'rollback',
      () => atomicWrite(crlFile, crlPem(cluster.pki.clusterCa.crl({ revoked: [], crlNumber: 3 }))),
      /refusing a rollback/,
    );
  });

  test('a deleted CRL file', async () => {
    await expectRefusedThenRecover(
      'deleted',
      () => unlinkSync(crlFile),
      /watched\.crl: cannot read: no such file/,
    );
  });

  test('a key that no longer matches its certificate', async () => {
    const other = await cluster.pki.user('someone-else');
    const rotated = await cluster.pki.clusterCa.issue({
      commonName: 'kube-crl-proxy-2',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
    });
    await expectRefusedThenRecover(
      'key mismatch',
      () => atomicWrite(servingKey, other.keyPem),
      /--tls-private-key-file: .*key does not match the certificate/,
      () => {
        atomicWrite(servingCert, rotated.certPem);
        atomicWrite(servingKey, rotated.keyPem);
      },
    );
  });
});

describe('open connections of newly revoked certificates are cut', () => {
  test('HTTP/1.1 keep-alive and HTTP/2 sessions of the revoked certificate close; others stay', async () => {
    const crlFile = cluster.pki.write(
      'cut.crl',
      crlPem(cluster.pki.clusterCa.crl({ revoked: [], crlNumber: 1 })),
    );
    const proxy = await startProxy(
      proxyArgs(cluster.pki, cluster.fake.url).map((a) =>
        a.startsWith('--crl-file=') ? `--crl-file=${crlFile}` : a,
      ),
    );
    const { connect } = await import('node:http2');
    const open = (cert: IssuedCert) =>
      new Promise<import('node:http2').ClientHttp2Session>((resolve, reject) => {
        const session = connect(proxy.url, {
          ca: cluster.pki.clusterCa.certPem,
          cert: cert.certPem,
          key: cert.keyPem,
        });
        session.once('connect', () => resolve(session));
        session.once('error', reject);
      });
    const bobSession = await open(bob);
    const aliceSession = await open(cluster.alice);
    const bobClosed = new Promise<void>((resolve) => bobSession.once('close', () => resolve()));
    const before = await metric(proxy, 'kube_crl_proxy_revoked_connections_closed_total');
    writeFileSync(
      crlFile,
      crlPem(cluster.pki.clusterCa.crl({ revoked: [{ serial: bob.serial }], crlNumber: 2 })),
    );
    const started = Date.now();
    await Promise.race([
      bobClosed,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error("bob's HTTP/2 session still open after 5 s")), 5000),
      ),
    ]);
    assert.ok(Date.now() - started < 1500, `cut after ${Date.now() - started} ms`);
    assert.equal(
      aliceSession.closed || aliceSession.destroyed,
      false,
      "alice's session is untouched",
    );
    const res = await new Promise<number>((resolve, reject) => {
      const stream = aliceSession.request({ ':path': '/api' });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', reject);
      stream.resume();
    });
    assert.equal(res, 200);
    aliceSession.close();
    assert.equal(
      await metric(proxy, 'kube_crl_proxy_revoked_connections_closed_total'),
      before + 1,
    );
    const line = await proxy.waitForLog((l) =>
      l.msg.startsWith('closing open connections: client certificate revoked'),
    );
    assert.equal(line.serial, bob.serial);
    assert.equal(
      (await requestH2(`${proxy.url}/api`, { ca: cluster.pki.clusterCa.certPem, cert: bob }))
        .status,
      401,
    );
  });
});

describe('CRL expiry', () => {
  test('when the CRL in force passes nextUpdate, --crl-expired-policy=reject applies at that moment', async () => {
    const crlFile = cluster.pki.write(
      'expiring.crl',
      crlPem(cluster.pki.clusterCa.crl({ crlNumber: 1 })),
    );
    const proxy = await startProxy(
      proxyArgs(cluster.pki, cluster.fake.url).map((a) =>
        a.startsWith('--crl-file=') ? `--crl-file=${crlFile}` : a,
      ),
    );
    // The expiring CRL goes in once the proxy serves, so a slow start cannot eat its lifetime.
    const expiry = Date.now() + 4000;
    atomicWrite(
      crlFile,
      crlPem(
        cluster.pki.clusterCa.crl({
          revoked: [],
          crlNumber: 2,
          thisUpdate: new Date(Date.now() - 60_000),
          nextUpdate: new Date(expiry),
        }),
      ),
    );
    await proxy.waitForLog(inForce(2), 3000);
    const { connect } = await import('node:http2');
    const session = connect(proxy.url, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice.certPem,
      key: cluster.alice.keyPem,
    });
    session.on('error', () => {});
    const closed = new Promise<number>((resolve) =>
      session.once('close', () => resolve(Date.now())),
    );
    assert.equal(await status(proxy, cluster.alice), 200);
    const cutAt = await closed;
    // CRL times have one-second resolution.
    assert.ok(
      cutAt >= expiry - 1000 && cutAt < expiry + 1500,
      `open connection cut ${cutAt - expiry} ms from nextUpdate`,
    );
    const res = await requestH1(`${proxy.url}/api`, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice,
    });
    assert.equal(res.status, 401);
    assert.match(res.body, /expired at .* \(--crl-expired-policy=reject\)/);
  });
});

describe('rotation without restart', () => {
  test('new serving cert, front-proxy-client cert and client CA bundle apply to new connections only', async () => {
    const servingCert = cluster.pki.write('rot-serving.crt', cluster.pki.serving.certPem);
    const servingKey = cluster.pki.write('rot-serving.key', cluster.pki.serving.keyPem);
    const proxyCert = cluster.pki.write('rot-fp.crt', cluster.pki.frontProxyClient.certPem);
    const proxyKey = cluster.pki.write('rot-fp.key', cluster.pki.frontProxyClient.keyPem);
    const caFile = cluster.pki.write('rot-ca.crt', cluster.pki.clusterCa.certPem);
    const secondCa = await Authority.create({ commonName: 'second-ca' });
    const crlFile = cluster.pki.write(
      'rot.crl',
      crlPem(cluster.pki.clusterCa.crl({ crlNumber: 1 })),
    );
    const override: Record<string, string> = {
      'tls-cert-file': servingCert,
      'tls-private-key-file': servingKey,
      'proxy-client-cert-file': proxyCert,
      'proxy-client-key-file': proxyKey,
      'client-ca-file': caFile,
      'crl-file': crlFile,
    };
    const args = proxyArgs(cluster.pki, cluster.fake.url).map((a) => {
      const name = a.slice(2, a.indexOf('='));
      return override[name] === undefined ? a : `--${name}=${override[name]}`;
    });
    const proxy = await startProxy([...args, '--upstream-pool-size=0']);
    const { connect } = await import('node:http2');
    const oldSession = connect(proxy.url, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice.certPem,
      key: cluster.alice.keyPem,
    });
    oldSession.on('error', () => {});
    await new Promise((r) => oldSession.once('connect', r));

    const newServing = await cluster.pki.clusterCa.issue({
      commonName: 'kube-crl-proxy-rotated',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
    });
    const newFrontProxy = await cluster.pki.frontProxyCa.issue({
      commonName: 'front-proxy-client-rotated',
    });
    const carol = await secondCa.issue({ commonName: 'carol' });
    const generation = generationOf(proxy);
    writeFileSync(servingCert, newServing.certPem);
    writeFileSync(servingKey, newServing.keyPem);
    writeFileSync(proxyCert, newFrontProxy.certPem);
    writeFileSync(proxyKey, newFrontProxy.keyPem);
    writeFileSync(caFile, cluster.pki.clusterCa.certPem + secondCa.certPem);
    writeFileSync(
      crlFile,
      crlPem(cluster.pki.clusterCa.crl({ crlNumber: 2 })) + crlPem(secondCa.crl({ crlNumber: 1 })),
    );
    await proxy.waitForLog(
      (l) =>
        l.msg === 'snapshot in force' &&
        typeof l.generation === 'number' &&
        l.generation > generation,
      5000,
    );
    // Let a burst settle: the last state must include every file.
    await new Promise((r) => setTimeout(r, 500));

    const { connect: tlsConnect } = await import('node:tls');
    const presented = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect(
        { host: '127.0.0.1', port: proxy.port, ca: cluster.pki.clusterCa.certPem },
        () => {
          resolve(socket.getPeerX509Certificate()?.subject ?? '');
          socket.destroy();
        },
      );
      socket.once('error', reject);
    });
    assert.equal(presented, 'CN=kube-crl-proxy-rotated');
    const viaNew = await requestH1(`${proxy.url}/api?rotated=1`, {
      ca: cluster.pki.clusterCa.certPem,
      cert: carol,
    });
    assert.equal(viaNew.status, 200, 'a user of the newly added CA is accepted');
    const seen = cluster.fake.requests.findLast((r) => r.query === 'rotated=1');
    assert.equal(seen?.peerCommonName, 'front-proxy-client-rotated');
    assert.equal(seen?.user?.username, 'carol');
    assert.equal(
      oldSession.closed || oldSession.destroyed,
      false,
      'the existing connection was not dropped',
    );
    oldSession.close();
  });
});

describe('--workers 2', () => {
  test('both workers converge on the new snapshot, parsed once by the primary', async () => {
    const crlFile = cluster.pki.write(
      'workers.crl',
      crlPem(cluster.pki.clusterCa.crl({ crlNumber: 1 })),
    );
    const proxy = await startProxy([
      ...proxyArgs(cluster.pki, cluster.fake.url).map((a) =>
        a.startsWith('--crl-file=') ? `--crl-file=${crlFile}` : a,
      ),
      '--workers=2',
    ]);
    for (let i = 0; i < 6; i++) assert.equal(await status(proxy, cluster.alice), 200);
    writeFileSync(
      crlFile,
      crlPem(
        cluster.pki.clusterCa.crl({ revoked: [{ serial: cluster.alice.serial }], crlNumber: 2 }),
      ),
    );
    const applied = await Promise.all(
      [1, 2].map((worker) =>
        proxy.waitForLog(
          (l) => l.msg === 'snapshot in force' && l.generation === 2 && l.worker === worker,
          5000,
        ),
      ),
    );
    assert.notEqual(applied[0]?.pid, applied[1]?.pid, 'two worker processes');
    for (let i = 0; i < 10; i++)
      assert.equal(await status(proxy, cluster.alice), 401, `connection ${i}`);
    const loads = proxy.logs.filter((l) => l.msg === 'inputs loaded');
    assert.equal(loads.length, 2, 'generations 1 and 2, each loaded once');
    assert.equal(new Set(loads.map((l) => l.pid)).size, 1, 'by one process');
  });
});
