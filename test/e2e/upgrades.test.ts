/**
 * Upgrade tunnels (issue 3): the CVE-2018-1002105 rules, backpressure, cancellation in both
 * directions, long idle sessions with every timeout shortened, and the negative cases.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { createWebSocketStream, WebSocket } from 'ws';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import {
  killChild,
  OutputWatcher,
  RawTlsClient,
  requestH1,
  spawnKubectl,
  TempDir,
  websocketUpgradeHead,
  writeKubeconfig,
} from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { until } from '../support/wait.js';

const MB = 1024 * 1024;
const EXEC = '/api/v1/namespaces/default/pods/demo/exec';

const cluster = new TestCluster({ aliceGroups: ['dev', 'ops'] });
let mallory: IssuedCert;
let tmp: TempDir;

before(async () => {
  await cluster.start();
  mallory = await cluster.pki.user('mallory');
  cluster.pki.writeCrl({ revoked: [{ serial: mallory.serial }], crlNumber: 2 });
  tmp = await TempDir.create('kcp-upgrades-');
});

after(async () => {
  await tmp?.remove();
  await cluster.stop();
});

function wsUrl(proxy: ProxyProcess, query: string): string {
  return `wss://127.0.0.1:${proxy.port}${EXEC}?${query}`;
}

function openExec(
  proxy: ProxyProcess,
  query: string,
  cert: IssuedCert = cluster.alice,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(proxy, query), ['v5.channel.k8s.io'], {
      ca: cluster.pki.clusterCa.certPem,
      cert: cert.certPem,
      key: cert.keyPem,
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade answered ${res.statusCode}`)),
    );
  });
}

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
}

describe('tunnel rules', () => {
  test('a revoked or unknown client never causes an upstream dial', async () => {
    const proxy = await cluster.proxy(['--upstream-pool-size=0', '--reject-mode=status']);
    await new Promise((r) => setTimeout(r, 200));
    const before = cluster.fake.connectionsAccepted;
    for (const cert of [mallory, undefined]) {
      const client = await RawTlsClient.connect(proxy.url, cluster.pki.clusterCa.certPem, cert);
      client.socket.write(
        websocketUpgradeHead(`${EXEC}?command=id&stdout=true`, `127.0.0.1:${proxy.port}`),
      );
      if (cert !== undefined) {
        const text = await client.waitForResponse();
        assert.match(text, /^HTTP\/1\.1 401 /);
        assert.match(text, /client certificate revoked/);
        await client.closed;
      }
      client.destroy();
    }
    await new Promise((r) => setTimeout(r, 300));
    // The anonymous one is forwarded (kube decides); only it may have dialled.
    assert.ok(
      cluster.fake.connectionsAccepted - before <= 1,
      `${cluster.fake.connectionsAccepted - before} dials`,
    );
    const revokedOnly = cluster.fake.connectionsAccepted;
    const client = await RawTlsClient.connect(proxy.url, cluster.pki.clusterCa.certPem, mallory);
    client.socket.write(
      websocketUpgradeHead(`${EXEC}?command=id&stdout=true`, `127.0.0.1:${proxy.port}`),
    );
    await client.waitForResponse();
    await client.closed;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(
      cluster.fake.connectionsAccepted,
      revokedOnly,
      'the revoked client caused no dial',
    );
  });

  for (const status of [400, 403, 302]) {
    test(`an upgrade answered ${status}: the client sees it, both sides close, no later byte reaches the apiserver`, async (t) => {
      const proxy = await cluster.proxy();
      const headers: Record<string, string> =
        status === 302
          ? { Location: 'https://elsewhere.example/' }
          : { 'Content-Type': 'application/json' };
      cluster.fake.upgradeOverride = () => ({
        status,
        headers,
        body: JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          code: status,
          message: `no (${status})`,
        }),
      });
      t.after(() => {
        cluster.fake.upgradeOverride = null;
      });
      const bytesBefore = cluster.fake.bytesAfterRejectedUpgrade();
      const mark = cluster.fake.requests.length;
      const client = await RawTlsClient.connect(
        proxy.url,
        cluster.pki.clusterCa.certPem,
        cluster.alice,
      );
      // The upgrade request and, right behind it, a request that must never reach the apiserver
      // on the proxy's privileged connection (CVE-2018-1002105).
      client.socket.write(
        websocketUpgradeHead(`${EXEC}?command=id&stdout=true`, `127.0.0.1:${proxy.port}`) +
          'GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: x\r\n\r\n',
      );
      const text = await client.waitForResponse();
      assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `));
      assert.match(text, new RegExp(`no \\(${status}\\)`));
      await client.closed;
      client.socket.destroy();
      await new Promise((r) => setTimeout(r, 1200));
      assert.equal(
        cluster.fake.bytesAfterRejectedUpgrade(),
        bytesBefore,
        'nothing arrived after the request',
      );
      const seen = cluster.fake.requests.slice(mark);
      assert.deepEqual(
        seen.map((r) => r.path),
        [EXEC],
      );
    });
  }

  test('CONNECT over HTTP/2 gets a clear error', async () => {
    const proxy = await cluster.proxy();
    const session = h2connect(proxy.url, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice.certPem,
      key: cluster.alice.keyPem,
    });
    try {
      const result = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':method': 'CONNECT', ':authority': 'demo:8080' });
        let body = '';
        let status = 0;
        stream.on('response', (h) => {
          status = Number(h[':status']);
        });
        stream.on('data', (d: Buffer) => {
          body += d;
        });
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
      });
      assert.equal(result.status, 400);
      assert.match(result.body, /upgrades \(exec, attach, port-forward\) must use HTTP\/1\.1/);
    } finally {
      session.close();
    }
  });

  test('Connection: upgrade without Upgrade is an ordinary request', async () => {
    const proxy = await cluster.proxy();
    const res = await requestH1(`${proxy.url}/version?no-upgrade=1`, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice,
      headers: [['Connection', 'upgrade']],
    });
    assert.equal(res.status, 200);
    assert.match(res.body, /"gitVersion"/);
    const seen = cluster.fake.requests.findLast((r) => r.query === 'no-upgrade=1');
    assert.equal(seen?.upgrade, null);
    assert.ok(!seen?.rawHeaders.some(([n]) => n === 'upgrade'));
  });
});

describe('backpressure', () => {
  test('200 MB to a slow reader: the apiserver is slowed down, the proxy stays small', async () => {
    const proxy = await cluster.proxy();
    const total = 200 * MB;
    const ws = await openExec(
      proxy,
      `command=head&command=-c&command=${total}&command=/dev/zero&stdout=true`,
    );
    const stream = createWebSocketStream(ws);
    const baseline = rssOf(proxy.child.pid as number);
    let received = 0;
    let peakRss = baseline;
    let maxAhead = 0;
    const session = await (async () => {
      await until(
        () => cluster.fake.sessions.some((s) => s.kind === 'exec' && s.endedAt === null),
        'exec session',
      );
      return cluster.fake.sessions.findLast((s) => s.kind === 'exec');
    })();
    assert.ok(session);
    const done = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    // Read 1 MB, then stop for 25 ms: ~40 MB/s, far slower than the fake can produce.
    const reader = async () => {
      for (;;) {
        const chunk: Buffer | null = stream.read();
        if (chunk === null) {
          if (stream.readableEnded) return;
          await new Promise<void>((r) => {
            const onReadable = () => {
              stream.off('end', onReadable);
              r();
            };
            stream.once('readable', onReadable);
            stream.once('end', onReadable);
          });
          continue;
        }
        received += chunk.length;
        if (received % MB < chunk.length) {
          peakRss = Math.max(peakRss, rssOf(proxy.child.pid as number));
          maxAhead = Math.max(maxAhead, session.bytesOut - received);
          await new Promise((r) => setTimeout(r, 25));
        }
      }
    };
    await Promise.race([
      Promise.all([reader(), done]),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`only ${received} bytes in 90 s`)), 90_000),
      ),
    ]);
    ws.close();
    const growth = peakRss - baseline;
    assert.ok(received >= total, `received ${received}`);
    // Bound: 48 MB of RSS growth for the proxy, 32 MB produced ahead of the reader (kernel
    // socket buffers on three hops, WebSocket framing, the reader's own stream buffer).
    assert.ok(growth < 48 * MB, `proxy RSS grew ${(growth / MB).toFixed(1)} MB`);
    assert.ok(
      maxAhead < 32 * MB,
      `the apiserver ran ${(maxAhead / MB).toFixed(1)} MB ahead of the reader`,
    );
    process.stdout.write(
      `# backpressure: proxy RSS +${(growth / MB).toFixed(1)} MB, producer ahead by at most ${(maxAhead / MB).toFixed(1)} MB\n`,
    );
  });
});

describe('cancellation', () => {
  test('a client that leaves a watch: its upstream connection is gone within a second', async (t) => {
    const proxy = await cluster.proxy(['--upstream-pool-size=0']);
    const kubeconfig = await writeKubeconfig(
      tmp,
      proxy.url,
      cluster.pki.clusterCa.certPem,
      { cert: cluster.alice },
      'watch-cancel',
    );
    const child = spawnKubectl(
      { kubeconfig, cacheDir: tmp.file('watch-cancel-cache'), home: tmp.path },
      ['get', 'pods', '-w'],
    );
    t.after(() => killChild(child));
    await new OutputWatcher(child).waitFor(/^demo\s/);
    await cluster.fake.waitForRequest(
      (r) => r.query.includes('watch=') && r.user?.username === 'alice',
    );
    const open = cluster.fake.openConnections;
    await killChild(child);
    const started = Date.now();
    await until(() => cluster.fake.openConnections < open, 'upstream connection closed', 1000);
    assert.ok(Date.now() - started < 1000);
  });

  test('an exec ended by the apiserver ends at the client, and a server-ended watch ends there too', async () => {
    const proxy = await cluster.proxy();
    const ws = await openExec(proxy, 'command=sleep&command=1&stdout=true');
    const closedAt = await new Promise<number>((resolve) =>
      ws.once('close', () => resolve(Date.now())),
    );
    const session = cluster.fake.sessions.findLast((s) => s.kind === 'exec');
    assert.ok(session?.endedAt);
    assert.ok(closedAt - session.endedAt < 1000, `${closedAt - session.endedAt} ms`);
    const started = Date.now();
    const watch = await requestH1(
      `${proxy.url}/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=1`,
      {
        ca: cluster.pki.clusterCa.certPem,
        cert: cluster.alice,
        timeoutMs: 5000,
      },
    );
    assert.equal(watch.status, 200);
    assert.ok(Date.now() - started < 2500, 'the watch ended when the apiserver ended it');
  });
});

describe('long idle sessions', () => {
  const shortTimeouts = [
    '--http-idle-timeout=1s',
    '--http-header-timeout=1s',
    '--tls-handshake-timeout=1s',
    '--h2-ping-interval=1s',
  ];

  test('an exec session and a watch idle past every (shortened) timeout stay open', async (t) => {
    const proxy = await cluster.proxy(shortTimeouts);
    const ws = await openExec(
      proxy,
      'command=sh&command=-c&command=sleep 3; echo still here&stdout=true',
    );
    const output: Buffer[] = [];
    ws.on('message', (data: Buffer) => output.push(data));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const watchClient = await RawTlsClient.connect(
      proxy.url,
      cluster.pki.clusterCa.certPem,
      cluster.alice,
    );
    t.after(() => watchClient.destroy());
    watchClient.socket.write(
      'GET /api/v1/namespaces/default/pods?watch=true HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    await watchClient.waitFor((text) => text.includes('\r\n\r\n'));
    await new Promise((r) => setTimeout(r, 3500));
    const name = `idle-${Date.now()}`;
    cluster.fake.addPod(name);
    await watchClient.waitFor((text) => text.includes(name), 3000);
    const exit = await closed;
    assert.equal(exit, 1000);
    const stdout = Buffer.concat(
      output.filter((m) => m[0] === 1).map((m) => m.subarray(1)),
    ).toString();
    assert.equal(stdout, 'still here\n');
  });

  test('WebSocket pings pass through the tunnel', async () => {
    const proxy = await cluster.proxy(shortTimeouts);
    const ws = await openExec(proxy, 'command=sleep&command=5&stdout=true');
    const pongs: number[] = [];
    ws.on('pong', () => pongs.push(Date.now()));
    for (let i = 0; i < 3; i++) {
      ws.ping();
      await new Promise((r) => setTimeout(r, 1200));
    }
    assert.equal(pongs.length, 3);
    ws.terminate();
  });
});
