/**
 * The rejection contract and the edges of the data path: --reject-mode=close, resumed TLS
 * sessions are judged again, --require-client-cert, an unreachable apiserver, hop-by-hop
 * headers.
 */
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { requestH1, requestH2 } from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';

const cluster = new TestCluster();
let mallory: IssuedCert;

before(async () => {
  await cluster.start();
  mallory = await cluster.pki.user('mallory');
  cluster.pki.writeCrl({ revoked: [{ serial: mallory.serial }], crlNumber: 2 });
});

after(() => cluster.stop());

/** One GET on its own TLS connection, offering `session`; reports whether it was resumed. */
function getWithSession(
  url: string,
  cert: IssuedCert,
  session: Buffer | undefined,
  maxVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3',
): Promise<{ status: number; body: string; reused: boolean; session: Buffer | undefined }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    let latest: Buffer | undefined;
    const socket = tlsConnect({
      host: target.hostname,
      port: Number(target.port),
      ca: cluster.pki.clusterCa.certPem,
      cert: cert.certPem,
      key: cert.keyPem,
      ALPNProtocols: ['http/1.1'],
      maxVersion,
      ...(session === undefined ? {} : { session }),
    });
    socket.on('session', (s: Buffer) => {
      latest = s;
    });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const reused = socket.isSessionReused();
      const req = httpsRequest(url, { createConnection: () => socket, method: 'GET' });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d;
        });
        res.on('end', () => {
          // Let the session ticket arrive before closing.
          setTimeout(() => {
            socket.destroy();
            resolve({ status: res.statusCode ?? 0, body, reused, session: latest });
          }, 100);
        });
      });
      req.on('error', reject);
      req.end();
    });
  });
}

describe('rejection', () => {
  test('--reject-mode=close drops a revoked client after the handshake; nothing reaches the apiserver', async () => {
    const proxy = await cluster.proxy(['--reject-mode=close']);
    const mark = cluster.fake.requests.length;
    for (const send of [requestH1, requestH2]) {
      // No HTTP answer at all: the connection is closed (an error, or a stream ended with no headers).
      const outcome = await send(`${proxy.url}/api`, {
        ca: cluster.pki.clusterCa.certPem,
        cert: mallory,
      }).then(
        (res) => (Number.isNaN(res.status) ? 'closed' : `status ${res.status}`),
        () => 'closed',
      );
      assert.equal(outcome, 'closed');
    }
    assert.equal(cluster.fake.requests.length, mark);
    const ok = await requestH1(`${proxy.url}/api`, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice,
    });
    assert.equal(ok.status, 200);
  });

  for (const mode of ['alert', 'status'] as const) {
    test(`--reject-mode=${mode}: TLS sessions are never resumed, and every connection is judged: a certificate that expired since is refused`, async () => {
      const proxy = await cluster.proxy([`--reject-mode=${mode}`]);
      const shortLived = await cluster.pki.user('brief', [], {
        notAfter: new Date(Date.now() + 3000),
      });
      for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
        const ok = await getWithSession(`${proxy.url}/api`, cluster.alice, undefined, maxVersion);
        assert.equal(ok.status, 200);
        const again = await getWithSession(
          `${proxy.url}/api`,
          cluster.alice,
          ok.session,
          maxVersion,
        );
        assert.equal(again.status, 200);
        assert.equal(again.reused, false, `${maxVersion}: a session offered back is not resumed`);
      }
      const first = await getWithSession(`${proxy.url}/api`, shortLived, undefined);
      assert.equal(first.status, 200);
      await new Promise((r) => setTimeout(r, 3500));
      const mark = cluster.fake.requests.length;
      const second = getWithSession(`${proxy.url}/api`, shortLived, first.session);
      if (mode === 'alert') {
        await assert.rejects(second, (err: NodeJS.ErrnoException) =>
          /^ERR_SSL_(?:SSLV3|SSL\/TLS)_ALERT_CERTIFICATE_EXPIRED$/.test(err.code ?? ''),
        );
      } else {
        const refused = await second;
        assert.equal(refused.reused, false);
        assert.equal(refused.status, 401);
        assert.match(refused.body, /client certificate expired at/);
      }
      assert.equal(cluster.fake.requests.length, mark);
    });
  }

  for (const mode of ['status', 'http'] as const) {
    test(`--require-client-cert --reject-mode=${mode} refuses clients without a certificate with the 401 Status`, async () => {
      const proxy = await cluster.proxy(['--require-client-cert', `--reject-mode=${mode}`]);
      const res = await requestH1(`${proxy.url}/version`, { ca: cluster.pki.clusterCa.certPem });
      assert.equal(res.status, 401);
      assert.match(res.body, /a client certificate is required/);
      const h2 = await requestH2(`${proxy.url}/version`, { ca: cluster.pki.clusterCa.certPem });
      assert.equal(h2.status, 401);
    });
  }
});

describe('upstream', () => {
  test('an unreachable apiserver is a prompt 503 Status on HTTP/1.1 and HTTP/2', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const proxy = await cluster.proxy([], `https://127.0.0.1:${closedPort}`);
    for (const send of [requestH1, requestH2]) {
      const started = Date.now();
      const res = await send(`${proxy.url}/api`, {
        ca: cluster.pki.clusterCa.certPem,
        cert: cluster.alice,
      });
      assert.equal(res.status, 503);
      assert.match(res.body, /"reason":"ServiceUnavailable"/);
      assert.match(res.body, /the apiserver is unavailable/);
      assert.ok(Date.now() - started < 3000, 'answered promptly');
    }
    const ready = await fetch(`${proxy.adminUrl}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /not ready: the apiserver did not answer/);
  });

  test('hop-by-hop headers and those named in Connection are not forwarded', async () => {
    const proxy = await cluster.proxy();
    const res = await requestH1(`${proxy.url}/version?hop=1`, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice,
      headers: [
        ['Connection', 'keep-alive, X-Secret-Hop'],
        ['X-Secret-Hop', 'should-not-pass'],
        ['Keep-Alive', 'timeout=5'],
        ['Proxy-Authorization', 'Basic Zm9vOmJhcg=='],
        ['TE', 'trailers'],
        ['X-End-To-End', 'passes'],
      ],
    });
    assert.equal(res.status, 200);
    const seen = cluster.fake.requests.findLast((r) => r.query === 'hop=1');
    assert.ok(seen);
    const names = seen.rawHeaders.map(([n]) => n);
    for (const hop of ['x-secret-hop', 'keep-alive', 'proxy-authorization', 'te'])
      assert.ok(!names.includes(hop), hop);
    assert.ok(seen.rawHeaders.some(([n, v]) => n === 'x-end-to-end' && v === 'passes'));
    assert.ok(seen.rawHeaders.some(([n, v]) => n === 'x-forwarded-for' && v === '127.0.0.1'));
  });
});
