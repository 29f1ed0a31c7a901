/**
 * The HTTP/1.1 splice's request reader alone (src/proxy/h1/request-reader.ts): heads gathered
 * across reads of any size, pipelined requests kept in order, bodies counted by Content-Length
 * or read chunk by chunk with what follows kept, malformed heads and bodies refused, and the
 * head that goes up carrying the proxy's framing and identity, never the client's.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { RequestFramingError } from '../../src/errors.js';
import { Exchange } from '../../src/proxy/h1/exchange.js';
import type { RequestHead } from '../../src/proxy/h1/head-parser.js';
import { RequestReader, upstreamHead } from '../../src/proxy/h1/request-reader.js';
import { ConnectionHeaders, identityHeaderRules } from '../../src/proxy/headers.js';
import { Output } from '../../src/proxy/output.js';

const LIMITS = { maxHeaderBytes: 8192, maxHeaderCount: 100 };

function reader(): { requests: RequestReader; up: Output } {
  const up = new Output();
  return { requests: new RequestReader(LIMITS, up), up };
}

/** Reads heads from what was pushed until none is complete. */
function heads(requests: RequestReader): RequestHead[] {
  const out: RequestHead[] = [];
  while (requests.hasInput) {
    const head = requests.readHead();
    if (head !== null) out.push(head);
  }
  return out;
}

function latin1(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

describe('request heads', () => {
  test('a head split at every byte is read once complete, and only then', () => {
    const { requests } = reader();
    const bytes = latin1('GET /api/v1/pods?limit=5 HTTP/1.1\r\nHost: k\r\nAccept: */*\r\n\r\n');
    for (let i = 0; i < bytes.length - 1; i++) {
      requests.push(bytes.subarray(i, i + 1));
      assert.equal(requests.readHead(), null);
      assert.equal(requests.headUnderWay, true);
    }
    requests.push(bytes.subarray(bytes.length - 1));
    const head = requests.readHead();
    assert.equal(head?.target, '/api/v1/pods?limit=5');
    assert.deepEqual(head?.headers, [
      ['Host', 'k'],
      ['Accept', '*/*'],
    ]);
    assert.equal(requests.headUnderWay, false);
  });

  test('pipelined requests in one read come out in order, a partial third kept', () => {
    const { requests } = reader();
    requests.push(
      latin1('GET /a HTTP/1.1\r\nHost: k\r\n\r\nGET /b HTTP/1.1\r\nHost: k\r\n\r\nGET /c'),
    );
    assert.deepEqual(
      heads(requests).map((h) => h.target),
      ['/a', '/b'],
    );
    assert.equal(requests.headUnderWay, true);
    requests.push(latin1(' HTTP/1.1\r\nHost: k\r\n\r\n'));
    assert.deepEqual(
      heads(requests).map((h) => h.target),
      ['/c'],
    );
  });

  test('a malformed head, or one over --max-header-bytes, is a RequestFramingError', () => {
    const bare = reader().requests;
    bare.push(latin1('GET / HTTP/1.1\nHost: k\r\n\r\n'));
    assert.throws(() => bare.readHead(), RequestFramingError);
    const large = reader().requests;
    large.push(latin1(`GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(LIMITS.maxHeaderBytes)}`));
    assert.throws(
      () => large.readHead(),
      (err) => err instanceof RequestFramingError && err.status === 431,
    );
  });

  test('what was read and not taken is handed over whole, then nothing is left', () => {
    const { requests } = reader();
    requests.push(
      latin1(
        'GET /ws HTTP/1.1\r\nHost: k\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframe-1',
      ),
    );
    requests.push(latin1('frame-2'));
    assert.equal(requests.readHead()?.upgrade, 'websocket');
    assert.equal(requests.readAhead, 14);
    assert.equal(requests.takeAll().toString('latin1'), 'frame-1frame-2');
    assert.deepEqual(
      [requests.readAhead, requests.hasInput, requests.headUnderWay],
      [0, false, false],
    );
  });
});

describe('request bodies', () => {
  test('Content-Length: the body across reads goes up, the next request stays', () => {
    const { requests, up } = reader();
    requests.push(latin1('POST /x HTTP/1.1\r\nHost: k\r\nContent-Length: 10\r\n\r\n0123'));
    const exchange = new Exchange(requests.readHead() as RequestHead, 1024);
    assert.equal(requests.readBody(exchange), false);
    requests.push(latin1('456789GET /next HTTP/1.1\r\nHost: k\r\n\r\n'));
    assert.equal(requests.readBody(exchange), true);
    assert.equal(exchange.bodyDone, true);
    assert.equal(up.take()?.toString('latin1'), '0123456789');
    assert.equal(requests.readHead()?.target, '/next');
  });

  test('chunked: chunks and the last chunk go up as read, what follows stays', () => {
    const { requests, up } = reader();
    requests.push(
      latin1('POST /x HTTP/1.1\r\nHost: k\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel'),
    );
    const exchange = new Exchange(requests.readHead() as RequestHead, 1024);
    assert.equal(requests.readBody(exchange), false);
    requests.push(latin1('lo\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: k\r\n\r\n'));
    assert.equal(requests.readBody(exchange), true);
    assert.equal(up.take()?.toString('latin1'), '5\r\nhello\r\n0\r\n\r\n');
    assert.equal(requests.readHead()?.target, '/next');
  });

  test('a malformed chunk size is a RequestFramingError', () => {
    const { requests } = reader();
    requests.push(
      latin1('POST /x HTTP/1.1\r\nHost: k\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'),
    );
    const exchange = new Exchange(requests.readHead() as RequestHead, 1024);
    assert.throws(() => requests.readBody(exchange), RequestFramingError);
  });
});

describe('the head that goes up', () => {
  const rules = identityHeaderRules({
    usernameHeaders: ['X-Remote-User'],
    groupHeaders: ['X-Remote-Group'],
    extraHeadersPrefixes: ['X-Remote-Extra-'],
    uidHeaders: [],
  });
  const own = new ConnectionHeaders('10.0.0.7', { user: 'alice', groups: ['dev'] }, rules);

  function rebuilt(text: string): string {
    const { requests } = reader();
    requests.push(latin1(text));
    return upstreamHead(requests.readHead() as RequestHead, own).toString('latin1');
  }

  test("the proxy's framing and identity; the client's forged identity and framing dropped", () => {
    assert.equal(
      rebuilt(
        'POST /x HTTP/1.1\r\nHost: k\r\nX-Remote-User: mallory\r\nTransfer-Encoding: chunked\r\nKeep: 1\r\n\r\n',
      ),
      'POST /x HTTP/1.1\r\nHost: k\r\nKeep: 1\r\nX-Forwarded-For: 10.0.0.7\r\nX-Remote-User: alice\r\nX-Remote-Group: dev\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    assert.match(
      rebuilt('PUT /x HTTP/1.1\r\nHost: k\r\nContent-Length: 007\r\n\r\n'),
      /\r\nContent-Length: 7\r\n\r\n$/,
    );
    assert.doesNotMatch(
      rebuilt('GET /x HTTP/1.1\r\nHost: k\r\n\r\n'),
      /Content-Length|Transfer-Encoding/,
    );
  });

  test("the client's wish about the connection, in the client's version", () => {
    assert.match(
      rebuilt('GET / HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n'),
      /^GET \/ HTTP\/1\.1\r\n[\s\S]*\r\nConnection: close\r\n\r\n$/,
    );
    assert.match(
      rebuilt('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'),
      /^GET \/ HTTP\/1\.0\r\nHost: kubernetes\r\n[\s\S]*\r\nConnection: keep-alive\r\n\r\n$/,
    );
    assert.doesNotMatch(rebuilt('GET / HTTP/1.0\r\n\r\n'), /Connection/);
    assert.doesNotMatch(rebuilt('GET / HTTP/1.1\r\nHost: k\r\n\r\n'), /Connection/);
  });
});
