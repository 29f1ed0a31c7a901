/**
 * `kube-crl-proxy crl revoke` against running proxies: one watching the CRL file itself (the
 * tool renames a new file over it), one watching its directory (as deploy/ sets --crl-file).
 * Alice's open HTTP/2 session is cut and her next handshake is refused; Bob's stays.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { type ClientHttp2Session, connect } from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { requestH1 } from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import { proxyArgs } from '../support/pki.js';
import { type ProxyProcess, runBin, startProxyProcess } from '../support/proxy-process.js';

const cluster = new TestCluster({ anyProxyClientName: true });
let bob: IssuedCert;
const sessions: ClientHttp2Session[] = [];

before(async () => {
  await cluster.start();
  bob = await cluster.pki.user('bob', ['ops']);
});

after(async () => {
  for (const session of sessions) session.destroy();
  await cluster.stop();
});

function open(proxy: ProxyProcess, cert: IssuedCert): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(proxy.url, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cert.certPem,
      key: cert.keyPem,
    });
    sessions.push(session);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

function get(session: ClientHttp2Session, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path });
    stream.on('response', (headers) => resolve(Number(headers[':status'])));
    stream.on('error', reject);
    stream.resume();
  });
}

function closed(session: ClientHttp2Session, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: still open after 5 s`)), 5000);
    session.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe('crl revoke with proxies running', () => {
  test("alice's open session is cut and her next handshake refused; bob's session stays", async () => {
    const crlDir = join(cluster.pki.dir, 'crl');
    mkdirSync(crlDir);
    const crl = join(crlDir, 'ca.crl');
    const caKey = cluster.pki.write('ca.key', cluster.pki.clusterCa.cert.keyPem);
    const signing = [
      `--ca-cert=${cluster.pki.files.clientCa}`,
      `--ca-key=${caKey}`,
      `--crl=${crl}`,
    ];
    const renewed = await runBin(['crl', 'renew', ...signing]);
    assert.equal(renewed.code, 0, renewed.stderr);

    // Refusals are read here as the 401 Status; test/e2e/tls-alert.test.ts has the TLS alert.
    const withCrl = (path: string) =>
      proxyArgs(cluster.pki, cluster.fake.url, ['--reject-mode=status']).map((a) =>
        a.startsWith('--crl-file=') ? `--crl-file=${path}` : a,
      );
    const proxies: ProxyProcess[] = [];
    for (const path of [crl, crlDir]) {
      proxies.push(cluster.stopAfterwards(await startProxyProcess(withCrl(path))));
    }

    const aliceSessions = await Promise.all(proxies.map((p) => open(p, cluster.alice)));
    const bobSessions = await Promise.all(proxies.map((p) => open(p, bob)));
    for (const session of [...aliceSessions, ...bobSessions]) {
      assert.equal(await get(session, '/api'), 200);
    }
    const cuts = aliceSessions.map((s, i) => closed(s, `alice's session on proxy ${i}`));

    const revoked = await runBin([
      'crl',
      'revoke',
      cluster.pki.write('alice.crt', cluster.alice.certPem),
      '--reason=keyCompromise',
      ...signing,
    ]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`^revoked ${cluster.alice.serial} `, 'm'));
    await Promise.all(cuts);

    for (const [i, proxy] of proxies.entries()) {
      const line = await proxy.waitForLog((l) =>
        l.msg.startsWith('closing open connections: client certificate revoked'),
      );
      assert.equal(line.serial, cluster.alice.serial, `proxy ${i}`);
      const again = await requestH1(`${proxy.url}/api`, {
        ca: cluster.pki.clusterCa.certPem,
        cert: cluster.alice,
      });
      assert.equal(again.status, 401, `proxy ${i}: a new handshake is refused`);
      assert.match(
        again.body,
        new RegExp(`client certificate revoked \\(serial ${cluster.alice.serial}`),
      );
      assert.equal(
        proxy.logs.filter((l) => l.msg.startsWith('reload refused')).length,
        0,
        `proxy ${i}: no reload was refused (no half-written or temporary file was read)`,
      );
    }
    for (const session of bobSessions) {
      assert.equal(session.closed || session.destroyed, false, "bob's session is untouched");
      assert.equal(await get(session, '/api'), 200);
    }
  });
});
