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
    assert.equal(parse('HTTP/1.1 200 OK').framing, Framing.Close);
    assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 5', 'HEAD').framing, Framing.None);
    for (const status of [204, 304, 100])
      assert.equal(parse(`HTTP/1.1 ${status} X\r\nContent-Length: 5`).framing, Framing.None);
  });

  test('malformed heads are refused', () => {
    for (const [head, message] of [
      ['HTTP/2 200 OK', /malformed status line/],
      ['HTTP/1.1 200 OK\r\nno colon here', /without a colon/],
      ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 6', /malformed Content-Length/],
      ['HTTP/1.1 200 OK\r\nContent-Length: -1', /malformed Content-Length/],
    ] as const)
      assert.throws(() => parse(head), message, head);
  });
});
