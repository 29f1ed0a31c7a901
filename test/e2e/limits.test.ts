/**
 * Limits (issue 8): request head size, slow request heads (slowloris), the connection cap, the
 * HTTP/2 stream limit and the rapid-reset flood — each configurable, each with a clear effect.
 */
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { ErrorCode, FrameType } from '../../src/proxy/h2/frames.js';
import { RawTlsClient, requestH1 } from '../fake-apiserver/testkit.js';
import { frame, headersFrame, RawH2Client, requestFields } from '../security/h2-frames.js';
import { TestCluster } from '../support/cluster.js';
import { type ProxyProcess, scrapeMetric } from '../support/proxy-process.js';

const cluster = new TestCluster();

before(() => cluster.start());

after(() => cluster.stop());

const metric = (proxy: ProxyProcess, series: string) => scrapeMetric(proxy, series, Number.NaN);

function connectAlice(proxy: ProxyProcess, alpn?: string[]): TLSSocket {
  return tlsConnect({
    host: '127.0.0.1',
    port: proxy.port,
    ca: cluster.pki.clusterCa.certPem,
    cert: cluster.alice.certPem,
    key: cluster.alice.keyPem,
    ...(alpn === undefined ? {} : { ALPNProtocols: alpn }),
  });
}

function openTls(proxy: ProxyProcess): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connectAlice(proxy, ['http/1.1']);
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('request heads', () => {
  test('a head larger than --max-header-bytes is refused with 431 and the connection closes', async () => {
    const proxy = await cluster.proxy(['--max-header-bytes=8192']);
    const mark = cluster.fake.requests.length;
    const client = await RawTlsClient.connect(
      proxy.url,
      cluster.pki.clusterCa.certPem,
      cluster.alice,
    );
    client.socket.write(`GET /api HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`);
    const text = await client.waitForResponse();
    assert.match(text, /^HTTP\/1\.1 431 /);
    assert.match(text, /"reason":"BadRequest"/);
    await client.closed;
    assert.equal(cluster.fake.requests.length, mark);
    const fine = await requestH1(`${proxy.url}/api`, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice,
      headers: [['X-Ok', 'a'.repeat(4000)]],
    });
    assert.equal(fine.status, 200);
  });

  test('--max-header-count: more header fields get 431 on both protocols, never a silent cut', async () => {
    const proxy = await cluster.proxy(['--max-header-count=20']);
    const mark = cluster.fake.requests.length;
    const many = Array.from({ length: 30 }, (_, i) => [`x-h${i}`, 'v'] as [string, string]);
    const client = await RawTlsClient.connect(
      proxy.url,
      cluster.pki.clusterCa.certPem,
      cluster.alice,
    );
    client.socket.write(
      `GET /api HTTP/1.1\r\nHost: x\r\n${many.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`,
    );
    const text = await client.waitForResponse();
    assert.match(text, /^HTTP\/1\.1 431 /);
    assert.match(text, /--max-header-count/);
    await client.closed;
    const h2 = await RawH2Client.connect(proxy.url, cluster.pki.clusterCa.certPem, cluster.alice);
    try {
      h2.send(headersFrame(1, requestFields('/api', many), { endStream: true }));
      await h2.waitFor(() => h2.status(1) !== null, 'the answer');
      assert.equal(h2.status(1), 431);
    } finally {
      h2.socket.destroy();
    }
    assert.equal(cluster.fake.requests.length, mark, 'nothing went upstream');
    const fine = await requestH1(`${proxy.url}/api`, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice,
      headers: many.slice(0, 10),
    });
    assert.equal(fine.status, 200);
    const seen = cluster.fake.requests.at(-1);
    const names = new Set(seen?.rawHeaders.map(([name]) => name));
    for (const [name] of many.slice(0, 10)) assert.ok(names.has(name), `${name} arrived`);
  });

  test('a client that never finishes its request head is cut after --http-header-timeout', async () => {
    const proxy = await cluster.proxy(['--http-header-timeout=1s']);
    const client = await RawTlsClient.connect(
      proxy.url,
      cluster.pki.clusterCa.certPem,
      cluster.alice,
    );
    const started = Date.now();
    client.socket.write('GET /api HTTP/1.1\r\nHost: x\r\n');
    // Dribble a header byte now and then, never the final CRLF.
    const dribble = setInterval(() => client.socket.write('X'), 200);
    try {
      await Promise.race([
        client.closed,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('still open after 6 s')), 6000),
        ),
      ]);
    } finally {
      clearInterval(dribble);
    }
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 4000, `cut after ${elapsed} ms`);
  });
});

describe('connections', () => {
  test('--max-connections: further connections are closed at once, logged and counted; room frees up', async () => {
    const proxy = await cluster.proxy(['--max-connections=3']);
    const held = await Promise.all([openTls(proxy), openTls(proxy), openTls(proxy)]);
    const dropped = await new Promise<string>((resolve) => {
      const socket = connectAlice(proxy);
      socket.once('secureConnect', () => resolve('connected'));
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      socket.once('close', () => resolve('closed'));
    });
    assert.notEqual(dropped, 'connected');
    const line = await proxy.waitForLog((l) => l.msg.startsWith('connection limit reached'));
    assert.equal(line.maxConnections, 3);
    assert.ok((await metric(proxy, 'kube_crl_proxy_connections_dropped_total')) >= 1);
    held[0]?.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const res = await requestH1(`${proxy.url}/api`, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice,
    });
    assert.equal(res.status, 200);
    for (const socket of held) socket.destroy();
  });
});

describe('HTTP/2', () => {
  test('--h2-max-concurrent-streams is what the client is told', async () => {
    const proxy = await cluster.proxy(['--h2-max-concurrent-streams=7']);
    const session = h2connect(proxy.url, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice.certPem,
      key: cluster.alice.keyPem,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('remoteSettings', () => resolve());
        session.once('error', reject);
      });
      // The apiserver's own limit may arrive later and may be lower; ours is the ceiling.
      await new Promise((r) => setTimeout(r, 300));
      const limit = session.remoteSettings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
      assert.ok(limit <= 7, `client told ${limit}`);
    } finally {
      session.close();
    }
  });

  test('a rapid-reset flood (HEADERS then RST_STREAM, thousands) ends with GOAWAY; the proxy keeps serving', async () => {
    const proxy = await cluster.proxy([]);
    const client = await RawH2Client.connect(
      proxy.url,
      cluster.pki.clusterCa.certPem,
      cluster.alice,
    );
    try {
      const fields = requestFields('/api/v1/namespaces/default/pods');
      const burst: Buffer[] = [];
      for (let i = 0, id = 1; i < 4000; i++, id += 2) {
        burst.push(headersFrame(id, fields, { endStream: true }));
        burst.push(frame(FrameType.RstStream, 0, id, Buffer.from([0, 0, 0, ErrorCode.Cancel])));
      }
      client.send(Buffer.concat(burst));
      await client.waitFor(
        () => client.goawayCode() !== null || client.isClosed,
        'GOAWAY or close',
        15_000,
      );
      assert.equal(client.goawayCode(), ErrorCode.EnhanceYourCalm);
    } finally {
      client.socket.destroy();
    }
    const res = await requestH1(`${proxy.url}/api`, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice,
    });
    assert.equal(res.status, 200, 'still serving');
    assert.equal(proxy.child.exitCode, null);
  });
});
