/**
 * The server→client WebSocket frame reader a cut relies on, and the frames it adds: message
 * boundaries are found whatever the reads a stream arrives in (frames built and read back by
 * the `ws` package's own Sender and Receiver), never inside a frame or a fragmented message.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { unauthorized } from '../../src/proxy/status.js';
import { FrameReader, finalFrames } from '../../src/proxy/websocket.js';
import { frame, receive } from '../support/websocket-frames.js';

const STATUS = unauthorized('client certificate revoked (serial 1234)');

interface Stream {
  readonly bytes: Buffer;
  /** Offsets where a message (or a control frame outside one) ends. */
  readonly boundaries: readonly number[];
}

/** A deterministic generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const SIZES = [0, 1, 2, 125, 126, 127, 1000, 65535, 65536, 70000];

/** Messages as the apiserver sends them, with fragmented ones and pings among fragments. */
function stream(next: () => number, messages: number): Stream {
  const parts: Buffer[] = [];
  const boundaries: number[] = [];
  let length = 0;
  const add = (bytes: Buffer, boundary: boolean) => {
    parts.push(bytes);
    length += bytes.length;
    if (boundary) boundaries.push(length);
  };
  for (let i = 0; i < messages; i++) {
    const size = SIZES[Math.floor(next() * SIZES.length)] as number;
    const payload = Buffer.concat([Buffer.of(1 + Math.floor(next() * 2)), randomBytes(size)]);
    const kind = next();
    if (kind < 0.15) {
      add(frame(Buffer.from('hb'), 0x9, true), true);
    } else if (kind < 0.35) {
      // Fragmented: first frame, a ping in between, continuations.
      const cut1 = Math.floor(payload.length / 3);
      const cut2 = Math.floor((2 * payload.length) / 3);
      add(frame(payload.subarray(0, cut1), 0x2, false), false);
      add(frame(Buffer.from('p'), 0x9, true, next() < 0.5), false);
      add(frame(payload.subarray(cut1, cut2), 0x0, false), false);
      add(frame(payload.subarray(cut2), 0x0, true), true);
    } else {
      add(frame(payload, 0x2, true, next() < 0.1), true);
    }
  }
  return { bytes: Buffer.concat(parts), boundaries };
}

/** Splits `bytes` into reads of random sizes, some of one byte. */
function reads(bytes: Buffer, next: () => number): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const size = next() < 0.3 ? 1 : 1 + Math.floor(next() * 40_000);
    out.push(bytes.subarray(pos, pos + size));
    pos += size;
  }
  return out;
}

describe('frame reader', () => {
  test('a cut stops exactly at the next message boundary, whatever the reads (fuzz)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed);
      const { bytes, boundaries } = stream(next, 12);
      const pieces = reads(bytes, next);
      const cutAfter = Math.floor(next() * pieces.length);
      const reader = new FrameReader();
      let offset = 0;
      let stoppedAt = -1;
      let cutAt = -1;
      for (let i = 0; i < pieces.length && stoppedAt < 0; i++) {
        const piece = pieces[i] as Buffer;
        const stop = i > cutAfter;
        if (stop && cutAt < 0) cutAt = offset;
        const upto = reader.feed(piece, 0, stop);
        if (stop && reader.atBoundary) stoppedAt = offset + upto;
        else assert.equal(upto, piece.length, `seed ${seed}: a read passes whole before a cut`);
        offset += piece.length;
      }
      if (cutAt < 0) continue;
      const expected = [0, ...boundaries].find((b) => b >= cutAt);
      assert.equal(stoppedAt, expected, `seed ${seed}: cut at ${cutAt}`);
    }
  });

  test('at the start and between messages it is at a boundary; not inside a frame', () => {
    const reader = new FrameReader();
    assert.equal(reader.atBoundary, true);
    const message = frame(Buffer.from([1, 104, 105]), 0x2, true);
    reader.feed(message.subarray(0, 1), 0, false);
    assert.equal(reader.atBoundary, false, 'half a header');
    reader.feed(message.subarray(1, 3), 0, false);
    assert.equal(reader.atBoundary, false, 'inside the payload');
    reader.feed(message.subarray(3), 0, false);
    assert.equal(reader.atBoundary, true);
  });

  test("the server's own error-channel message and Close are noticed", () => {
    const reader = new FrameReader();
    reader.feed(frame(Buffer.from([1, 120]), 0x2, true), 0, false);
    assert.equal(reader.errorChannelUsed, false);
    const status = frame(Buffer.from('\u0003{"status":"Success"}'), 0x2, true);
    reader.feed(status.subarray(0, 2), 0, false);
    reader.feed(status.subarray(2), 0, false);
    assert.equal(reader.errorChannelUsed, true);
    assert.equal(reader.closeSent, false);
    reader.feed(frame(Buffer.of(0x03, 0xe8), 0x8, true), 0, false);
    assert.equal(reader.closeSent, true);
  });
});

describe('the last frames of a cut session', () => {
  for (const protocol of ['v5.channel.k8s.io', 'v4.channel.k8s.io']) {
    test(`${protocol}: the Status on channel 3, then Close 1000`, async () => {
      const { messages, close } = await receive(finalFrames(protocol, STATUS, new FrameReader()));
      assert.equal(messages.length, 1);
      const [message] = messages;
      assert.equal(message?.binary, true);
      assert.equal(message?.data[0], 3);
      assert.deepEqual(JSON.parse(message?.data.subarray(1).toString() ?? ''), {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'client certificate revoked (serial 1234)',
        reason: 'Unauthorized',
        code: 401,
      });
      assert.deepEqual(close, { code: 1000, reason: '' });
    });
  }

  test('v4.base64.channel.k8s.io: a text message, "3" and the Status in base64', async () => {
    const { messages } = await receive(
      finalFrames('v4.base64.channel.k8s.io', STATUS, new FrameReader()),
    );
    const text = messages[0]?.data.toString() ?? '';
    assert.equal(messages[0]?.binary, false);
    assert.equal(text[0], '3');
    assert.equal(Buffer.from(text.slice(1), 'base64').toString(), STATUS.body);
  });

  test('channel.k8s.io (v1 to v3): the message as text on channel 3', async () => {
    const { messages } = await receive(finalFrames('channel.k8s.io', STATUS, new FrameReader()));
    assert.equal(messages[0]?.data.toString(), '\u0003client certificate revoked (serial 1234)');
  });

  test('a long message needs the 16-bit length form and still reads back', async () => {
    const long = unauthorized(`client certificate revoked (${'x'.repeat(70_000)})`);
    const { messages, close } = await receive(
      finalFrames('v5.channel.k8s.io', long, new FrameReader()),
    );
    assert.equal(messages[0]?.data.subarray(1).toString(), long.body);
    assert.equal(close?.code, 1000);
  });

  test('no channel protocol, or a Status already sent: the Close alone; after a Close: nothing', async () => {
    for (const protocol of ['SPDY/3.1+portforward.k8s.io', '']) {
      const { messages, close } = await receive(finalFrames(protocol, STATUS, new FrameReader()));
      assert.deepEqual([messages.length, close?.code], [0, 1000], protocol);
    }
    const reader = new FrameReader();
    reader.feed(frame(Buffer.from('\u0003{}'), 0x2, true), 0, false);
    const { messages } = await receive(finalFrames('v5.channel.k8s.io', STATUS, reader));
    assert.equal(messages.length, 0);
    reader.feed(frame(Buffer.of(0x03, 0xe8), 0x8, true), 0, false);
    assert.equal(finalFrames('v5.channel.k8s.io', STATUS, reader).length, 0);
  });
});
