/**
 * The chunked-body framer on its own: where a body ends, which bytes go on (request trailers
 * dropped, response trailers kept), every refusal, and the same results whatever the reads a
 * body arrives in.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RequestFramingError } from '../../src/errors.js';
import { ChunkedBody } from '../../src/proxy/h1/chunked.js';
import { Output } from '../../src/proxy/output.js';

const MAX_TRAILER = 1024;

interface Result {
  /** Where the body ended in the whole input, -1 if it did not. */
  readonly end: number;
  readonly forwarded: string;
}

/** Feeds `text` in reads cut at `cuts`; returns where the body ended and what went on. */
function run(text: string, cuts: readonly number[] = [], keepTrailers = false): Result {
  const body = new ChunkedBody(keepTrailers, MAX_TRAILER);
  const out = new Output();
  const buf = Buffer.from(text, 'latin1');
  const bounds = [0, ...cuts, buf.length];
  let forwarded = '';
  for (let i = 0; i + 1 < bounds.length; i++) {
    const piece = Buffer.from(buf.subarray(bounds[i], bounds[i + 1]));
    const end = body.feed(piece, 0, piece.length, out);
    forwarded += out.take()?.toString('latin1') ?? '';
    if (end >= 0) return { end: (bounds[i] as number) + end, forwarded };
  }
  return { end: -1, forwarded };
}

const BODY = '5\r\nhello\r\n1a;name=value;q="a \\"b\\""\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n';

describe('valid bodies', () => {
  test('chunks with extensions pass unchanged; the end is exact', () => {
    const result = run(`${BODY}GET / HTTP/1.1\r\n`);
    assert.deepEqual(result, { end: BODY.length, forwarded: BODY });
  });

  test('request trailers are dropped, response trailers kept', () => {
    const text = '3\r\nabc\r\n0\r\nX-Remote-User: spoof\r\nX-Checksum: 1\r\n\r\n';
    assert.deepEqual(run(text), { end: text.length, forwarded: '3\r\nabc\r\n0\r\n\r\n' });
    assert.deepEqual(run(text, [], true), { end: text.length, forwarded: text });
  });

  test('hex sizes in either case, leading zeros, whitespace before extensions', () => {
    const text = '000A ; ext\r\n0123456789\r\nf\r\n0123456789abcde\r\n0\r\n\r\n';
    assert.deepEqual(run(text), { end: text.length, forwarded: text });
  });

  test('the same at every split, and byte by byte', () => {
    const text = `${BODY}X`;
    for (let at = 0; at <= text.length; at++)
      assert.deepEqual(run(text, [at]), { end: BODY.length, forwarded: BODY }, `split at ${at}`);
    const everyByte = Array.from({ length: text.length - 1 }, (_, i) => i + 1);
    assert.deepEqual(run(text, everyByte), { end: BODY.length, forwarded: BODY });
  });

  test('an unfinished body: -1, and no unchecked line forwarded', () => {
    assert.deepEqual(run('5\r\nhel'), { end: -1, forwarded: '5\r\nhel' });
    assert.deepEqual(run('5\r\nhello\r\n1'), { end: -1, forwarded: '5\r\nhello\r\n' });
  });

  test('stopAtBoundary stops after the chunk in progress', () => {
    const body = new ChunkedBody(true, MAX_TRAILER);
    const out = new Output();
    const first = Buffer.from('5\r\nhel');
    assert.equal(body.feed(first, 0, first.length, out), -1);
    assert.equal(body.atBoundary, false);
    body.stopAtBoundary = true;
    const rest = Buffer.from('lo\r\n3\r\nabc\r\n');
    assert.equal(body.feed(rest, 0, rest.length, out), -1);
    assert.ok(body.stopped);
    assert.equal(out.take()?.toString(), '5\r\nhello\r\n');
  });

  test('lineBoundaries: a watch event split over chunks is never cut (every split, every stop point)', () => {
    // Events as the apiserver's 2 KiB write buffer may chunk them: one event over three
    // chunks, two events in one chunk, an event ending at a chunk's end.
    const chunks = ['{"type":"ADDED",', '"object":{"a":1}', '}\n{"type":"DELETED"}\n', '{"x":2}\n'];
    const text = chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('');
    const ends = [0, ...chunks.map((_, i) => chunks.slice(0, i + 1).join('').length)];
    const wire = (dataEnd: number) => {
      const i = ends.indexOf(dataEnd);
      return chunks
        .slice(0, i)
        .reduce((n, c) => n + c.length.toString(16).length + c.length + 4, 0);
    };
    // Event boundaries on the wire: the start, after chunk 3, after chunk 4.
    const boundaries = [0, wire(ends[3] as number), wire(ends[4] as number)];
    for (let split = 0; split <= text.length; split++) {
      const body = new ChunkedBody(true, MAX_TRAILER);
      body.lineBoundaries = true;
      const out = new Output();
      const buf = Buffer.from(text, 'latin1');
      const first = buf.subarray(0, split);
      body.feed(first, 0, first.length, out);
      const forwardedBefore = out.take()?.length ?? 0;
      const expected = boundaries.find((b) => b >= forwardedBefore && b >= split) as number;
      if (body.atBoundary) {
        assert.equal(forwardedBefore, expected, `split ${split}: at a boundary`);
        continue;
      }
      body.stopAtBoundary = true;
      const rest = buf.subarray(split);
      body.feed(rest, 0, rest.length, out);
      assert.ok(body.stopped, `split ${split}`);
      const forwarded = forwardedBefore + (out.take()?.length ?? 0);
      assert.equal(forwarded, expected, `split ${split}: stopped after the event under way`);
    }
  });
});

describe('refusals', () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['a size that is not hex', 'zz\r\nab\r\n0\r\n\r\n'],
    ['a negative size', '-2\r\nab\r\n0\r\n\r\n'],
    ['a signed size', '+2\r\nab\r\n0\r\n\r\n'],
    ['an empty size line', '\r\nab\r\n0\r\n\r\n'],
    ['a size past 2^52', '10000000000000\r\nab\r\n'],
    ['a size overflowing 64 bits', '10000000000000002\r\nab\r\n0\r\n\r\n'],
    ['a bare LF after the size', '2\nab\r\n0\r\n\r\n'],
    ['a bare CR after the size', '2\rab\r\n0\r\n\r\n'],
    ['data without its CRLF', '2\r\nabXX0\r\n\r\n'],
    ['data followed by a bare LF', '2\r\nab\n0\r\n\r\n'],
    ['an extension without a name', '2;\r\nab\r\n0\r\n\r\n'],
    ['an extension with a bad character', '2;a@b\r\nab\r\n0\r\n\r\n'],
    ['an unterminated quoted extension', '2;a="b\r\nab\r\n0\r\n\r\n'],
    ['a space inside the size', '1 2\r\nab\r\n0\r\n\r\n'],
    ['a trailer without a colon', '0\r\nX-Note\r\n\r\n'],
    ['a folded trailer', '0\r\nX-A: a\r\n b\r\n\r\n'],
    ['a trailer with a bare LF', '0\r\nX-A: a\n\r\n'],
    ['a NUL in a trailer value', '0\r\nX-A: a\x00\r\n\r\n'],
    ['a size line too long', `1;${'a'.repeat(5000)}\r\nx\r\n0\r\n\r\n`],
    ['trailers too long', `0\r\nX-A: ${'a'.repeat(MAX_TRAILER)}\r\n\r\n`],
  ];
  for (const [label, text] of cases) {
    test(`${label}: 400 at every split`, () => {
      for (let at = 0; at <= text.length; at++) {
        assert.throws(
          () => run(text, [at]),
          (err: unknown) => err instanceof RequestFramingError && err.status === 400,
          `split at ${at}`,
        );
      }
    });
  }
});
