/**
 * The HTTP/1.1 splice's response reader alone (src/proxy/h1/response-reader.ts): response
 * bytes pass untouched whatever the reads' sizes, each framing ends the response where it
 * ends, interim answers are dropped, a byte after the response or a response the request
 * cannot take breaks the exchange, a draining connection's heads say `Connection: close`, and
 * a JSON watch's chunked body is followed to its event boundaries.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { Exchange } from '../../src/proxy/h1/exchange.js';
import { parseRequestHead } from '../../src/proxy/h1/head-parser.js';
import { ResponseReader, type ResponseReaderHost } from '../../src/proxy/h1/response-reader.js';
import { Output } from '../../src/proxy/output.js';

/** A host that records what the reader asks of it, and acts on it as the splice would. */
class Host implements ResponseReaderHost {
  upstreamAttached = true;
  draining = false;
  readonly events: string[] = [];

  constructor(public exchange: Exchange | null) {}

  closeAfterExchange(): void {
    this.events.push('close after');
  }

  responseEnded(exchange: Exchange): void {
    exchange.responseDone = true;
    this.events.push('ended');
  }

  endStreamingResponse(): void {
    this.events.push('stopped');
    this.upstreamAttached = false;
  }

  upstreamBroke(_exchange: Exchange | null, problem: string): void {
    this.events.push(`broke: ${problem}`);
    this.upstreamAttached = false;
  }
}

function exchangeFor(request: string): Exchange {
  const buf = Buffer.from(`${request}\r\n\r\n`, 'latin1');
  return new Exchange(parseRequestHead(buf, buf.length, 100), 1024);
}

/** Feeds `response` to a reader in reads of `size` bytes; what went to the client. */
function feed(
  host: Host,
  response: string,
  size = response.length,
): { sent: string; reader: ResponseReader } {
  const out = new Output();
  const reader = new ResponseReader(host, out);
  const bytes = Buffer.from(response, 'latin1');
  let sent = '';
  for (let at = 0; at < bytes.length; at += size) {
    reader.read(bytes.subarray(at, at + size));
    sent += out.take()?.toString('latin1') ?? '';
  }
  return { sent, reader };
}

const GET = 'GET /api/v1/pods HTTP/1.1\r\nHost: k';

describe('response framing', () => {
  test('Content-Length, chunked and close-delimited bodies pass untouched in reads of any size', () => {
    const cases = [
      'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
      'HTTP/1.1 204 No Content\r\n\r\n',
    ];
    for (const response of cases)
      for (const size of [1, 3, 7, 1000]) {
        const host = new Host(exchangeFor(GET));
        assert.equal(feed(host, response, size).sent, response, `${response} by ${size}`);
        assert.deepEqual(host.events, ['ended'], `${response} by ${size}`);
      }
    const host = new Host(exchangeFor(GET));
    const close = 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end';
    assert.equal(feed(host, close, 4).sent, close);
    assert.deepEqual(host.events, ['close after']);
    assert.equal(host.exchange?.responseDone, false);
  });

  test('an interim answer is dropped; the final one passes', () => {
    const host = new Host(exchangeFor(GET));
    const final = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    assert.equal(feed(host, `HTTP/1.1 100 Continue\r\n\r\n${final}`, 5).sent, final);
    assert.deepEqual(host.events, ['ended']);
  });

  test('HTTP/1.0 keeps the connection only when the response says keep-alive', () => {
    const kept = new Host(exchangeFor('GET / HTTP/1.0\r\nConnection: keep-alive'));
    feed(kept, 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n');
    assert.deepEqual(kept.events, ['ended']);
    const closed = new Host(exchangeFor('GET / HTTP/1.0\r\nConnection: keep-alive'));
    feed(closed, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    assert.deepEqual(closed.events, ['close after', 'ended']);
  });

  test("a draining connection's response head says Connection: close", () => {
    const host = new Host(exchangeFor(GET));
    host.draining = true;
    const { sent } = feed(host, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 3);
    assert.equal(sent, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  });
});

describe('broken exchanges', () => {
  test('bytes after the response break it; what came before passed', () => {
    const host = new Host(exchangeFor(GET));
    const { sent } = feed(host, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK');
    assert.equal(sent, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    assert.deepEqual(host.events, ['ended', 'broke: bytes after the response']);
    const between = new Host(null);
    feed(between, 'HTTP/1.1 200 OK\r\n');
    assert.deepEqual(between.events, ['broke: bytes after the response']);
  });

  test('a 101, chunked to HTTP/1.0, a malformed head or chunk: broken, nothing of it passed', () => {
    const cases: Array<[string, string, string]> = [
      [GET, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n', 'a 101 to a request'],
      [
        'GET / HTTP/1.0',
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        'a chunked response to an HTTP/1.0 request',
      ],
      [GET, 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', 'bare LF'],
    ];
    for (const [request, response, problem] of cases) {
      const host = new Host(exchangeFor(request));
      assert.equal(feed(host, response, 9).sent, '', problem);
      assert.equal(host.events.length, 1, problem);
      assert.ok(host.events[0]?.startsWith('broke: ') && host.events[0].includes(problem), problem);
    }
    const host = new Host(exchangeFor(GET));
    feed(host, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    assert.equal(host.events.length, 1);
    assert.match(host.events[0] as string, /^broke: /);
  });
});

describe('a JSON watch', () => {
  const WATCH = 'GET /api/v1/pods?watch=true HTTP/1.1\r\nHost: k';
  const HEAD =
    'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';

  test('is followed to event boundaries, and stops at the one it is asked to stop at', () => {
    const host = new Host(exchangeFor(WATCH));
    const { reader } = feed(host, `${HEAD}6\r\n{"a":1\r\n`);
    const exchange = host.exchange as Exchange;
    assert.equal(exchange.jsonEvents, true);
    assert.equal(exchange.responseChunked?.atBoundary, false);
    const framer = exchange.responseChunked;
    assert.ok(framer !== null);
    framer.stopAtBoundary = true;
    reader.read(Buffer.from('2\r\n}\n\r\n9\r\n{"b":2}\n\r\n', 'latin1'));
    assert.deepEqual(host.events, ['stopped']);
  });

  test('a watch in another media type is not read for events', () => {
    const host = new Host(exchangeFor(WATCH));
    feed(
      host,
      `${HEAD.replace('application/json', 'application/vnd.kubernetes.protobuf;stream=watch')}`,
    );
    assert.equal(host.exchange?.jsonEvents, false);
  });
});
