/**
 * HTTP/1.0 clients (ab -k, monitoring probes) through the real binary and the fake apiserver:
 * `Connection: keep-alive` keeps the connection when the length is known, as Go's net/http
 * does; anything else closes it after the response, which is never chunked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawTlsClient } from '../fake-apiserver/testkit.js';
import {
  AliceStack,
  assertForwardedAs,
  closedWithin,
  parseResponses,
} from '../security/harness.js';

const fixture = new AliceStack();
before(() => fixture.start());
after(() => fixture.stop());

async function connect(t: { after: (fn: () => void) => void }): Promise<RawTlsClient> {
  const client = await RawTlsClient.connect(
    fixture.stack.proxy.url,
    fixture.pki.clusterCa.certPem,
    fixture.alice,
  );
  t.after(() => client.destroy());
  return client;
}

const get10 = (path: string, connection: string | null) =>
  `GET ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: */*\r\n${connection === null ? '' : `Connection: ${connection}\r\n`}\r\n`;

/** The value of `name` in a response head, or null. */
function header(head: string, name: string): string | null {
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name}:`));
  return line === undefined ? null : line.slice(name.length + 1).trim();
}

describe('HTTP/1.0 through the proxy to the fake apiserver', () => {
  test('keep-alive: requests one after the other on one connection, each kept alive with its length', async (t) => {
    const client = await connect(t);
    const mark = fixture.stack.fake.requests.length;
    const paths = ['/api', '/version', '/api/v1/namespaces/default/pods', '/apis'];
    for (const [i, path] of paths.entries()) {
      client.socket.write(get10(path, 'keep-alive'));
      await client.waitFor((text) => parseResponses(text).filter((r) => r.complete).length > i);
    }
    const responses = parseResponses(client.text);
    assert.deepEqual(
      responses.map((r) => r.status),
      [200, 200, 200, 200],
    );
    for (const r of responses) {
      assert.equal(header(r.head, 'connection'), 'keep-alive', r.head);
      assert.equal(Number(header(r.head, 'content-length')), Buffer.byteLength(r.body), r.head);
      assert.equal(header(r.head, 'transfer-encoding'), null, r.head);
    }
    assert.equal(await closedWithin(client, 300), false, 'the connection stays open');
    const seen = fixture.stack.since(mark);
    assert.deepEqual(
      seen.map((r) => r.path),
      paths,
    );
    for (const rec of seen) assertForwardedAs(rec, { user: 'alice', groups: ['dev'] });
  });

  test('without keep-alive: the response, then the close', async (t) => {
    const client = await connect(t);
    client.socket.write(get10('/version', null));
    assert.ok(await closedWithin(client, 10_000), 'closed after the response');
    const [response] = parseResponses(client.text);
    assert.equal(response?.status, 200);
    assert.equal(response?.complete, true);
    assert.notEqual(header(response?.head ?? '', 'connection'), 'keep-alive');
  });

  test('keep-alive on a watch (no length): events unchunked until the end, then the close', async (t) => {
    const client = await connect(t);
    client.socket.write(
      get10('/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=1', 'keep-alive'),
    );
    assert.ok(await closedWithin(client, 10_000), 'closed when the watch ended');
    const text = client.text;
    const end = text.indexOf('\r\n\r\n');
    const head = text.slice(0, end);
    assert.match(head, /^HTTP\/1\.[01] 200 /);
    assert.equal(header(head, 'transfer-encoding'), null, head);
    assert.equal(header(head, 'content-length'), null, head);
    assert.notEqual(header(head, 'connection'), 'keep-alive', head);
    const events = text
      .slice(end + 4)
      .split('\n')
      .filter((line) => line !== '');
    assert.ok(events.length > 0, 'the watch sent its events');
    for (const event of events) assert.match(JSON.parse(event).type, /^(ADDED|MODIFIED|BOOKMARK)$/);
  });

  test('HTTP/1.1 with Connection: close: the response says close, then the close', async (t) => {
    const client = await connect(t);
    client.socket.write('GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.ok(await closedWithin(client, 10_000), 'closed after the response');
    const [response] = parseResponses(client.text);
    assert.equal(response?.status, 200);
    assert.equal(header(response?.head ?? '', 'connection'), 'close');
  });

  test('HTTP/1.1: the connection stays for the next request', async (t) => {
    const client = await connect(t);
    client.socket.write('GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await client.waitFor((text) => parseResponses(text).some((r) => r.complete));
    client.socket.write('GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await client.waitFor((text) => parseResponses(text).filter((r) => r.complete).length === 2);
    assert.equal(await closedWithin(client, 300), false, 'the connection stays open');
  });
});
