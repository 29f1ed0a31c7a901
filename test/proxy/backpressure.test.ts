/**
 * The backpressure helper the HTTP/1.1 splice and the HTTP/2 relay share
 * (src/proxy/backpressure.ts): when a socket's unwritten output counts as full, and a read
 * switch that pauses and resumes a stream only when its state changes.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { HIGH_WATER_MARK, isFull, ReadSwitch } from '../../src/proxy/backpressure.js';

/** A real stream that counts the pause() and resume() calls it gets. */
class CountingStream extends PassThrough {
  pauses = 0;
  resumes = 0;

  override pause(): this {
    this.pauses++;
    return super.pause();
  }

  override resume(): this {
    this.resumes++;
    return super.resume();
  }
}

test('full from HIGH_WATER_MARK octets of unwritten output; no socket is never full', () => {
  assert.equal(isFull(null), false);
  assert.equal(isFull({ writableLength: 0 }), false);
  assert.equal(isFull({ writableLength: HIGH_WATER_MARK - 1 }), false);
  assert.equal(isFull({ writableLength: HIGH_WATER_MARK }), true);
});

test('a stream written past the mark is full until it drains', async () => {
  const stream = new PassThrough({ highWaterMark: 1 });
  stream.write(Buffer.alloc(HIGH_WATER_MARK));
  stream.write(Buffer.alloc(1));
  assert.equal(isFull(stream), true);
  stream.resume();
  await new Promise((resolve) => stream.once('drain', resolve));
  assert.equal(isFull(stream), false);
});

test('ReadSwitch pauses and resumes only on a change', () => {
  const stream = new CountingStream();
  const reading = new ReadSwitch();
  reading.set(stream, true);
  assert.deepEqual([stream.pauses, stream.resumes], [0, 0], 'it is read from the start');
  reading.set(stream, false);
  reading.set(stream, false);
  assert.deepEqual([stream.pauses, stream.resumes], [1, 0]);
  assert.equal(stream.isPaused(), true);
  reading.set(stream, true);
  reading.set(stream, true);
  assert.deepEqual([stream.pauses, stream.resumes], [1, 1]);
  assert.equal(stream.isPaused(), false);
});

test('ReadSwitch.reset: another stream behind the switch, read from the start', () => {
  const first = new CountingStream();
  const reading = new ReadSwitch();
  reading.set(first, false);
  const second = new CountingStream();
  reading.reset();
  reading.set(second, true);
  assert.equal(second.resumes, 0);
  reading.set(second, false);
  assert.equal(second.pauses, 1);
});
