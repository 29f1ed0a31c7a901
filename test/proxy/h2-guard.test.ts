/**
 * The client frame guard alone: what a client may send, frame header by frame header — the
 * first frame, sizes, streams, header blocks not interleaved, and the flood limits (rapid
 * reset, control and empty frames) — each violation a connection error with its RFC 9113 code;
 * and the client's connection preface before them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode, Flag, FrameType, PREFACE } from '../../src/proxy/h2/frames.js';
import { ClientFrameGuard, PrefaceCheck } from '../../src/proxy/h2/guard.js';
import { StreamTable } from '../../src/proxy/h2/streams.js';

/** A guard past the client's first SETTINGS, with stream 1 opened. */
function started(frameLimit = 16_384): { guard: ClientFrameGuard; streams: StreamTable } {
  const streams = new StreamTable();
  const guard = new ClientFrameGuard(streams, { clientFrameLimit: frameLimit });
  assert.equal(guard.check(FrameType.Settings, 0, 0, 0, -1), ErrorCode.NoError);
  streams.clientOpened(1);
  return { guard, streams };
}

const ok = ErrorCode.NoError;

describe('the first frame', () => {
  test('must be a SETTINGS frame, not its ACK', () => {
    for (const [type, flags] of [
      [FrameType.Headers, Flag.EndHeaders],
      [FrameType.Settings, Flag.Ack],
      [FrameType.Ping, 0],
    ] as const) {
      const guard = new ClientFrameGuard(new StreamTable(), { clientFrameLimit: 16_384 });
      assert.equal(guard.check(type, flags, type === FrameType.Headers ? 1 : 0, 8, -1), 1);
      assert.equal(guard.reason, 'first frame is not SETTINGS');
    }
    const guard = new ClientFrameGuard(new StreamTable(), { clientFrameLimit: 16_384 });
    assert.equal(guard.check(FrameType.Settings, 0, 0, 6, -1), ok);
    assert.equal(guard.check(FrameType.Ping, 0, 0, 8, -1), ok, 'then anything');
  });
});

describe('sizes', () => {
  test('a frame above the limit in force is a FRAME_SIZE_ERROR; the limit is read each time', () => {
    const limit = { clientFrameLimit: 16_384 };
    const guard = new ClientFrameGuard(new StreamTable(), limit);
    guard.check(FrameType.Settings, 0, 0, 0, -1);
    assert.equal(guard.check(FrameType.Data, 0, 1, 16_385, -1), ErrorCode.FrameSizeError);
    assert.equal(guard.reason, 'frame of 16385 octets');
    limit.clientFrameLimit = 32_768;
    assert.notEqual(guard.check(FrameType.Data, 0, 1, 16_385, -1), ErrorCode.FrameSizeError);
  });

  test('fixed-size frames of another size', () => {
    const cases: ReadonlyArray<readonly [number, number, number, number, string]> = [
      [FrameType.Priority, 0, 1, 4, 'PRIORITY size'],
      [FrameType.RstStream, 0, 1, 5, 'RST_STREAM size'],
      [FrameType.Ping, 0, 0, 7, 'PING size'],
      [FrameType.WindowUpdate, 0, 1, 3, 'WINDOW_UPDATE size'],
      [FrameType.Settings, 0, 0, 7, 'SETTINGS size'],
      [FrameType.Settings, Flag.Ack, 0, 6, 'SETTINGS ACK with a payload'],
      [FrameType.Goaway, 0, 0, 7, 'GOAWAY size'],
    ];
    for (const [type, flags, streamId, length, reason] of cases) {
      const { guard } = started();
      assert.equal(guard.check(type, flags, streamId, length, -1), ErrorCode.FrameSizeError);
      assert.equal(guard.reason, reason);
    }
  });

  test('DATA padding that does not fit is a PROTOCOL_ERROR', () => {
    const { guard } = started();
    assert.equal(guard.check(FrameType.Data, Flag.Padded, 1, 4, 4), ErrorCode.ProtocolError);
    assert.equal(guard.reason, 'DATA padding');
    assert.equal(started().guard.check(FrameType.Data, Flag.Padded, 1, 4, 3), ok);
  });
});

describe('streams', () => {
  test('frames on streams they cannot name are PROTOCOL_ERRORs', () => {
    const cases: ReadonlyArray<readonly [number, number, number, string]> = [
      [FrameType.Data, 0, 8, 'DATA on stream 0'],
      [FrameType.Headers, 0, 0, 'HEADERS on stream 0'],
      [FrameType.Headers, 2, 0, 'HEADERS on stream 2'],
      [FrameType.Priority, 0, 5, 'PRIORITY on 0'],
      [FrameType.RstStream, 0, 4, 'RST_STREAM on idle 0'],
      [FrameType.RstStream, 3, 4, 'RST_STREAM on idle 3'],
      [FrameType.Settings, 1, 0, 'SETTINGS stream'],
      [FrameType.Ping, 1, 8, 'PING stream'],
      [FrameType.Goaway, 1, 8, 'GOAWAY stream'],
      [FrameType.PushPromise, 1, 4, 'PUSH_PROMISE from a client'],
    ];
    for (const [type, streamId, length, reason] of cases) {
      const { guard } = started();
      assert.equal(guard.check(type, Flag.EndHeaders, streamId, length, -1), 1, reason);
      assert.equal(guard.reason, reason);
    }
  });

  test('RST_STREAM on a stream the client opened is fine', () => {
    assert.equal(started().guard.check(FrameType.RstStream, 0, 1, 4, -1), ok);
  });
});

describe('header blocks', () => {
  test('only CONTINUATION of the same stream may follow HEADERS without END_HEADERS', () => {
    const { guard } = started();
    assert.equal(guard.check(FrameType.Headers, 0, 3, 10, -1), ok);
    assert.equal(guard.check(FrameType.Continuation, 0, 3, 10, -1), ok);
    assert.equal(guard.check(FrameType.Ping, 0, 0, 8, -1), ErrorCode.ProtocolError);
    assert.equal(guard.reason, 'frame inside a header block');

    const other = started().guard;
    other.check(FrameType.Headers, 0, 3, 10, -1);
    assert.equal(other.check(FrameType.Continuation, 0, 5, 10, -1), ErrorCode.ProtocolError);
    assert.equal(other.reason, 'CONTINUATION out of a header block');
  });

  test('END_HEADERS closes the block; a CONTINUATION after it is out of place', () => {
    const { guard } = started();
    guard.check(FrameType.Headers, 0, 3, 10, -1);
    assert.equal(guard.check(FrameType.Continuation, Flag.EndHeaders, 3, 10, -1), ok);
    assert.equal(guard.check(FrameType.Ping, 0, 0, 8, -1), ok);
    assert.equal(guard.check(FrameType.Continuation, 0, 3, 10, -1), ErrorCode.ProtocolError);
    assert.equal(
      started().guard.check(FrameType.Continuation, Flag.EndHeaders, 1, 1, -1),
      ErrorCode.ProtocolError,
    );
  });
});

describe('floods', () => {
  // Budgets refill over time (so a test only bounds where the first refusal comes); the first
  // SETTINGS of started() took one control token.

  /** Checks up to `count` frames; the index of the first refused, or -1. */
  function firstRefused(count: number, check: () => number): number {
    for (let i = 0; i < count; i++) if (check() !== ok) return i;
    return -1;
  }

  test('rapid reset (CVE-2023-44487): a burst of 1000 RST_STREAM, then ENHANCE_YOUR_CALM', () => {
    const { guard } = started();
    let code = 0;
    const refused = firstRefused(2000, () => {
      code = guard.check(FrameType.RstStream, 0, 1, 4, -1);
      return code;
    });
    assert.ok(refused >= 1000, `refused at ${refused}`);
    assert.equal(code, ErrorCode.EnhanceYourCalm);
    assert.equal(guard.reason, 'stream reset flood (rapid reset)');
  });

  test('control and empty frames share one budget; PING ACKs and frames with content do not count', () => {
    const { guard } = started();
    for (let i = 0; i < 5000; i++) {
      assert.equal(guard.check(FrameType.Ping, Flag.Ack, 0, 8, -1), ok);
      assert.equal(guard.check(FrameType.Data, 0, 1, 100, -1), ok);
      assert.equal(guard.check(FrameType.Data, Flag.EndStream, 1, 0, -1), ok);
    }
    const kinds: ReadonlyArray<readonly [() => number, string]> = [
      [() => guard.check(FrameType.Ping, 0, 0, 8, -1), 'PING flood'],
      [() => guard.check(FrameType.Settings, 0, 0, 6, -1), 'SETTINGS flood'],
      [() => guard.check(FrameType.Priority, 0, 1, 5, -1), 'PRIORITY flood'],
      [() => guard.check(FrameType.Data, 0, 1, 0, -1), 'empty DATA flood'],
      [() => guard.check(0x20, 0, 0, 0, -1), 'unknown frame flood'],
    ];
    let refused = -1;
    for (let i = 0; i < 5000 && refused < 0; i++) {
      const [check] = kinds[i % kinds.length] as readonly [() => number, string];
      if (check() !== ok) refused = i;
    }
    assert.ok(refused >= 999, `refused at ${refused}`);
    assert.equal(guard.reason, (kinds[refused % kinds.length] as readonly [unknown, string])[1]);
  });

  test('empty HEADERS and CONTINUATION frames that do not end the block are counted', () => {
    const { guard } = started();
    assert.equal(guard.check(FrameType.Headers, 0, 3, 0, -1), ok);
    const refused = firstRefused(5000, () => guard.check(FrameType.Continuation, 0, 3, 0, -1));
    assert.ok(refused >= 998, `refused at ${refused}`);
    assert.equal(guard.reason, 'empty frame flood');
  });

  test('SETTINGS with more than 32 entries is refused at once', () => {
    const { guard } = started();
    assert.equal(guard.check(FrameType.Settings, 0, 0, 33 * 6, -1), ErrorCode.EnhanceYourCalm);
    assert.equal(guard.reason, 'SETTINGS flood');
  });
});

describe('the connection preface (RFC 9113 3.4)', () => {
  const frameBytes = Buffer.from([0, 0, 0, FrameType.Settings, 0, 0, 0, 0, 0]);

  test('whole in one read, frames after it: its length, then nothing more is a preface', () => {
    const check = new PrefaceCheck();
    assert.equal(check.read(Buffer.concat([PREFACE, frameBytes])), PREFACE.length);
    assert.equal(check.read(frameBytes), 0);
  });

  test('split over reads, one octet at a time', () => {
    const check = new PrefaceCheck();
    for (let i = 0; i < PREFACE.length; i++)
      assert.equal(check.read(PREFACE.subarray(i, i + 1)), 1);
    assert.equal(check.read(frameBytes), 0);
  });

  test('anything else is refused, wherever it differs', () => {
    assert.equal(new PrefaceCheck().read(Buffer.from('GET / HTTP/1.1\r\n\r\n')), -1);
    const check = new PrefaceCheck();
    assert.equal(check.read(PREFACE.subarray(0, 10)), 10);
    const rest = Buffer.from(PREFACE.subarray(10));
    rest[rest.length - 1] = 0x00;
    assert.equal(check.read(rest), -1);
  });
});
