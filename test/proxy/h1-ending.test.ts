/**
 * How the HTTP/1.1 splice ends a connection of its own accord (src/proxy/h1/ending.ts),
 * decided from where its exchange is: on shutdown, and when the certificate is cut. The
 * exchanges are real (parsed heads, chunked bodies read by the project's reader); the
 * splice's part is played by a host that records what it is asked.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { ChunkedBody } from '../../src/proxy/h1/chunked.js';
import type { EndingHost } from '../../src/proxy/h1/ending.js';
import {
  carryOut,
  cutEnding,
  drainEnding,
  Ending,
  watchEnd,
  writeStreamEnd,
} from '../../src/proxy/h1/ending.js';
import { Exchange } from '../../src/proxy/h1/exchange.js';
import { parseRequestHead } from '../../src/proxy/h1/head-parser.js';
import { Output } from '../../src/proxy/output.js';
import { statusResponse } from '../../src/proxy/status.js';

const STATUS = statusResponse(401, 'Unauthorized', 'kube-crl-proxy: the certificate was revoked');

function exchangeFor(request: string): Exchange {
  const buf = Buffer.from(`${request}\r\nHost: k\r\n\r\n`, 'latin1');
  return new Exchange(parseRequestHead(buf, buf.length, 100), 1024);
}

/** An answered chunked response whose body so far is `body` (chunk data, JSON events if `json`). */
function answeredChunked(request: string, body: string, json: boolean): Exchange {
  const exchange = exchangeFor(request);
  exchange.answered = true;
  const framer = new ChunkedBody(true, 1024);
  framer.lineBoundaries = json;
  exchange.jsonEvents = json;
  exchange.responseChunked = framer;
  if (body !== '')
    framer.feed(
      Buffer.from(`${body.length.toString(16)}\r\n${body}\r\n`),
      0,
      body.length + 6,
      new Output(),
    );
  return exchange;
}

const WATCH = 'GET /api/v1/pods?watch=true HTTP/1.1';

describe('drain', () => {
  test('between requests the connection closes; a plain request finishes first', () => {
    assert.equal(drainEnding(null), Ending.Close);
    assert.equal(drainEnding(exchangeFor('GET /api/v1/pods HTTP/1.1')), Ending.AfterExchange);
    assert.equal(drainEnding(exchangeFor('POST /api/v1/pods HTTP/1.1')), Ending.AfterExchange);
  });

  test('a streaming request is answered if it was not, else ends at its next boundary', () => {
    assert.equal(drainEnding(exchangeFor(WATCH)), Ending.Answer);
    assert.equal(drainEnding(answeredChunked(WATCH, '{"a":1}\n', true)), Ending.StreamNow);
    assert.equal(drainEnding(answeredChunked(WATCH, '{"a":', true)), Ending.StreamAtBoundary);
    // Not read for events (a protobuf watch, logs -f): every chunk's end is a boundary.
    assert.equal(drainEnding(answeredChunked(WATCH, '{"a":', false)), Ending.StreamNow);
    const lengthFramed = exchangeFor(WATCH);
    lengthFramed.answered = true;
    assert.equal(drainEnding(lengthFramed), Ending.StreamNow);
  });
});

describe('cut', () => {
  test('between requests: refused if part of a next one was read, else closed', () => {
    assert.equal(cutEnding(null, false, false), Ending.Close);
    assert.equal(cutEnding(null, true, false), Ending.Refuse);
  });

  test('unanswered: a read, or a request not wholly upstream, is answered; else cut short', () => {
    assert.equal(cutEnding(exchangeFor('GET /x HTTP/1.1'), false, true), Ending.Answer);
    assert.equal(cutEnding(exchangeFor('HEAD /x HTTP/1.1'), false, true), Ending.Answer);
    assert.equal(cutEnding(exchangeFor('POST /x HTTP/1.1'), false, false), Ending.Answer);
    assert.equal(cutEnding(exchangeFor('POST /x HTTP/1.1'), false, true), Ending.CutShort);
    assert.equal(cutEnding(exchangeFor('DELETE /x HTTP/1.1'), false, true), Ending.CutShort);
  });

  test('answered: a JSON watch ends at an event boundary; anything else is cut short', () => {
    assert.equal(
      cutEnding(answeredChunked(WATCH, '{"a":1}\n', true), false, true),
      Ending.StreamNow,
    );
    assert.equal(
      cutEnding(answeredChunked(WATCH, '{"a":1}\n{"b"', true), false, true),
      Ending.StreamAtBoundary,
    );
    assert.equal(cutEnding(answeredChunked(WATCH, '', false), false, true), Ending.CutShort);
    const ended = answeredChunked(WATCH, '{"a":1}\n', true);
    ended.responseDone = true;
    assert.equal(cutEnding(ended, false, true), Ending.CutShort);
    const get = exchangeFor('GET /x HTTP/1.1');
    get.answered = true;
    assert.equal(cutEnding(get, false, true), Ending.CutShort);
  });
});

describe('what is said', () => {
  test("the cut's ERROR event is one chunk carrying the Status; then the last chunk", () => {
    const chunk = watchEnd(STATUS).toString('utf8');
    const match = /^([0-9a-f]+)\r\n([\s\S]*)\r\n$/.exec(chunk);
    assert.ok(match !== null);
    const [, size, data] = match as unknown as [string, string, string];
    assert.equal(Number.parseInt(size, 16), Buffer.byteLength(data));
    assert.ok(data.endsWith('\n'));
    const event = JSON.parse(data);
    assert.equal(event.type, 'ERROR');
    assert.deepEqual(event.object, JSON.parse(STATUS.body));

    const out = new Output();
    const watch = answeredChunked(WATCH, '', true);
    watch.finalEvent = watchEnd(STATUS);
    writeStreamEnd(watch, out);
    assert.equal(out.take()?.toString('utf8'), `${chunk}0\r\n\r\n`);
    writeStreamEnd(exchangeFor(WATCH), out);
    assert.equal(out.take(), null);
  });

  test('each ending is carried out by the host step it names', () => {
    const calls: string[] = [];
    const host: EndingHost = {
      cutShort: () => calls.push('cut short'),
      closeGracefully: () => calls.push('close'),
      refuse: (status) => calls.push(`refuse ${status.code}`),
      answerLocally: (exchange, status) =>
        calls.push(`answer ${exchange.head.method} ${status.code}`),
      endStreamingResponse: () => calls.push('end stream'),
    };
    const get = exchangeFor('GET /x HTTP/1.1');
    for (const ending of [
      Ending.CutShort,
      Ending.Close,
      Ending.Refuse,
      Ending.Answer,
      Ending.AfterExchange,
      Ending.StreamNow,
    ])
      carryOut(ending, get, STATUS, host);
    assert.deepEqual(calls, ['cut short', 'close', 'refuse 401', 'answer GET 401', 'end stream']);
    const watch = answeredChunked(WATCH, '{"a":', true);
    carryOut(Ending.StreamAtBoundary, watch, STATUS, host);
    assert.equal(watch.responseChunked?.stopAtBoundary, true);
    assert.equal(calls.length, 5);
  });
});
