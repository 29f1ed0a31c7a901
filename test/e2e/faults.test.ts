/**
 * Upstream faults (issue 8): the apiserver restarting under watches, requests and exec
 * sessions, and an apiserver that hangs. The proxy must survive, end client streams cleanly,
 * serve again at once, and never hold unbounded memory for a client.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import { WebSocket } from 'ws';
import {
  type FakeApiserver,
  type FakeApiserverOptions,
  startFakeApiserver,
} from '../../src/demo/fake-apiserver/index.js';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { RawTlsClient, requestH1, requestH2 } from '../fake-apiserver/testkit.js';
import { clusterApiserverOptions } from '../support/cluster.js';
import { makePki, proxyArgs, type TestPki } from '../support/pki.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { until } from '../support/wait.js';

const MB = 1024 * 1024;

let pki: TestPki;
let alice: IssuedCert;
const proxies: ProxyProcess[] = [];
const fakes: FakeApiserver[] = [];

before(async () => {
  pki = await makePki();
  alice = await pki.user('alice', ['dev']);
});

after(async () => {
  await Promise.all(proxies.map((p) => p.stop()));
  await Promise.all(fakes.map((f) => f.close().catch(() => {})));
  pki?.cleanup();
});

function fakeOptions(port?: number): FakeApiserverOptions {
  return { ...(port === undefined ? {} : { port }), ...clusterApiserverOptions(pki) };
}

async function startFake(port?: number): Promise<FakeApiserver> {
  const fake = await startFakeApiserver(fakeOptions(port));
  fakes.push(fake);
  return fake;
}

async function proxyFor(upstream: string, extra: string[] = []): Promise<ProxyProcess> {
  const proxy = await startProxyProcess(proxyArgs(pki, upstream, extra));
  proxies.push(proxy);
  return proxy;
}

describe('the apiserver restarts', () => {
  test('watches (h1 and h2) and exec end cleanly, the proxy survives, requests work again at once', async () => {
    let fake = await startFake();
    const port = fake.port;
    const proxy = await proxyFor(fake.url);

    // An HTTP/1.1 watch, an HTTP/2 watch and an exec session, all open.
    const h1Watch = await RawTlsClient.connect(proxy.url, pki.clusterCa.certPem, alice);
    h1Watch.socket.write(
      'GET /api/v1/namespaces/default/pods?watch=true HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    await h1Watch.waitFor((text) => text.includes('\r\n\r\n'));
    const h2 = h2connect(proxy.url, {
      ca: pki.clusterCa.certPem,
      cert: alice.certPem,
      key: alice.keyPem,
    });
    h2.on('error', () => {});
    const h2Watch = h2.request({ ':path': '/api/v1/namespaces/default/pods?watch=true' });
    h2Watch.on('error', () => {});
    h2Watch.resume();
    const h2Ended = new Promise<string>((resolve) => {
      h2Watch.once('end', () => resolve('end'));
      h2Watch.once('close', () => resolve('close'));
    });
    await new Promise((resolve) => h2Watch.once('response', resolve));
    const ws = new WebSocket(
      `wss://127.0.0.1:${proxy.port}/api/v1/namespaces/default/pods/demo/exec?command=sleep&command=60&stdout=true`,
      ['v5.channel.k8s.io'],
      { ca: pki.clusterCa.certPem, cert: alice.certPem, key: alice.keyPem },
    );
    ws.on('error', () => {});
    await new Promise((resolve) => ws.once('open', resolve));
    const wsClosed = new Promise<void>((resolve) => ws.once('close', () => resolve()));

    // Restart: everything upstream goes away, then the apiserver is back on the same port.
    await fake.close();
    await Promise.race([
      Promise.all([h1Watch.closed, h2Ended, wsClosed]),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('client streams did not end within 5 s')), 5000),
      ),
    ]);
    fake = await startFake(port);
    assert.equal(proxy.child.exitCode, null, 'the proxy is still running');
    for (const send of [requestH1, requestH2]) {
      const res = await send(`${proxy.url}/api`, { ca: pki.clusterCa.certPem, cert: alice });
      assert.equal(res.status, 200, 'a fresh request goes through right after the restart');
    }
    h2.destroy();
  });

  test('repeated restarts under HTTP/2 load do not take the proxy down', async () => {
    let fake = await startFake();
    const port = fake.port;
    const proxy = await proxyFor(fake.url);
    let stop = false;
    const worker = async () => {
      while (!stop) {
        await new Promise<void>((resolve) => {
          const session = h2connect(proxy.url, {
            ca: pki.clusterCa.certPem,
            cert: alice.certPem,
            key: alice.keyPem,
          });
          session.on('error', () => {});
          session.on('close', () => resolve());
          let left = 3;
          for (let i = 0; i < 3; i++) {
            const stream = session.request({ ':path': '/api/v1/namespaces/default/pods' });
            stream.on('error', () => {});
            stream.resume();
            stream.on('close', () => {
              if (--left === 0) session.close();
            });
          }
          setTimeout(() => {
            // Node's client can miss 'close' for a session whose peer vanished mid-write (it
            // waits for socket.end() to flush): after 3 s the round is over either way.
            session.destroy();
            resolve();
          }, 3000).unref();
        });
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    for (let round = 0; round < 5; round++) {
      await new Promise((r) => setTimeout(r, 400));
      await fake.close();
      await new Promise((r) => setTimeout(r, 200));
      fake = await startFake(port);
      assert.equal(proxy.child.exitCode, null, `proxy alive after restart ${round + 1}`);
    }
    stop = true;
    await Promise.all(workers);
    const res = await requestH2(`${proxy.url}/api`, { ca: pki.clusterCa.certPem, cert: alice });
    assert.equal(res.status, 200);
  });
});

describe('a hung apiserver', () => {
  test("does not pin a client's upload in the proxy's memory", async (t) => {
    // Accepts TLS, never reads a byte and never answers.
    const held = new Set<import('node:tls').TLSSocket>();
    const hung = createTlsServer(
      { cert: pki.apiserver.certPem, key: pki.apiserver.keyPem, ALPNProtocols: ['http/1.1', 'h2'] },
      (socket) => {
        held.add(socket);
        socket.pause();
        socket.on('error', () => {});
      },
    );
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      for (const socket of held) socket.destroy();
      return new Promise<void>((resolve) => hung.close(() => resolve()));
    });
    const { port } = hung.address() as { port: number };
    const proxy = await proxyFor(`https://127.0.0.1:${port}`, ['--upstream-pool-size=0']);
    const rss = () =>
      Number(
        /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proxy.child.pid}/status`, 'utf8'))?.[1],
      ) * 1024;
    const baseline = rss();
    const req = httpsRequest(`${proxy.url}/api/v1/namespaces/default/configmaps`, {
      method: 'POST',
      ca: pki.clusterCa.certPem,
      cert: alice.certPem,
      key: alice.keyPem,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(200 * MB) },
    });
    req.on('error', () => {});
    const chunk = Buffer.alloc(MB);
    let written = 0;
    // Write as fast as the proxy takes it, for 4 s; a proxy that buffers would take it all.
    const deadline = Date.now() + 4000;
    // Each MB waits for 'drain' before the next: `written` is what the path (client socket,
    // proxy, upstream socket) accepted, not what piles up in the client's own buffer.
    while (Date.now() < deadline && written < 200 * MB) {
      written += MB;
      if (!req.write(chunk)) {
        const drained = await Promise.race([
          new Promise<boolean>((r) => req.once('drain', () => r(true))),
          new Promise<boolean>((r) =>
            setTimeout(() => r(false), Math.max(0, deadline - Date.now())),
          ),
        ]);
        if (!drained) break;
      }
    }
    await until(() => true, 'settle');
    const growth = rss() - baseline;
    req.destroy();
    assert.ok(
      written < 100 * MB,
      `the client could push ${written / MB} MB into a proxy whose apiserver reads nothing`,
    );
    assert.ok(growth < 64 * MB, `proxy RSS grew ${(growth / MB).toFixed(1)} MB`);
    process.stdout.write(
      `# hung apiserver: client got ${(written / MB).toFixed(0)} MB out, proxy RSS +${(growth / MB).toFixed(1)} MB\n`,
    );
  });
});
