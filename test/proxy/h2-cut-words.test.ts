/**
 * What a cut HTTP/2 connection says, alone (src/proxy/h2/cut.ts): where JSON watch events end
 * among DATA frames, the ERROR event each watch at an event boundary gets within the client's
 * windows, which watches wait and which are skipped once the grace is over, and the GOAWAY
 * debug data bounded without splitting a character. The relay around it is h2-cut.test.ts.
 */
import assert from 'node:assert/strict';
import type { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import {
  CutWords,
  EventBoundaries,
  goawayDebug,
  MAX_GOAWAY_DEBUG,
  type WatchStream,
} from '../../src/proxy/h2/cut.js';
import { FlowWindows } from '../../src/proxy/h2/flow.js';
import { Flag, FrameType } from '../../src/proxy/h2/frames.js';
import { EndedAtClient, Stream, StreamTable } from '../../src/proxy/h2/streams.js';
import { unauthorized } from '../../src/proxy/status.js';
import { watchErrorEvent } from '../../src/proxy/streaming.js';
import { type ReceivedFrame, splitFrames } from '../security/h2-frames.js';

const STATUS = unauthorized('client certificate revoked (serial 1234)');
const LF = 0x0a;

type Frame = ReceivedFrame;

function frames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  const rest = splitFrames(buf, (f) => out.push(f));
  assert.equal(rest.length, 0, 'whole frames');
  return out;
}

function watch(id: number, window = 65_535): WatchStream {
  return { id, upstreamMaySend: window, jsonEvents: true, atEvent: true };
}

describe('EventBoundaries', () => {
  test("a watch is at an event when its last DATA frame's last octet is a newline", () => {
    const events = new EventBoundaries();
    const stream = watch(1);
    events.dataFrame(stream, 10, false);
    assert.equal(stream.atEvent, false, 'a frame under way is not at an event');
    events.settle(LF);
    assert.equal(stream.atEvent, true);
    events.dataFrame(stream, 10, false);
    events.settle(0x7d);
    assert.equal(stream.atEvent, false, 'a frame that ends mid-event');
  });

  test('a padded frame is not judged; empty frames and other streams change nothing', () => {
    const events = new EventBoundaries();
    const stream = watch(1);
    events.dataFrame(stream, 10, true);
    events.settle(LF);
    assert.equal(stream.atEvent, false, 'its last octet is padding');
    events.dataFrame(stream, 10, false);
    events.settle(LF);
    events.dataFrame(stream, 0, false);
    events.dataFrame(null, 10, false);
    events.settle(0x7d);
    assert.equal(stream.atEvent, true);
  });
});

describe('CutWords', () => {
  test("a watch's ERROR event: the Status in DATA with END_STREAM, only where both windows take it", () => {
    const words = new CutWords(STATUS, 'revoked');
    const event = watchErrorEvent(STATUS);
    assert.deepEqual(words.event, event);
    const out = words.eventFor(watch(3), 65_535);
    assert.ok(out !== null);
    const [frame, ...rest] = frames(out);
    assert.equal(rest.length, 0);
    assert.deepEqual(
      { type: frame?.type, flags: frame?.flags, streamId: frame?.streamId },
      { type: FrameType.Data, flags: Flag.EndStream, streamId: 3 },
    );
    assert.deepEqual(frame?.payload, event);
    assert.equal(words.eventFor(watch(3, event.length - 1), 65_535), null, 'stream window');
    assert.equal(words.eventFor(watch(3), event.length - 1), null, 'connection window');
    assert.ok(words.eventFor(watch(3, event.length), event.length) !== null, 'exactly enough');
  });

  test('GOAWAY NO_ERROR naming the last stream, with the reason as debug data', () => {
    const [frame] = frames(new CutWords(STATUS, 'revoked: CN=alice').goaway(7));
    assert.equal(frame?.type, FrameType.Goaway);
    assert.equal(frame?.streamId, 0);
    assert.equal(frame?.payload.readUInt32BE(0), 7);
    assert.equal(frame?.payload.readUInt32BE(4), 0);
    assert.equal(frame?.payload.subarray(8).toString('utf8'), 'revoked: CN=alice');
  });

  test('endWatches: events for watches at a boundary, a wait for the others until the grace ends', () => {
    const streams = new StreamTable();
    const flow = new FlowWindows();
    const open = (id: number, json: boolean, atEvent: boolean): Stream => {
      const stream = new Stream(id, 65_535, 65_535);
      stream.jsonEvents = json;
      stream.atEvent = atEvent;
      streams.clientOpened(id);
      streams.forward(stream);
      return stream;
    };
    const atEvent = open(1, true, true);
    const midEvent = open(3, true, false);
    open(5, false, true);
    const words = new CutWords(STATUS, 'revoked');
    const sent: Frame[] = [];
    const inject = (frame: Buffer) => sent.push(...frames(frame));

    assert.equal(words.endWatches(streams, flow, inject), true, 'stream 3 is mid-event');
    assert.deepEqual(
      sent.map((f) => f.streamId),
      [1],
    );
    assert.equal(streams.howEndedAtClient(1), EndedAtClient.EndStream);
    assert.equal(atEvent.upstreamMaySend, 65_535 - words.event.length, "the stream's window");
    assert.equal(flow.upstreamMaySendOnConnection, 65_535 - words.event.length, 'the connection');

    assert.equal(words.endWatches(streams, flow, inject), true, 'still waiting');
    assert.equal(sent.length, 1, 'no second event for stream 1');

    midEvent.atEvent = true;
    assert.equal(words.endWatches(streams, flow, inject), false);
    assert.deepEqual(
      sent.map((f) => f.streamId),
      [1, 3],
    );
  });

  test('once the grace is over, a watch still mid-event, or without window, gets nothing', () => {
    const streams = new StreamTable();
    const flow = new FlowWindows();
    for (const [id, window] of [
      [1, 65_535],
      [3, 10],
    ] as const) {
      const stream = new Stream(id, 65_535, window);
      stream.jsonEvents = true;
      stream.atEvent = id === 3;
      streams.clientOpened(id);
      streams.forward(stream);
    }
    const words = new CutWords(STATUS, 'revoked');
    const sent: Buffer[] = [];
    assert.equal(
      words.endWatches(streams, flow, (f) => sent.push(f)),
      true,
    );
    words.expired = true;
    assert.equal(
      words.endWatches(streams, flow, (f) => sent.push(f)),
      false,
    );
    assert.equal(sent.length, 0);
    assert.equal(streams.howEndedAtClient(1), undefined);
    assert.equal(streams.howEndedAtClient(3), undefined);
  });

  test('startGrace: the cut expires, then the callback runs', async () => {
    const words = new CutWords(STATUS, 'revoked');
    // The grace timer is unref'd (it must not hold a closing proxy open): this one holds the test.
    const hold = setInterval(() => {}, 1_000);
    try {
      const expired = await new Promise<boolean>((resolve) =>
        words.startGrace(() => resolve(words.expired)),
      );
      assert.equal(expired, true);
    } finally {
      clearInterval(hold);
    }
  });
});

describe('goawayDebug', () => {
  test('the reason as UTF-8, whole when it fits', () => {
    assert.equal(goawayDebug('revoked: CN=élise').toString('utf8'), 'revoked: CN=élise');
  });

  test('at most MAX_GOAWAY_DEBUG octets, never ending inside a character', () => {
    for (const filler of ['é', '€', '😀']) {
      for (let lead = 0; lead < 4; lead++) {
        const reason = 'x'.repeat(lead) + filler.repeat(MAX_GOAWAY_DEBUG);
        const debug = goawayDebug(reason);
        assert.ok(debug.length <= MAX_GOAWAY_DEBUG);
        assert.ok(debug.length > MAX_GOAWAY_DEBUG - 4, 'cut at most one character short');
        const text = debug.toString('utf8');
        assert.ok(!text.includes('\ufffd'), 'no broken character');
        assert.ok(reason.startsWith(text));
      }
    }
  });
});
