/**
 * A connection whose certificate is revoked while it is open, between a raw client and a
 * scripted raw apiserver, at the byte level: a JSON watch ends with an ERROR event carrying
 * the 401 Status, injected only between events (never inside a chunk or an event split over
 * chunks); an exec's WebSocket ends with the Status on channel 3 and a Close, injected only
 * between messages; nothing the client sends after the cut reaches the apiserver. The
 * kubectl-level outcome is in test/e2e/cut-reason.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { RawTlsClient, requestH1, websocketUpgradeHead } from '../fake-apiserver/testkit.js';
import { REVOKED_ALERT_CODE } from '../support/alerts.js';
import { makePki, proxyArgs, type TestPki } from '../support/pki.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { RawUpstream, type UpstreamConnection } from '../support/raw-upstream.js';
import { Revoker } from '../support/revoker.js';
import { until } from '../support/wait.js';
import { frame, receive } from '../support/websocket-frames.js';

let pki: TestPki;
let upstream: RawUpstream;
let proxy: ProxyProcess;
let revoker: Revoker;
let users = 0;

before(async () => {
  pki = await makePki();
  upstream = await RawUpstream.start(pki);
  revoker = new Revoker(pki, 'cut.crl');
  proxy = await startProxyProcess(
    proxyArgs(pki, upstream.url, ['--upstream-pool-size=0', `--crl-file=${revoker.file}`]),
  );
});

after(async () => {
  await proxy?.stop();
  await upstream?.close();
  pki?.cleanup();
});

interface Connected {
  readonly user: IssuedCert;
  readonly client: RawTlsClient;
}

/** A new user (so that revoking it touches no other test) on a new connection. */
async function connect(to = proxy): Promise<Connected> {
  const user = await pki.user(`cut-user-${++users}`);
  const client = await RawTlsClient.connect(to.url, pki.clusterCa.certPem, user);
  return { user, client };
}

const revoke = (user: IssuedCert, on = proxy) => revoker.revoke(user, on);

/** Another proxy on the same upstream and CRL, stopped after the test. */
async function anotherProxy(
  t: { after: (fn: () => Promise<unknown>) => void },
  flags: string[],
): Promise<ProxyProcess> {
  const other = await startProxyProcess(
    proxyArgs(pki, upstream.url, [
      '--upstream-pool-size=0',
      `--crl-file=${revoker.file}`,
      ...flags,
    ]),
  );
  t.after(() => other.stop());
  return other;
}

/** The next upstream connection (the pool is off: one per client connection). */
async function nextUpstream(): Promise<UpstreamConnection> {
  const index = upstream.connections.length;
  const connection = await upstream.connection(index);
  await connection.heads(1);
  return connection;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: kube\r\n\r\n`;
const WATCH_HEAD =
  'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
const chunk = (data: string) => `${Buffer.byteLength(data).toString(16)}\r\n${data}\r\n`;

/** The chunks of a chunked body after the head; `complete` when the last chunk came. */
function chunksOf(text: string): { chunks: string[]; complete: boolean } {
  let pos = text.indexOf('\r\n\r\n') + 4;
  const chunks: string[] = [];
  while (pos < text.length) {
    const eol = text.indexOf('\r\n', pos);
    assert.ok(eol > pos, `a chunk-size line at ${pos}: ${JSON.stringify(text.slice(pos))}`);
    const size = Number.parseInt(text.slice(pos, eol), 16);
    if (size === 0) {
      assert.equal(text.slice(eol), '\r\n\r\n', 'nothing after the last chunk');
      return { chunks, complete: true };
    }
    const data = text.slice(eol + 2, eol + 2 + size);
    assert.equal(text.slice(eol + 2 + size, eol + 4 + size), '\r\n', 'CRLF after chunk data');
    chunks.push(data);
    pos = eol + 4 + size;
  }
  return { chunks, complete: false };
}

/** How much chunk data the start `wire` of a chunked response holds (a partial chunk too). */
function dataIn(wire: string): number {
  let pos = wire.indexOf('\r\n\r\n') + 4;
  let data = 0;
  while (pos < wire.length) {
    const eol = wire.indexOf('\r\n', pos);
    if (eol < 0) break;
    const size = Number.parseInt(wire.slice(pos, eol), 16);
    data += Math.min(size, wire.length - eol - 2);
    pos = eol + 4 + size;
  }
  return data;
}

function expectedErrorEvent(user: IssuedCert): RegExp {
  return new RegExp(
    `^\\{"type":"ERROR","object":\\{"kind":"Status","apiVersion":"v1","metadata":\\{\\},"status":"Failure","message":"client certificate revoked \\(serial ${user.serial}, issuer CN=kubernetes, revoked [^)]+\\)","reason":"Unauthorized","code":401\\}\\}\\n$`,
  );
}

describe('HTTP/1.1 JSON watch', () => {
  test('cut inside an event split over chunks: the event completes, then ERROR, the last chunk, the close', async () => {
    const { user, client } = await connect();
    client.socket.write(GET('/api/v1/pods?watch=true'));
    const up = await nextUpstream();
    const first = '{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a"}}}\n';
    const second = '{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"b"}}}\n';
    up.socket.write(WATCH_HEAD + chunk(first) + chunk(second.slice(0, 20)));
    await client.waitFor((text) => text.includes(second.slice(0, 20)));
    await revoke(user);
    await pause(100);
    assert.equal(client.socket.destroyed, false, 'held for the end of the event');
    up.socket.write(chunk(second.slice(20, 30)) + chunk(`${second.slice(30)}{"type":"DEL`));
    up.socket.write(chunk('ETED"}\n'));
    await client.closed;
    const { chunks, complete } = chunksOf(client.text);
    assert.equal(complete, true);
    assert.equal(chunks.slice(0, 3).join(''), first + second.slice(0, 30));
    // The chunk that ends the event also starts the next one: the cut waits for a chunk that
    // ends a line.
    assert.equal(chunks[3], `${second.slice(30)}{"type":"DEL`);
    assert.equal(chunks[4], 'ETED"}\n');
    assert.match(chunks[5] ?? '', expectedErrorEvent(user));
    assert.equal(chunks.length, 6);
    await until(() => up.closed, 'the upstream connection closed');
  });

  test('cut between events: ERROR at once; the upstream is closed and what it sends later is dropped', async () => {
    const { user, client } = await connect();
    client.socket.write(GET('/api/v1/namespaces/default/pods?resourceVersion=5&watch=1'));
    const up = await nextUpstream();
    up.socket.write(`${WATCH_HEAD}${chunk('{"type":"ADDED","object":{}}\n')}`);
    await client.waitFor((text) => text.includes('ADDED'));
    await revoke(user);
    await client.closed;
    const { chunks, complete } = chunksOf(client.text);
    assert.deepEqual([chunks.length, complete], [2, true]);
    assert.match(chunks[1] ?? '', expectedErrorEvent(user));
    await until(() => up.closed, 'the upstream connection closed');
  });

  test('fuzz: response bytes split at random points across reads, cut at a random one', async () => {
    const events = Array.from(
      { length: 6 },
      (_, i) => `{"type":"MODIFIED","object":{"n":${i},"pad":"${'x'.repeat(i * 37)}"}}\n`,
    );
    const body = events.join('');
    for (let round = 0; round < 6; round++) {
      const { user, client } = await connect();
      client.socket.write(GET('/api/v1/pods?watch=true'));
      const up = await nextUpstream();
      // Chunks that cut events anywhere, as a full 2 KiB write buffer would.
      let wire = WATCH_HEAD;
      /** Where chunks end in the body; the cut may end the watch only where one ends a line. */
      const chunkEnds: number[] = [];
      for (let pos = 0; pos < body.length; ) {
        const size = 1 + ((pos * 7919 + round * 104729) % 90);
        wire += chunk(body.slice(pos, pos + size));
        pos += size;
        chunkEnds.push(Math.min(pos, body.length));
      }
      const pieces: string[] = [];
      for (let pos = 0; pos < wire.length; ) {
        const size = 1 + ((pos * 31 + round * 17) % 60);
        pieces.push(wire.slice(pos, pos + size));
        pos += size;
      }
      const cutAfter = Math.floor(pieces.length * ((round + 1) / 8));
      for (let i = 0; i < pieces.length; i++) {
        if (i === cutAfter) await revoke(user);
        if (client.socket.destroyed) break;
        up.socket.write(pieces[i] as string);
        await pause(2);
      }
      await client.closed;
      const { chunks, complete } = chunksOf(client.text);
      assert.equal(complete, true, `round ${round}: ended with the last chunk`);
      const last = chunks.pop() as string;
      assert.match(last, expectedErrorEvent(user), `round ${round}`);
      const passed = chunks.join('');
      assert.ok(body.startsWith(passed), `round ${round}: what passed is the upstream's own`);
      assert.ok(passed === '' || passed.endsWith('\n'), `round ${round}: it ends with an event`);
      // Nothing past the first chunk that ends an event after the cut came.
      const written = dataIn(pieces.slice(0, cutAfter).join(''));
      const stop =
        written === 0 ? 0 : chunkEnds.find((end) => end >= written && body[end - 1] === '\n');
      assert.ok(passed.length <= (stop ?? 0), `round ${round}: ${passed.length} > ${stop}`);
    }
  });

  test('an upstream silent in the middle of an event: the connection is cut short, no event injected', async () => {
    const { user, client } = await connect();
    client.socket.write(GET('/api/v1/pods?watch=true'));
    const up = await nextUpstream();
    up.socket.write(`${WATCH_HEAD}${chunk('{"type":"ADD')}`);
    await client.waitFor((text) => text.includes('ADD'));
    await revoke(user);
    await client.closed;
    const { chunks, complete } = chunksOf(client.text);
    assert.deepEqual({ chunks, complete }, { chunks: ['{"type":"ADD'], complete: false });
  });

  test('a watch that is not JSON (protobuf) and logs -f: cut short, nothing injected', async () => {
    for (const [path, type] of [
      ['/api/v1/pods?watch=true', 'application/vnd.kubernetes.protobuf;stream=watch'],
      ['/api/v1/namespaces/default/pods/demo/log?follow=true', 'text/plain'],
    ] as const) {
      const { user, client } = await connect();
      client.socket.write(GET(path));
      const up = await nextUpstream();
      up.socket.write(
        `HTTP/1.1 200 OK\r\nContent-Type: ${type}\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('line\n')}`,
      );
      await client.waitFor((text) => text.includes('line'));
      await revoke(user);
      await client.closed;
      assert.deepEqual(chunksOf(client.text), { chunks: ['line\n'], complete: false }, type);
    }
  });
});

describe('HTTP/1.1 requests and idle connections', () => {
  /** An answered request on `to`, then the user revoked: the idle connection closes bare. */
  async function idleThenRevoked(to: ProxyProcess): Promise<IssuedCert> {
    const { user, client } = await connect(to);
    client.socket.write(GET('/api/v1/namespaces'));
    const up = await nextUpstream();
    up.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
    await client.waitForResponse();
    const answered = client.text.length;
    await revoke(user, to);
    await client.closed;
    assert.equal(client.text.length, answered, 'nothing more was sent on it');
    return user;
  }

  test('an idle keep-alive connection is closed; the next connection gets the TLS alert (default)', async () => {
    const user = await idleThenRevoked(proxy);
    await assert.rejects(
      requestH1(`${proxy.url}/api/v1/namespaces`, { ca: pki.clusterCa.certPem, cert: user }),
      { code: REVOKED_ALERT_CODE },
    );
  });

  test('--reject-mode=status: the next request, on a new connection, gets the 401 Status', async (t) => {
    const statusProxy = await anotherProxy(t, ['--reject-mode=status']);
    const user = await idleThenRevoked(statusProxy);
    const next = await requestH1(`${statusProxy.url}/api/v1/namespaces`, {
      ca: pki.clusterCa.certPem,
      cert: user,
    });
    assert.equal(next.status, 401);
    assert.match(
      next.body,
      new RegExp(
        `^\\{"kind":"Status","apiVersion":"v1","metadata":\\{\\},"status":"Failure","message":"client certificate revoked \\(serial ${user.serial}, issuer CN=kubernetes, revoked [^)]+\\)","reason":"Unauthorized","code":401\\}$`,
      ),
    );
  });

  test('--reject-mode=close tells nothing: a cut JSON watch is cut short, no event', async (t) => {
    const closeProxy = await anotherProxy(t, ['--reject-mode=close']);
    const { user, client } = await connect(closeProxy);
    client.socket.write(GET('/api/v1/pods?watch=true'));
    const up = await nextUpstream();
    up.socket.write(`${WATCH_HEAD}${chunk('{"type":"ADDED","object":{}}\n')}`);
    await client.waitFor((text) => text.includes('ADDED'));
    await revoke(user, closeProxy);
    await client.closed;
    assert.deepEqual(chunksOf(client.text), {
      chunks: ['{"type":"ADDED","object":{}}\n'],
      complete: false,
    });
  });

  test('a GET waiting for its answer gets the 401 Status; the upstream connection is closed', async () => {
    const { user, client } = await connect();
    client.socket.write(GET('/api/v1/pods'));
    const up = await nextUpstream();
    await revoke(user);
    await client.closed;
    assert.match(client.text, /^HTTP\/1\.1 401 Unauthorized\r\n/);
    assert.match(client.text, /\r\nConnection: close\r\n/);
    assert.match(client.text, /"message":"client certificate revoked \(serial /);
    await until(() => up.closed, 'the upstream connection closed');
  });

  test('a POST the apiserver has whole but not answered: cut, no answer claims its outcome', async () => {
    const { user, client } = await connect();
    client.socket.write(
      'POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: kube\r\nContent-Length: 2\r\n\r\n{}',
    );
    const up = await nextUpstream();
    await until(() => up.received.endsWith('{}'), 'the body upstream');
    await revoke(user);
    await client.closed;
    assert.equal(client.text, '');
  });
});

/** The WebSocket messages and Close code in what the client read after the 101's head. */
async function messagesOf(text: string): Promise<{ messages: Buffer[]; close: number | null }> {
  const received = await receive(Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1'));
  return { messages: received.messages.map((m) => m.data), close: received.close?.code ?? null };
}

const SWITCHED =
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n';

/** An exec over WebSocket v5 through the proxy, switched by the raw upstream. */
async function execSession(): Promise<Connected & { up: UpstreamConnection }> {
  const connected = await connect();
  connected.client.socket.write(
    websocketUpgradeHead('/api/v1/namespaces/default/pods/demo/exec?command=sh', 'kube'),
  );
  const up = await nextUpstream();
  up.socket.write(SWITCHED);
  await connected.client.waitFor((text) => text.includes('\r\n\r\n'));
  return { ...connected, up };
}

function statusOf(message: Buffer | undefined): unknown {
  assert.equal(message?.[0], 3, 'channel 3');
  return JSON.parse(message.subarray(1).toString());
}

describe('WebSocket v5 exec', () => {
  test('cut inside a message: it completes; the Status on channel 3, Close 1000; no client byte goes up after the cut', async () => {
    const { user, client, up } = await execSession();
    const stdout = frame(Buffer.from('\u0001hello from the pod'));
    up.socket.write(Buffer.concat([frame(Buffer.of(1)), stdout.subarray(0, 5)]));
    await pause(50);
    await revoke(user);
    client.socket.write('after the cut');
    await pause(100);
    up.socket.write(Buffer.concat([stdout.subarray(5), frame(Buffer.from('\u0001too late'))]));
    await client.closed;
    assert.doesNotMatch(up.received, /after the cut/);
    const { messages, close } = await messagesOf(client.text);
    assert.equal(messages.length, 3);
    assert.equal(messages[1]?.toString(), '\u0001hello from the pod');
    const status = statusOf(messages[2]) as Record<string, unknown>;
    assert.match(
      String(status.message),
      new RegExp(`^client certificate revoked \\(serial ${user.serial}, issuer CN=kubernetes, `),
    );
    assert.deepEqual(status, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: status.message,
      reason: 'Unauthorized',
      code: 401,
    });
    assert.equal(close, 1000);
    await until(() => up.closed, 'the upstream connection closed');
  });

  test('fuzz: fragmented messages and pings split at random points across reads, cut at a random one', async () => {
    for (let round = 0; round < 5; round++) {
      const { user, client, up } = await execSession();
      const frames: Buffer[] = [];
      /** Where each data message ends in the wire. */
      const messageEnds: number[] = [];
      let length = 0;
      const add = (bytes: Buffer, endsMessage: boolean) => {
        frames.push(bytes);
        length += bytes.length;
        if (endsMessage) messageEnds.push(length);
      };
      for (let i = 0; i < 8; i++) {
        const payload = Buffer.concat([Buffer.of(1), Buffer.alloc(40 + i * 300 * round, 0x61 + i)]);
        if (i % 3 === 1) {
          add(frame(payload.subarray(0, 10), 0x2, false), false);
          add(frame(Buffer.from('ping'), 0x9), false);
          add(frame(payload.subarray(10), 0x0, true), true);
        } else add(frame(payload), true);
      }
      const wire = Buffer.concat(frames);
      const cutAt = Math.floor(wire.length * ((round + 1) / 7));
      let writtenAtCut = -1;
      for (let pos = 0; pos < wire.length && !client.socket.destroyed; ) {
        const size = 1 + ((pos * 13 + round * 7) % 700);
        if (pos <= cutAt && cutAt < pos + size) {
          await revoke(user);
          writtenAtCut = pos;
        }
        up.socket.write(wire.subarray(pos, pos + size));
        pos += size;
        await pause(2);
      }
      await client.closed;
      const { messages, close } = await messagesOf(client.text);
      assert.equal(close, 1000, `round ${round}`);
      const status = messages.pop();
      assert.equal((statusOf(status) as { code: number }).code, 401, `round ${round}`);
      for (const message of messages) assert.equal(message[0], 1, `round ${round}: stdout only`);
      // Nothing past the message under way when the cut came.
      const started = messageEnds.filter((end) => end <= writtenAtCut).length;
      assert.ok(messages.length <= started + 1, `round ${round}: ${messages.length} messages`);
    }
  });

  test('a Status the apiserver already sent is not doubled: only the Close follows', async () => {
    const { user, client, up } = await execSession();
    up.socket.write(frame(Buffer.from('\u0003{"metadata":{},"status":"Success"}')));
    await client.waitFor((text) => text.includes('Success'));
    await revoke(user);
    await client.closed;
    const { messages, close } = await messagesOf(client.text);
    assert.deepEqual(
      messages.map((m) => m.toString()),
      ['\u0003{"metadata":{},"status":"Success"}'],
    );
    assert.equal(close, 1000);
  });

  test('cut before the 101: the upgrade request is answered with the 401 Status', async () => {
    const { user, client } = await connect();
    client.socket.write(websocketUpgradeHead('/api/v1/namespaces/default/pods/demo/exec', 'kube'));
    const up = await nextUpstream();
    await revoke(user);
    await client.closed;
    assert.match(client.text, /^HTTP\/1\.1 401 Unauthorized\r\n/);
    assert.match(client.text, /"reason":"Unauthorized","code":401\}$/);
    await until(() => up.closed, 'the upstream connection closed');
  });
});
