/**
 * The apiserver's response heads, read for framing only: every name is matched in any case,
 * and a malformed head is an upstream protocol error, never a guess.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Framing, parseResponseHead } from '../../src/proxy/h1/response.js';

function parse(head: string, method = 'GET') {
  const buf = Buffer.from(`${head}\r\n\r\n`, 'latin1');
  return parseResponseHead(buf, buf.length, method);
}

describe('response head', () => {
  test('framing and close, names in any case, among headers that do not matter', () => {
    const noise =
      'Audit-Id: 1\r\nCache-Control: no-cache\r\nX-Kubernetes-Pf-Flowschema-Uid: x\r\nConnection-X: close';
    assert.deepEqual(parse(`HTTP/1.1 200 OK\r\n${noise}\r\ncOnTeNt-LeNgTh: 12`), {
      status: 200,
      framing: Framing.Length,
      length: 12,
      close: false,
      keepAlive: false,
    });
    const chunked = parse(`HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: gzip, Chunked\r\n${noise}`);
    assert.equal(chunked.framing, Framing.Chunked);
    assert.equal(
      parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip').framing,
      Framing.Close,
    );
    assert.equal(
      parse('HTTP/1.1 200 OK\r\nCONNECTION: keep-alive, Close\r\nContent-Length: 0').close,
      true,
    );
    assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length : 5').framing, Framing.Close);
    assert.equal(parse('HTTP/1.0 200 OK\r\nContent-Length: 5').close, true);
    // What Go 1.23 answers an HTTP/1.0 request that asked for keep-alive (RFC 9112 §9.3).
    const kept = parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5');
    assert.deepEqual([kept.close, kept.keepAlive], [false, true]);
    assert.equal(parse('HTTP/1.0 204 No Content\r\nConnection: Keep-Alive').close, false);
    assert.equal(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive').close, true);
    assert.equal(
      parse('HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 5').close,
      true,
    );
    assert.equal(parse('HTTP/1.1 200 OK').framing, Framing.Close);
    assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 5', 'HEAD').framing, Framing.None);
    for (const status of [204, 304, 100])
      assert.equal(parse(`HTTP/1.1 ${status} X\r\nContent-Length: 5`).framing, Framing.None);
  });

  test('lines end at CRLF only; names are matched exactly, in any ASCII case', () => {
    assert.equal(parse('HTTP/1.1 200 O\rK\r\nContent-Length: 7').length, 7);
    assert.equal(
      parse('HTTP/1.1 200 OK\r\nX-A: a\rContent-Length: 9\r\nContent-Length: 7').length,
      7,
    );
    assert.equal(parse('HTTP/1.1 200 OK\r\nContent\rLength: 5').framing, Framing.Close);
    assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: \t 7 \t').length, 7);
    assert.equal(parse('HTTP/1.1 200').status, 200);
  });

  test('agrees with a plain string reading on generated heads', () => {
    const names = [
      'Content-Length',
      'Transfer-Encoding',
      'Connection',
      'Date',
      'Audit-Id',
      'Keep-Alive',
      'Content-Type',
    ];
    const values = [
      ' 12',
      '12 ',
      '\t0',
      ' chunked',
      ' gzip, chunked',
      ' chunked, gzip',
      ' close',
      ' keep-alive, Close',
      ' keep-alive',
      ' x',
      '',
      ' 1a',
      ' 0012',
      ' \u00a0close',
      '\vchunked',
      ' chunked\u00a0',
      ' close\rX',
      'close\r',
      ' gzip,\tchunked\f',
      ',',
      ' 12\u00a0',
      '\u00a012',
      ' CHUNKED , ',
      ' keep-alive,,close',
    ];
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const randomCase = (name: string) =>
      [...name].map((c) => (next(2) === 0 ? c.toLowerCase() : c.toUpperCase())).join('');
    for (let round = 0; round < 2000; round++) {
      const lines = [`HTTP/1.${next(2)} ${[200, 204, 304, 404, 101][next(5)]} OK`];
      for (let i = next(5); i > 0; i--)
        lines.push(
          `${randomCase(names[next(names.length)] as string)}:${values[next(values.length)]}`,
        );
      const method = next(5) === 0 ? 'HEAD' : 'GET';
      const head = lines.join('\r\n');
      let expected: unknown;
      let actual: unknown;
      try {
        expected = referenceReading(head, method);
      } catch (err) {
        expected = (err as Error).message;
      }
      try {
        actual = parse(head, method);
      } catch (err) {
        actual = (err as Error).message;
      }
      assert.deepEqual(actual, expected, head);
    }
  });

  test('malformed heads are refused', () => {
    for (const [head, message] of [
      ['HTTP/2 200 OK', /malformed status line/],
      ['HTTP/1.1 200 OK\r\nno colon here', /without a colon/],
      ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 6', /malformed Content-Length/],
      ['HTTP/1.1 200 OK\r\nContent-Length: -1', /malformed Content-Length/],
      ['HTTP/1.1 200 OK\r\nContent-Length: \u00a05', /malformed Content-Length/],
      ['http/1.1 200 OK', /malformed status line/],
      ['HTTP/1.1 2000 OK', /malformed status line/],
      ['HTTP/1.1 20x OK', /malformed status line/],
    ] as const)
      assert.throws(() => parse(head), message, head);
  });
});

/** The reading this replaced (strings and regular expressions), as the reference. */
function referenceReading(text: string, method: string) {
  let end = text.indexOf('\r\n');
  if (end < 0) end = text.length;
  const line = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(text.slice(0, end));
  if (line === null) throw new Error('invalid response from the apiserver: malformed status line');
  const status = Number(line[1]);
  let contentLength = -1;
  let chunked = false;
  let transferEncoding = false;
  let close = false;
  let keepAlive = false;
  while (end < text.length) {
    const start = end + 2;
    end = text.indexOf('\r\n', start);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', start);
    if (colon < 0 || colon > end)
      throw new Error('invalid response from the apiserver: a header line without a colon');
    const name = text.slice(start, colon).toLowerCase();
    const value = text.slice(colon + 1, end);
    if (name === 'content-length') {
      // Content-Length alone is trimmed of OWS only (spaces and tabs): stricter than trim().
      const v = value.replace(/^[ \t]+|[ \t]+$/g, '');
      if (!/^\d{1,15}$/.test(v) || (contentLength >= 0 && Number(v) !== contentLength))
        throw new Error('invalid response from the apiserver: malformed Content-Length');
      contentLength = Number(v);
    } else if (name === 'transfer-encoding') {
      transferEncoding = true;
      const codings = value.split(',');
      chunked = codings[codings.length - 1]?.trim().toLowerCase() === 'chunked';
    } else if (name === 'connection') {
      const tokens = value.split(',').map((t) => t.trim().toLowerCase());
      close ||= tokens.includes('close');
      keepAlive ||= tokens.includes('keep-alive');
    }
  }
  const bodyless = method === 'HEAD' || status < 200 || status === 204 || status === 304;
  const delimited = contentLength >= 0 ? Framing.Length : Framing.Close;
  const coded = chunked ? Framing.Chunked : Framing.Close;
  const framing = bodyless ? Framing.None : transferEncoding ? coded : delimited;
  const http10 = line[0].startsWith('HTTP/1.0');
  return {
    status,
    framing,
    length: contentLength,
    close: close || framing === Framing.Close || (http10 && !keepAlive),
    keepAlive,
  };
}
