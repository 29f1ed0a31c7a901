/**
 * The request rewriter alone: a client's decoded and checked request head becomes the HEADERS
 * the upstream gets — pseudo-fields first and as sent, identity and hop-by-hop fields out, the
 * certificate's identity and X-Forwarded-For in, invalid fields dropped, "never indexed" kept —
 * framed as HEADERS and CONTINUATION when large; trailers lose identity fields and get none.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Flag, FRAME_HEADER_LENGTH, FrameType } from '../../src/proxy/h2/frames.js';
import { FieldFlag, HpackDecoder } from '../../src/proxy/h2/hpack.js';
import { HpackEncoder } from '../../src/proxy/h2/hpack-encoder.js';
import { checkRequest, checkTrailers } from '../../src/proxy/h2/request.js';
import { RequestRewriter } from '../../src/proxy/h2/rewrite.js';
import { ConnectionHeaders, identityHeaderRules } from '../../src/proxy/headers.js';
import { decodedFields, encodeBlock, type Field } from '../support/hpack.js';

const rules = identityHeaderRules({
  usernameHeaders: ['X-Remote-User'],
  groupHeaders: ['X-Remote-Group'],
  extraHeadersPrefixes: ['X-Remote-Extra-'],
  uidHeaders: ['X-Remote-Uid'],
});
const alice = new ConnectionHeaders('192.0.2.7', { user: 'alice', groups: ['dev', 'ops'] }, rules);

const HEAD: readonly Field[] = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'kube.example'],
  [':path', '/api/v1/pods'],
];

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

function frames(bytes: Buffer): Frame[] {
  const out: Frame[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUIntBE(at, 3);
    out.push({
      type: bytes[at + 3] as number,
      flags: bytes[at + 4] as number,
      streamId: bytes.readUInt32BE(at + 5),
      payload: bytes.subarray(at + FRAME_HEADER_LENGTH, at + FRAME_HEADER_LENGTH + length),
    });
    at += FRAME_HEADER_LENGTH + length;
  }
  return out;
}

/** A rewriter, and the client's fields decoded and checked as the relay decodes them. */
function rig() {
  const client = new HpackEncoder();
  const decoder = new HpackDecoder();
  const upstream = new HpackDecoder();
  const rewriter = new RequestRewriter({ ownHeaders: () => alice }, rules);
  const receive = (fields: readonly Field[], neverIndexed = false) => {
    const block = encodeBlock(client, fields, { neverIndexed });
    decoder.decode(block, 0, block.length, 1 << 20, 1000);
    return decoder.fields;
  };
  /** What the upstream decodes from the frames, and the frames. */
  const forwarded = (bytes: Buffer) => {
    const list = frames(bytes);
    const block = Buffer.concat(list.map((f) => f.payload));
    upstream.decode(block, 0, block.length, 1 << 20, 1000);
    return { frames: list, fields: decodedFields(upstream), decoder: upstream };
  };
  return { rewriter, receive, forwarded };
}

describe('request heads', () => {
  test('identity fields replaced by the certificate’s, X-Forwarded-For appended', () => {
    const { rewriter, receive, forwarded } = rig();
    const fields = receive([
      ...HEAD,
      ['accept', 'application/json'],
      ['x-remote-user', 'mallory'],
      ['x-remote-extra-scopes', 'admin'],
      ['x-forwarded-for', '198.51.100.1'],
    ]);
    assert.ok(checkRequest(fields) !== null);
    const out = forwarded(rewriter.head(fields, 1, true));
    assert.equal(out.frames.length, 1);
    assert.equal(out.frames[0]?.type, FrameType.Headers);
    assert.equal(out.frames[0]?.flags, Flag.EndHeaders | Flag.EndStream);
    assert.equal(out.frames[0]?.streamId, 1);
    assert.deepEqual(out.fields, [
      ...HEAD,
      ['accept', 'application/json'],
      ['x-forwarded-for', '198.51.100.1, 192.0.2.7'],
      ['x-remote-user', 'alice'],
      ['x-remote-group', 'dev'],
      ['x-remote-group', 'ops'],
    ]);
  });

  test('fields the check dropped are not forwarded; the request goes on', () => {
    const { rewriter, receive, forwarded } = rig();
    const fields = receive([...HEAD, ['x-spaced', ' leading space'], ['x-fine', 'yes']]);
    assert.ok(checkRequest(fields) !== null);
    assert.ok(fields.has(4, FieldFlag.Dropped));
    const names = forwarded(rewriter.head(fields, 3, false)).fields.map(([name]) => name);
    assert.ok(!names.includes('x-spaced'));
    assert.ok(names.includes('x-fine'));
  });

  test('fields the client sent "never indexed" stay so (RFC 7541 7.1.3)', () => {
    const { rewriter, receive, forwarded } = rig();
    const fields = receive([...HEAD, ['x-token', 'secret']], true);
    checkRequest(fields);
    const out = forwarded(rewriter.head(fields, 1, true));
    const at = out.fields.findIndex(([name]) => name === 'x-token');
    assert.ok(out.decoder.fields.has(at, FieldFlag.NeverIndexed));
    assert.ok(out.decoder.fields.has(0, FieldFlag.NeverIndexed), ':method too');
  });

  test('a head above 16,384 octets goes as HEADERS and CONTINUATION frames', () => {
    const { rewriter, receive, forwarded } = rig();
    const big: Field[] = Array.from({ length: 8 }, (_, i) => [`x-big-${i}`, 'v'.repeat(4000)]);
    const fields = receive([...HEAD, ...big]);
    checkRequest(fields);
    const out = forwarded(rewriter.head(fields, 5, true));
    assert.ok(out.frames.length > 1);
    assert.deepEqual(
      out.frames.map((f) => f.type),
      [FrameType.Headers, ...out.frames.slice(1).map(() => FrameType.Continuation)],
    );
    assert.equal(out.frames[0]?.flags, Flag.EndStream);
    assert.equal(out.frames.at(-1)?.flags, Flag.EndHeaders);
    for (const f of out.frames) assert.ok(f.payload.length <= 16_384);
    assert.deepEqual(out.fields.slice(4, 12), big);
  });

  test('a smaller table the upstream asked for is signalled at the start of the next block', () => {
    const { rewriter, receive, forwarded } = rig();
    rewriter.setTableLimit(0);
    const fields = receive(HEAD);
    checkRequest(fields);
    const out = forwarded(rewriter.head(fields, 1, true));
    assert.equal(out.frames[0]?.payload[0], 0x20);
    assert.deepEqual(out.decoder.snapshot().maxSize, 0);
  });
});

describe('request trailers', () => {
  test('identity and X-Forwarded-For fields out, nothing added, END_STREAM set', () => {
    const { rewriter, receive, forwarded } = rig();
    const fields = receive([
      ['x-checksum', 'abc'],
      ['x-remote-group', 'system:masters'],
      ['x-forwarded-for', '198.51.100.1'],
    ]);
    assert.equal(checkTrailers(fields, -1), -1);
    const out = forwarded(rewriter.trailers(fields, 7));
    assert.equal(out.frames[0]?.flags, Flag.EndHeaders | Flag.EndStream);
    assert.deepEqual(out.fields, [['x-checksum', 'abc']]);
  });
});
