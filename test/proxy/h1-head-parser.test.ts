/**
 * The HTTP/1.1 head parser on its own: what it reads from valid heads, every refusal, and the
 * same answers whatever the reads a head arrives in (split at every byte, or byte by byte).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RequestFramingError } from '../../src/errors.js';
import {
  HeadScanner,
  hasBody,
  parseRequestHead,
  type RequestHead,
} from '../../src/proxy/h1/head-parser.js';

const MAX_BYTES = 4096;
const MAX_COUNT = 16;

/** Scans and parses `text` given whole; returns the head and its length. */
function parse(text: string): { head: RequestHead; length: number } {
  const buf = Buffer.from(text, 'latin1');
  const length = new HeadScanner(MAX_BYTES).scan(buf);
  assert.ok(length > 0, 'the head is complete');
  return { head: parseRequestHead(buf, length, MAX_COUNT), length };
}

/** What parsing `text` throws (scanner or parser), or null. */
function refusal(text: string): RequestFramingError | null {
  try {
    parse(text);
    return null;
  } catch (err) {
    if (err instanceof RequestFramingError) return err;
    throw err;
  }
}

/** Feeds `text` in two reads split at `at`, the way the splice gathers a head. */
function scanSplit(text: string, at: number): number {
  const buf = Buffer.from(text, 'latin1');
  const scanner = new HeadScanner(MAX_BYTES);
  const first = scanner.scan(buf.subarray(0, at));
  if (first >= 0) return first;
  return scanner.scan(buf);
}

const GET = 'GET /api/v1/pods?limit=500 HTTP/1.1\r\nHost: 127.0.0.1:6443\r\nAccept: */*\r\n\r\n';

describe('valid heads', () => {
  test('a kubectl GET: method, target, version, headers as sent', () => {
    const { head, length } = parse(`${GET}next`);
    assert.equal(length, GET.length);
    assert.equal(head.method, 'GET');
    assert.equal(head.target, '/api/v1/pods?limit=500');
    assert.equal(head.minor, 1);
    assert.equal(head.host, '127.0.0.1:6443');
    assert.deepEqual(head.headers, [
      ['Host', '127.0.0.1:6443'],
      ['Accept', '*/*'],
    ]);
    assert.equal(head.contentLength, -1);
    assert.equal(head.chunked, false);
    assert.equal(head.close, false);
    assert.equal(head.upgrade, null);
    assert.equal(hasBody(head), false);
  });

  test('values lose surrounding spaces and tabs, keep inner ones and obs-text', () => {
    const { head } = parse(
      'GET / HTTP/1.1\r\nHost: x\r\nX-A: \t a  b \t\r\nX-B:\r\nX-C: caf\xe9\r\n\r\n',
    );
    assert.deepEqual(head.headers.slice(1), [
      ['X-A', 'a  b'],
      ['X-B', ''],
      ['X-C', 'caf\xe9'],
    ]);
  });

  test('Content-Length, chunked, close, upgrade and Expect are read', () => {
    assert.equal(
      parse('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n').head.contentLength,
      12,
    );
    const chunked = parse('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n').head;
    assert.ok(chunked.chunked && hasBody(chunked));
    assert.equal(
      parse('GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n').head.close,
      true,
    );
    const upgrade = parse(
      'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    ).head;
    assert.equal(upgrade.upgrade, 'websocket');
    assert.equal(
      parse('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n').head.upgrade,
      null,
    );
    assert.equal(
      parse('PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n').head
        .expectContinue,
      true,
    );
    assert.equal(
      parse('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n').head.contentLength,
      0,
    );
  });

  test("llhttp's tolerances: empty lines first, several spaces, HTTP/1.0, no version", () => {
    assert.equal(parse(`\r\n\r\n${GET}`).head.target, '/api/v1/pods?limit=500');
    assert.equal(parse('GET   /a   HTTP/1.1\r\nHost: x\r\n\r\n').head.target, '/a');
    const old = parse('GET /a HTTP/1.0\r\n\r\n').head;
    assert.equal(old.minor, 0);
    assert.equal(old.close, true);
    assert.equal(old.host, null);
    const versionless = parse('GET /a?b\r\nHost: x\r\n\r\n').head;
    assert.equal(versionless.minor, 0);
    assert.equal(versionless.target, '/a?b');
  });

  test('HTTP/1.0 persists only with Connection: keep-alive (and no close); Expect is ignored', () => {
    const close = (lines: string) => parse(`GET /a HTTP/1.0\r\n${lines}\r\n`).head.close;
    assert.equal(close(''), true);
    assert.equal(close('Connection: keep-alive\r\n'), false);
    assert.equal(close('Connection: Keep-Alive\r\n'), false);
    assert.equal(close('Connection: x\r\nConnection: keep-alive\r\n'), false);
    assert.equal(close('Connection: keep-alive, close\r\n'), true);
    assert.equal(close('Keep-Alive: timeout=5\r\n'), true);
    assert.equal(parse('GET /a\r\nConnection: keep-alive\r\n\r\n').head.close, true);
    // RFC 9110 §10.1.1; Go 1.23 wraps the body for 100-continue only on HTTP/1.1.
    assert.equal(
      parse('PUT /a HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n').head
        .expectContinue,
      false,
    );
  });

  test('exactly --max-header-count fields pass', () => {
    const lines = Array.from({ length: MAX_COUNT - 1 }, (_, i) => `X-${i}: v\r\n`).join('');
    assert.equal(parse(`GET / HTTP/1.1\r\nHost: x\r\n${lines}\r\n`).head.headers.length, MAX_COUNT);
  });
});

describe('refusals', () => {
  const head = (lines: readonly string[], method = 'POST') =>
    `${method} /api HTTP/1.1\r\nHost: x\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
  const cases: ReadonlyArray<readonly [string, string, 400 | 431]> = [
    ['a lowercase method', 'get / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: x\r\n\r\n', 400],
    ['HTTP/2.0', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
    ['a space at the end of the request line', 'GET / HTTP/1.1 \r\nHost: x\r\n\r\n', 400],
    ['a control character in the target', 'GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a non-ASCII byte in the target', 'GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['absolute-form', 'GET http://evil/api HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['asterisk-form', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['CONNECT', 'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['no Host on HTTP/1.1', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', 400],
    ['two Hosts', head(['Host: y'], 'GET'), 400],
    ['a bare LF ending every line', 'GET / HTTP/1.1\nHost: x\n\n', 400],
    ['a bare LF hiding a header', 'GET / HTTP/1.1\r\nHost: x\nX-Remote-User: a\r\n\r\n', 400],
    ['a bare CR hiding a header', 'GET / HTTP/1.1\r\nHost: x\rX-Remote-User: a\r\n\r\n', 400],
    ['a CR before the CRLF', 'GET / HTTP/1.1\r\nHost: x\r\r\n\r\n', 400],
    ['space before the colon', head(['X-Remote-User : a'], 'GET'), 400],
    ['tab before the colon', head(['X-Remote-User\t: a'], 'GET'), 400],
    ['obs-fold', head(['X-Note: a', ' X-Remote-User: b'], 'GET'), 400],
    ['obs-fold with a tab', head(['X-Note: a', '\tb'], 'GET'), 400],
    ['no colon', head(['X-Note'], 'GET'), 400],
    ['an empty name', head([': a'], 'GET'), 400],
    ['"@" in a name', head(['X-Remote@User: a'], 'GET'), 400],
    ['NUL in a name', head(['X-A\x00: a'], 'GET'), 400],
    ['NUL in a value', head(['X-A: a\x00b'], 'GET'), 400],
    ['DEL in a value', head(['X-A: a\x7fb'], 'GET'), 400],
    ['a control character in a value', head(['X-A: a\x0bb'], 'GET'), 400],
    [
      'Content-Length and Transfer-Encoding',
      head(['Content-Length: 5', 'Transfer-Encoding: chunked']),
      400,
    ],
    [
      'Transfer-Encoding and Content-Length',
      head(['Transfer-Encoding: chunked', 'Content-Length: 5']),
      400,
    ],
    ['two equal Content-Lengths', head(['Content-Length: 2', 'Content-Length: 2']), 400],
    ['two different Content-Lengths', head(['Content-Length: 2', 'Content-Length: 3']), 400],
    ['a Content-Length list', head(['Content-Length: 2, 2']), 400],
    ['a signed Content-Length', head(['Content-Length: +2']), 400],
    ['a negative Content-Length', head(['Content-Length: -1']), 400],
    ['a hex Content-Length', head(['Content-Length: 0x10']), 400],
    ['an empty Content-Length', head(['Content-Length:']), 400],
    ['a Content-Length past 2^53', head(['Content-Length: 18446744073709551616']), 400],
    ['Transfer-Encoding: chunked, identity', head(['Transfer-Encoding: chunked, identity']), 400],
    ['Transfer-Encoding: gzip, chunked', head(['Transfer-Encoding: gzip, chunked']), 400],
    ['Transfer-Encoding: xchunked', head(['Transfer-Encoding: xchunked']), 400],
    [
      'Transfer-Encoding twice',
      head(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked']),
      400,
    ],
    ['Transfer-Encoding on HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    [
      'more than --max-header-count fields',
      head(
        Array.from({ length: MAX_COUNT }, (_, i) => `X-${i}: v`),
        'GET',
      ),
      431,
    ],
    ['a head over --max-header-bytes', head([`X-Big: ${'a'.repeat(MAX_BYTES)}`], 'GET'), 431],
  ];
  for (const [label, text, status] of cases) {
    test(`${label}: ${status}`, () => {
      const err = refusal(text);
      assert.ok(err !== null, 'refused');
      assert.equal(err.status, status, err.message);
    });
  }

  test('an unterminated head over --max-header-bytes is refused before it ends', () => {
    const scanner = new HeadScanner(MAX_BYTES);
    const start = Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(MAX_BYTES)}`);
    assert.throws(
      () => scanner.scan(start),
      (err: unknown) => err instanceof RequestFramingError && err.status === 431,
    );
  });

  test('a bare LF is seen as soon as it arrives, before the head ends', () => {
    const scanner = new HeadScanner(MAX_BYTES);
    assert.throws(
      () => scanner.scan(Buffer.from('GET / HTTP/1.1\nHost')),
      (err: unknown) => err instanceof RequestFramingError && err.status === 400,
    );
  });
});

describe('split reads', () => {
  const heads = [
    GET,
    '\r\nPOST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n',
    'GET /a HTTP/1.0\r\n\r\n',
  ];
  for (const text of heads) {
    test(`${JSON.stringify(text.slice(0, 20))}…: the same end at every split`, () => {
      for (let at = 0; at <= text.length; at++)
        assert.equal(scanSplit(`${text}GET`, at), text.length, `split at ${at}`);
    });
  }

  test('byte by byte: -1 until the last byte, then the length', () => {
    const buf = Buffer.from(`${GET}rest`, 'latin1');
    const scanner = new HeadScanner(MAX_BYTES);
    for (let n = 1; n < GET.length; n++) assert.equal(scanner.scan(buf.subarray(0, n)), -1, `${n}`);
    assert.equal(scanner.scan(buf.subarray(0, GET.length)), GET.length);
  });

  test('a bare LF is refused at every split', () => {
    const text = 'GET / HTTP/1.1\r\nHost: x\nX-Remote-User: a\r\n\r\n';
    for (let at = 0; at <= text.length; at++) {
      assert.throws(
        () => scanSplit(text, at),
        (err: unknown) => err instanceof RequestFramingError && err.status === 400,
        `split at ${at}`,
      );
    }
  });
});
