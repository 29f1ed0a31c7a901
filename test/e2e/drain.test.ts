/**
 * Graceful stop and reload (issue 8): SIGTERM stops accepting, sends GOAWAY, ends watches as
 * complete responses, lets in-flight work and tunnels finish within --shutdown-grace, and exits
 * 0; SIGHUP reloads without dropping anything.
 */
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket } from 'ws';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { RawTlsClient, requestH2 } from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import type { ProxyProcess } from '../support/proxy-process.js';

const cluster = new TestCluster({ stopSignal: 'SIGKILL' });
let bob: IssuedCert;

before(async () => {
  await cluster.start();
  bob = await cluster.pki.user('bob');
});

after(() => cluster.stop());

function exec(proxy: ProxyProcess, seconds: number): WebSocket {
  const ws = new WebSocket(
    `wss://127.0.0.1:${proxy.port}/api/v1/namespaces/default/pods/demo/exec?command=sleep&command=${seconds}&stdout=true`,
    ['v5.channel.k8s.io'],
    { ca: cluster.pki.clusterCa.certPem, cert: cluster.alice.certPem, key: cluster.alice.keyPem },
  );
  ws.on('error', () => {});
  return ws;
}

function exitOf(proxy: ProxyProcess): Promise<{ code: number | null; at: number }> {
  return new Promise((resolve) =>
    proxy.child.once('exit', (code) => resolve({ code, at: Date.now() })),
  );
}

describe('SIGTERM', () => {
  test('stop accepting, GOAWAY, watches end complete, the tunnel finishes, exit 0', async () => {
    const proxy = await cluster.proxy(['--shutdown-grace=8s']);
    // An HTTP/1.1 watch, an idle keep-alive connection, an HTTP/2 session with a watch, an exec.
    const h1Watch = await RawTlsClient.connect(
      proxy.url,
      cluster.pki.clusterCa.certPem,
      cluster.alice,
    );
    h1Watch.socket.write(
      'GET /api/v1/namespaces/default/pods?watch=true HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    await h1Watch.waitFor((text) => text.includes('\r\n\r\n'));
    const idle = await RawTlsClient.connect(
      proxy.url,
      cluster.pki.clusterCa.certPem,
      cluster.alice,
    );
    idle.socket.write('GET /version HTTP/1.1\r\nHost: x\r\n\r\n');
    await idle.waitForResponse();
    const session = h2connect(proxy.url, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice.certPem,
      key: cluster.alice.keyPem,
    });
    session.on('error', () => {});
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    const h2Watch = session.request({ ':path': '/api/v1/namespaces/default/pods?watch=true' });
    const h2Outcome = new Promise<string>((resolve) => {
      h2Watch.on('error', (err) => resolve(`error ${err.message}`));
      h2Watch.once('end', () => resolve('end'));
    });
    h2Watch.resume();
    await new Promise((resolve) => h2Watch.once('response', resolve));
    const ws = exec(proxy, 2);
    await new Promise((resolve) => ws.once('open', resolve));
    const execClose = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

    const exited = exitOf(proxy);
    const signalled = Date.now();
    proxy.child.kill('SIGTERM');
    await goaway;
    assert.equal(await h2Outcome, 'end', 'the HTTP/2 watch ended as a complete response');
    await h1Watch.closed;
    assert.ok(h1Watch.text.endsWith('0\r\n\r\n'), 'the HTTP/1.1 watch ended with the last chunk');
    await idle.closed;
    const refused = await new Promise<string>((resolve) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: proxy.port,
        ca: cluster.pki.clusterCa.certPem,
      });
      socket.once('secureConnect', () => resolve('accepted'));
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED', 'no new connection once stopping');
    assert.equal(await execClose, 1000, 'the exec session finished normally');
    const { code, at } = await exited;
    assert.equal(code, 0);
    assert.ok(
      at - signalled < 5000,
      `exited ${at - signalled} ms after SIGTERM (work done before the grace period)`,
    );
    assert.ok(proxy.logs.some((l) => l.msg === 'drained'));
    session.destroy();
  });

  test('a tunnel still open when the grace period ends is closed then, and the exit is 0', async () => {
    const proxy = await cluster.proxy(['--shutdown-grace=1500ms']);
    const ws = exec(proxy, 30);
    await new Promise((resolve) => ws.once('open', resolve));
    const closed = new Promise<number>((resolve) => ws.once('close', () => resolve(Date.now())));
    const exited = exitOf(proxy);
    const signalled = Date.now();
    proxy.child.kill('SIGTERM');
    const closedAt = await closed;
    const { code } = await exited;
    assert.equal(code, 0);
    assert.ok(
      closedAt - signalled >= 1300 && closedAt - signalled < 4000,
      `tunnel closed after ${closedAt - signalled} ms`,
    );
    const drained = proxy.logs.find((l) => l.msg === 'drained');
    assert.equal(drained?.closedAtDeadline, 1);
  });
});

describe('SIGHUP', () => {
  test('reloads the inputs without dropping a connection', async () => {
    const crlFile = cluster.pki.write('hup.crl', '');
    cluster.pki.writeCrl({ revoked: [], crlNumber: 1 });
    const { readFileSync, writeFileSync } = await import('node:fs');
    writeFileSync(crlFile, readFileSync(cluster.pki.files.crl));
    const proxy = await cluster.proxy([`--crl-file=${crlFile}`, '--reject-mode=status']);
    const session = h2connect(proxy.url, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice.certPem,
      key: cluster.alice.keyPem,
    });
    session.on('error', () => {});
    const watch = session.request({ ':path': '/api/v1/namespaces/default/pods?watch=true' });
    let events = '';
    watch.on('data', (d: Buffer) => {
      events += d.toString();
    });
    await new Promise((resolve) => watch.once('response', resolve));
    // Revoke someone else, then signal (the watcher may also notice the write: either is fine).
    writeFileSync(
      crlFile,
      cluster.pki.clusterCa.crl({ revoked: [{ serial: bob.serial }], crlNumber: 2 }),
    );
    proxy.child.kill('SIGHUP');
    await proxy.waitForLog((l) => l.msg === 'snapshot in force' && l.generation === 2, 5000);
    const name = `after-hup-${Date.now()}`;
    cluster.fake.addPod(name);
    const started = Date.now();
    while (!events.includes(name) && Date.now() - started < 5000)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(events.includes(name), 'the watch opened before the reload still delivers events');
    assert.equal(session.closed || session.destroyed, false);
    const res = await requestH2(`${proxy.url}/api`, {
      ca: cluster.pki.clusterCa.certPem,
      cert: bob,
    });
    assert.equal(res.status, 401, 'and the reload took effect for new connections');
    session.destroy();
  });
});
