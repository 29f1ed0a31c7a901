/**
 * The frame reader alone: frames forwarded as they arrive, a frame split across chunks kept
 * whole, frames of the relay's own slipped in only between forwarded frames (and only once its
 * sink accepts them), and nothing read after stop().
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Flag, FrameType, pingFrame, writeFrameHeader } from '../../src/proxy/h2/frames.js';
import { FrameReader, type FrameSink, Mode } from '../../src/proxy/h2/io.js';
import { atEndOfTurn } from '../../src/proxy/h2/turn.js';
import { Output } from '../../src/proxy/output.js';

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const out = Buffer.alloc(9 + payload.length);
  writeFrameHeader(out, 0, payload.length, type, flags, streamId);
  payload.copy(out, 9);
  return out;
}

/** Passes DATA, holds everything else and forwards it whole. */
class Sink implements FrameSink {
  acceptsOwnFrames = true;
  readonly seen: number[] = [];

  onFrameHeader(type: number): Mode {
    this.seen.push(type);
    return type === FrameType.Data ? Mode.Pass : Mode.Hold;
  }

  onFrame(): boolean {
    return true;
  }
}

const own = pingFrame(Buffer.alloc(8, 7), false);
const data = frame(FrameType.Data, Flag.EndStream, 1, Buffer.alloc(100, 0x61));
const settings = frame(FrameType.Settings, 0, 0, Buffer.alloc(6));

function rig() {
  const sink = new Sink();
  const out = new Output();
  return { sink, out, reader: new FrameReader(sink, out) };
}

describe('frames of the relay’s own', () => {
  test('wait for the end of a forwarded frame split across chunks', () => {
    const { out, reader } = rig();
    reader.feed(data.subarray(0, 50), 0);
    assert.ok(!reader.mayInject);
    reader.inject(own);
    assert.equal(reader.waiting, 1);
    reader.feed(data.subarray(50), 0);
    assert.equal(reader.waiting, 0);
    assert.deepEqual(out.take(), Buffer.concat([data, own]));
  });

  test('go at once between frames, and while a held frame is gathered', () => {
    const { out, reader } = rig();
    reader.feed(data, 0);
    reader.inject(own);
    reader.feed(settings.subarray(0, 10), 0);
    reader.inject(own);
    reader.feed(settings.subarray(10), 0);
    assert.deepEqual(out.take(), Buffer.concat([data, own, own, settings]));
  });

  test('wait until the sink accepts them, and keep their order', () => {
    const { sink, out, reader } = rig();
    sink.acceptsOwnFrames = false;
    reader.inject(own);
    reader.feed(data, 0);
    assert.deepEqual(out.take(), data);
    sink.acceptsOwnFrames = true;
    const second = pingFrame(Buffer.alloc(8, 8), false);
    reader.inject(second);
    assert.equal(reader.waiting, 2);
    reader.feed(settings, 0);
    assert.deepEqual(out.take(), Buffer.concat([own, second, settings]));
  });

  test('can be dropped', () => {
    const { sink, out, reader } = rig();
    sink.acceptsOwnFrames = false;
    reader.inject(own);
    reader.dropWaiting();
    sink.acceptsOwnFrames = true;
    reader.feed(data, 0);
    assert.deepEqual(out.take(), data);
  });
});

test('after stop() nothing more is read', () => {
  const { sink, out, reader } = rig();
  reader.feed(data, 0);
  reader.stop();
  reader.feed(settings, 0);
  assert.deepEqual(sink.seen, [FrameType.Data]);
  assert.deepEqual(out.take(), data);
});

test('end-of-turn tasks run once each, in order, after the code that queued them', async () => {
  const ran: string[] = [];
  atEndOfTurn(() => ran.push('a'));
  atEndOfTurn(() => ran.push('b'));
  ran.push('sync');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(ran, ['sync', 'a', 'b']);
});
