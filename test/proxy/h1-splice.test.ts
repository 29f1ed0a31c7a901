/**
 * The HTTP/1.1 splice between a raw client and a scripted raw upstream: what goes up (a rebuilt
 * head, the body as sent), what comes back (the response bytes untouched), and what happens
 * when the upstream closes, answers oddly or says more than it was asked. The end-to-end suites
 * cover the same path with kubectl and Node's own clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { RawTlsClient } from '../fake-apiserver/testkit.js';
import { completeResponses, statusCodes } from '../security/harness.js';
import { makePkiWithAlice, proxyArgs, type TestPki } from '../support/pki.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { RawUpstream } from '../support/raw-upstream.js';
import { until } from '../support/wait.js';

let pki: TestPki;
let alice: IssuedCert;

before(async () => {
  ({ pki, alice } = await makePkiWithAlice());
});

after(() => pki?.cleanup());

interface Rig {
  readonly upstream: RawUpstream;
  readonly proxy: ProxyProcess;
  readonly client: RawTlsClient;
}

async function rig(t: { after: (fn: () => Promise<void> | void) => void }): Promise<Rig> {
  const upstream = await RawUpstream.start(pki);
  const proxy = await startProxyProcess(proxyArgs(pki, upstream.url, ['--upstream-pool-size=0']));
  const client = await RawTlsClient.connect(proxy.url, pki.clusterCa.certPem, alice);
  t.after(async () => {
    client.socket.destroy();
    await proxy.stop();
    await upstream.close();
  });
  return { upstream, proxy, client };
}

const GET = (path: string, lines: readonly string[] = []) =>
  `GET ${path} HTTP/1.1\r\nHost: kube\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;

describe('what goes up', () => {
  test('a rebuilt head: Host first, identity set, client identity and hop-by-hop gone, body as sent', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(
      'POST /api/v1/namespaces/default/configmaps?x=1 HTTP/1.1\r\nX-Remote-User: mallory\r\nhost: kube\r\n' +
        'Keep-Alive: timeout=5\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n' +
        'Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Remote-Group: system:masters\r\n\r\n',
    );
    const up = await upstream.connection(0);
    await until(() => up.received.endsWith('0\r\n\r\n'), 'the whole request');
    assert.equal(
      up.received,
      'POST /api/v1/namespaces/default/configmaps?x=1 HTTP/1.1\r\nHost: kube\r\n' +
        'Content-Type: application/json\r\nX-Forwarded-For: 127.0.0.1\r\n' +
        'X-Remote-User: alice\r\nX-Remote-Group: dev\r\nX-Remote-Group: ops\r\n' +
        'Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
    );
  });
});

describe('bodies', () => {
  test('a 4 MB chunked body in odd chunk sizes, then a Content-Length body: byte for byte, ends exact', async (t) => {
    const { upstream, client } = await rig(t);
    let chunked = '';
    let size = 1;
    for (
      let total = 0;
      total < 4 * 1024 * 1024;
      total += size, size = ((size * 7 + 13) % 70_000) + 1
    )
      chunked += `${size.toString(16)}\r\n${'x'.repeat(size)}\r\n`;
    chunked += '0\r\n\r\n';
    const head = 'POST /a HTTP/1.1\r\nHost: kube\r\nTransfer-Encoding: chunked\r\n\r\n';
    const second = 'PUT /b HTTP/1.1\r\nHost: kube\r\nContent-Length: 5\r\n\r\nhello';
    client.socket.write(head + chunked + second);
    const up = await upstream.connection(0);
    await until(() => up.received.endsWith('0\r\n\r\n'), 'the whole chunked body', 20_000);
    assert.equal(up.received.slice(up.received.indexOf('\r\n\r\n') + 4), chunked);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!up.received.includes('PUT'), 'the second request waits for the first answer');
    const before = up.received.length;
    up.socket.write('HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n');
    await until(() => up.received.endsWith('hello'), 'the second request');
    const tail = up.received.slice(before);
    assert.match(tail, /^PUT \/b HTTP\/1\.1\r\n/);
    assert.match(tail, /\r\nContent-Length: 5\r\n\r\nhello$/);
  });
});

describe('what comes back', () => {
  test('response bytes pass untouched: casing, reason phrase, chunk extensions, trailers', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET('/api?watch=true'));
    const up = await upstream.connection(0);
    await up.heads(1);
    const response =
      'HTTP/1.1 200 Fine Thanks\r\nx-odd-CASE:  spaced \r\nTransfer-Encoding: chunked\r\n\r\n' +
      '3;ext=1\r\nabc\r\n';
    up.socket.write(response);
    await client.waitFor((text) => text === response);
    const rest = '0\r\nX-Trailer: t\r\n\r\n';
    up.socket.write(rest);
    await client.waitFor((text) => text === response + rest);
    // The connection stays usable on both sides.
    client.socket.write(GET('/version'));
    await up.heads(2);
    up.socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    await client.waitFor((text) => text.endsWith('HTTP/1.1 204 No Content\r\n\r\n'));
    assert.equal(upstream.connections.length, 1);
  });

  test('HEAD: a Content-Length without a body; the next request follows at once', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(`HEAD /api HTTP/1.1\r\nHost: kube\r\n\r\n${GET('/version')}`);
    const up = await upstream.connection(0);
    await up.heads(1);
    up.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n');
    await up.heads(2);
    up.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    await client.waitFor((text) => text.endsWith('ok'));
    assert.equal(up.received.split('\r\n\r\n').length - 1, 2);
  });

  test('interim 1xx answers stay in the proxy; Expect: 100-continue is answered by it', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(
      'PUT /api HTTP/1.1\r\nHost: kube\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n',
    );
    await client.waitFor((text) => text === 'HTTP/1.1 100 Continue\r\n\r\n');
    client.socket.write('{}');
    const up = await upstream.connection(0);
    await until(() => up.received.endsWith('{}'), 'the body');
    up.socket.write(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n',
    );
    await client.waitFor((text) => text.includes('201'));
    assert.equal(
      client.text,
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n',
    );
  });

  test('a body delimited by the close: relayed, then the client connection closes', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET('/logs'));
    const up = await upstream.connection(0);
    await up.heads(1);
    up.socket.end('HTTP/1.1 200 OK\r\n\r\nall of it');
    await client.closed;
    assert.equal(client.text, 'HTTP/1.1 200 OK\r\n\r\nall of it');
  });
});

describe('the upstream connection', () => {
  test('closed between requests: the next request opens a new one', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET('/a'));
    const first = await upstream.connection(0);
    await first.heads(1);
    first.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na');
    await client.waitFor((text) => completeResponses(text) === 1);
    first.socket.end();
    await until(() => first.closed, 'the first upstream connection to close');
    await new Promise((r) => setTimeout(r, 100));
    client.socket.write(GET('/b'));
    const second = await upstream.connection(1);
    await second.heads(1);
    second.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb');
    await client.waitFor((text) => completeResponses(text) === 2);
    assert.deepEqual(statusCodes(client.text), [200, 200]);
  });

  test('closed with a request in flight: 502 Status, the request is not sent again', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET('/once'));
    const up = await upstream.connection(0);
    await up.heads(1);
    up.socket.destroy();
    await client.waitFor((text) => completeResponses(text) === 1);
    assert.deepEqual(statusCodes(client.text), [502]);
    assert.match(client.text, /"reason":"BadGateway"/);
    await client.closed;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(upstream.connections.length, 1, 'no second connection replayed the request');
  });

  test('closed in the middle of a response: the client connection is cut', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET('/half'));
    const up = await upstream.connection(0);
    await up.heads(1);
    up.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf');
    await client.waitFor((text) => text.endsWith('half'));
    up.socket.destroy();
    await client.closed;
  });

  test('bytes after a complete response: that upstream connection is dropped, the client goes on', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET('/a'));
    const first = await upstream.connection(0);
    await first.heads(1);
    first.socket.write(
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx',
    );
    await client.waitFor((text) => completeResponses(text) === 1);
    await until(() => first.closed, 'the upstream connection to be dropped');
    client.socket.write(GET('/b'));
    const second = await upstream.connection(1);
    await second.heads(1);
    second.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb');
    await client.waitFor((text) => completeResponses(text) === 2);
    assert.ok(!client.text.includes('x'), client.text);
  });
});

const GET10 = (path: string, lines: readonly string[] = []) =>
  `GET ${path} HTTP/1.0\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;

/**
 * The upstream answers below are what Go 1.23's net/http server writes to an HTTP/1.0 request
 * (server.go, chunkWriter.writeHeader): an HTTP/1.0 status line; `Connection: keep-alive` when
 * the request asked for it and the length is known (Content-Length, HEAD, 204, 304); otherwise
 * no Connection header, no chunking, the body ended by the close.
 */
describe('HTTP/1.0', () => {
  test('keep-alive: several requests on one connection, each answer kept alive', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET10('/a', ['Connection: keep-alive', 'Keep-Alive: timeout=5']));
    const up = await upstream.connection(0);
    await up.heads(1);
    assert.equal(
      up.received,
      'GET /a HTTP/1.0\r\nHost: kubernetes\r\nX-Forwarded-For: 127.0.0.1\r\n' +
        'X-Remote-User: alice\r\nX-Remote-Group: dev\r\nX-Remote-Group: ops\r\n' +
        'Connection: keep-alive\r\n\r\n',
    );
    const answers = [
      'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok',
      'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n',
      'HTTP/1.0 304 Not Modified\r\nConnection: keep-alive\r\n\r\n',
      'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nfifth',
    ];
    const requests = [
      'HEAD /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
      GET10('/c', ['Connection: Keep-Alive', 'If-None-Match: "1"']),
      GET10('/d', ['Connection: keep-alive']),
    ];
    up.socket.write(answers[0] as string);
    let expected = answers[0] as string;
    await client.waitFor((text) => text === expected);
    for (const [i, request] of requests.entries()) {
      client.socket.write(request);
      await up.heads(i + 2);
      up.socket.write(answers[i + 1] as string);
      expected += answers[i + 1];
      await client.waitFor((text) => text === expected);
    }
    assert.equal(upstream.connections.length, 1);
    assert.equal(client.socket.destroyed, false);
    const heads = up.received.split('\r\n\r\n').slice(0, 4);
    for (const head of heads) {
      assert.match(head, /^(GET|HEAD) \/[a-d] HTTP\/1\.0\r\n/);
      assert.ok(head.endsWith('\r\nConnection: keep-alive'), head);
    }
  });

  test('without keep-alive: no Connection upstream, the answer as Go sends it, then the close', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET10('/a'));
    const up = await upstream.connection(0);
    await up.heads(1);
    assert.doesNotMatch(up.received, /connection/i);
    up.socket.write('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok');
    await client.closed;
    assert.equal(client.text, 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });

  test('keep-alive with a length the apiserver does not know: the body, then the close', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET10('/api/v1/pods?watch=true', ['Connection: keep-alive']));
    const up = await upstream.connection(0);
    await up.heads(1);
    up.socket.write('HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"type":"ADDED"}\n');
    await client.waitFor((text) => text.endsWith('{"type":"ADDED"}\n'));
    up.socket.end('{"type":"DELETED"}\n');
    await client.closed;
    assert.equal(
      client.text,
      'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"type":"ADDED"}\n{"type":"DELETED"}\n',
    );
  });

  test('keep-alive answered without keep-alive (Content-Length known): the close after it', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET10('/a', ['Connection: keep-alive']));
    const up = await upstream.connection(0);
    await up.heads(1);
    up.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    await client.closed;
    assert.equal(client.text, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });

  test('a chunked answer (which Go never sends to HTTP/1.0): 502 Status, the chunks kept back', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET10('/a', ['Connection: keep-alive']));
    const up = await upstream.connection(0);
    await up.heads(1);
    up.socket.write(
      'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    );
    await client.closed;
    assert.deepEqual(statusCodes(client.text), [502]);
    assert.match(client.text, /chunked response to an HTTP\/1\.0 request/);
    assert.doesNotMatch(client.text, /ok\r\n0/);
  });

  test('Expect: 100-continue on HTTP/1.0: no 100 from the proxy, the body forwarded', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(
      'PUT /a HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n',
    );
    await new Promise((r) => setTimeout(r, 200));
    client.socket.write('{}');
    const up = await upstream.connection(0);
    await until(() => up.received.endsWith('\r\n\r\n{}'), 'the body');
    up.socket.write('HTTP/1.0 201 Created\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n');
    await client.waitFor((text) => text.includes('201'));
    assert.equal(
      client.text,
      'HTTP/1.0 201 Created\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n',
    );
  });
});

describe('HTTP/1.1 and Connection: close', () => {
  test('close goes upstream, so the answer says close as Go would; then the close', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET('/a', ['Connection: close']));
    const up = await upstream.connection(0);
    await up.heads(1);
    assert.match(up.received, /\r\nConnection: close\r\n\r\n$/);
    up.socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok');
    await client.closed;
    assert.equal(
      client.text,
      'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
    );
  });

  test('without close: no Connection upstream, the connection stays', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(GET('/a', ['Connection: keep-alive']));
    const up = await upstream.connection(0);
    await up.heads(1);
    assert.doesNotMatch(up.received, /connection/i);
    up.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    await client.waitFor((text) => text.endsWith('ok'));
    client.socket.write(GET('/b'));
    await up.heads(2);
    up.socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    await client.waitFor((text) => text.endsWith('okHTTP/1.1 204 No Content\r\n\r\n'));
    assert.equal(upstream.connections.length, 1);
    assert.equal(client.socket.destroyed, false);
  });
});

describe('upgrades and shutdown', () => {
  test('an upgrade pipelined behind a GET: dialled only once the GET is answered, then tunnelled', async (t) => {
    const { upstream, client } = await rig(t);
    client.socket.write(
      `${GET('/a')}GET /exec HTTP/1.1\r\nHost: kube\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Remote-User: mallory\r\n\r\n',
    );
    const first = await upstream.connection(0);
    await first.heads(1);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(upstream.connections.length, 1, 'no upgrade dial before the GET is answered');
    first.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na');
    const tunnel = await upstream.connection(1);
    await tunnel.heads(1);
    assert.match(tunnel.received, /^GET \/exec HTTP\/1\.1\r\n/);
    assert.match(tunnel.received, /\r\nX-Remote-User: alice\r\n/i);
    assert.doesNotMatch(tunnel.received, /mallory/);
    tunnel.socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nfrom-upstream',
    );
    await client.waitFor((text) => text.endsWith('from-upstream'));
    client.socket.write('from-client');
    await until(() => tunnel.received.endsWith('from-client'), 'tunnel bytes upstream');
  });

  test('SIGTERM in the middle of a watch chunk: the chunk completes, then the last chunk and the close', async (t) => {
    const { upstream, proxy, client } = await rig(t);
    client.socket.write(GET('/api/v1/pods?watch=true'));
    const up = await upstream.connection(0);
    await up.heads(1);
    up.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel');
    await client.waitFor((text) => text.endsWith('hel'));
    proxy.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    up.socket.write('lo\r\n3\r\nabc\r\n');
    await client.closed;
    assert.ok(client.text.endsWith('5\r\nhello\r\n0\r\n\r\n'), JSON.stringify(client.text));
  });
});
