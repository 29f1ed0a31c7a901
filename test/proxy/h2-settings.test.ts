/**
 * The SETTINGS mirror alone: the upstream's SETTINGS as the client is offered them (lowered to
 * the proxy's limits, no extended CONNECT), which settings are in force once acknowledged (in
 * order), and the largest frame the client may send meanwhile.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FRAME_HEADER_LENGTH, Setting, settingsFrame } from '../../src/proxy/h2/frames.js';
import { SettingsMirror } from '../../src/proxy/h2/settings.js';

const limits = { h2MaxConcurrentStreams: 100, maxHeaderBytes: 65_536 };

function payload(entries: ReadonlyArray<readonly [number, number]>): Buffer {
  return settingsFrame(entries).subarray(FRAME_HEADER_LENGTH);
}

function entries(frame: Buffer | null): Array<[number, number]> {
  assert.ok(frame !== null);
  const out: Array<[number, number]> = [];
  for (let i = FRAME_HEADER_LENGTH; i < frame.length; i += 6)
    out.push([frame.readUInt16BE(i), frame.readUInt32BE(i + 2)]);
  return out;
}

describe('the upstream’s SETTINGS, as the client sees them', () => {
  test('the first states the stream and header-list limits when the upstream leaves them open', () => {
    const mirror = new SettingsMirror(limits);
    assert.ok(!mirror.upstreamStarted);
    const sent = mirror.fromUpstream(payload([[Setting.InitialWindowSize, 1_048_576]]));
    assert.ok(mirror.upstreamStarted);
    assert.deepEqual(entries(sent), [
      [Setting.InitialWindowSize, 1_048_576],
      [Setting.MaxConcurrentStreams, 100],
      [Setting.MaxHeaderListSize, 65_536],
    ]);
  });

  test('limits above the proxy’s are lowered, extended CONNECT is not offered', () => {
    const mirror = new SettingsMirror(limits);
    const sent = mirror.fromUpstream(
      payload([
        [Setting.MaxConcurrentStreams, 250],
        [Setting.EnableConnectProtocol, 1],
        [Setting.MaxHeaderListSize, 1 << 20],
      ]),
    );
    assert.deepEqual(entries(sent), [
      [Setting.MaxConcurrentStreams, 100],
      [Setting.MaxHeaderListSize, 65_536],
    ]);
  });

  test('later SETTINGS within the limits pass as they are', () => {
    const mirror = new SettingsMirror(limits);
    mirror.fromUpstream(payload([]));
    assert.equal(mirror.fromUpstream(payload([[Setting.MaxConcurrentStreams, 50]])), null);
    assert.equal(mirror.fromUpstream(payload([])), null);
  });
});

describe('settings in force', () => {
  test('the client’s ACKs apply the upstream’s SETTINGS in the order they were sent', () => {
    const mirror = new SettingsMirror(limits);
    mirror.fromUpstream(payload([[Setting.HeaderTableSize, 0]]));
    mirror.fromUpstream(payload([[Setting.InitialWindowSize, 10]]));
    assert.deepEqual(mirror.clientAcknowledged(), { headerTableSize: 0 });
    assert.deepEqual(mirror.clientAcknowledged(), { initialWindowSize: 10 });
    assert.equal(mirror.clientAcknowledged(), undefined, 'an ACK of nothing sent');
  });

  test('the relay’s own (empty) SETTINGS count as sent', () => {
    const mirror = new SettingsMirror(limits);
    assert.deepEqual(entries(mirror.ownSettings()), []);
    assert.deepEqual(mirror.clientAcknowledged(), {});
  });

  test('the upstream’s ACKs apply the client’s SETTINGS, once its first went upstream', () => {
    const mirror = new SettingsMirror(limits);
    assert.ok(!mirror.clientStarted);
    mirror.fromClient(payload([[Setting.HeaderTableSize, 100]]));
    assert.ok(mirror.clientStarted);
    mirror.fromClient(payload([]));
    assert.deepEqual(mirror.upstreamAcknowledged(), { headerTableSize: 100 });
    assert.deepEqual(mirror.upstreamAcknowledged(), {});
    assert.equal(mirror.upstreamAcknowledged(), undefined);
  });

  test('the client may send frames up to the largest size sent or in force', () => {
    const mirror = new SettingsMirror(limits);
    assert.equal(mirror.clientFrameLimit, 16_384);
    mirror.fromUpstream(payload([[Setting.MaxFrameSize, 65_536]]));
    assert.equal(mirror.clientFrameLimit, 65_536, 'before the ACK too');
    mirror.fromUpstream(payload([[Setting.MaxFrameSize, 20_000]]));
    assert.equal(mirror.clientFrameLimit, 65_536);
    mirror.clientAcknowledged();
    assert.equal(mirror.clientFrameLimit, 65_536, 'in force now');
    mirror.clientAcknowledged();
    assert.equal(mirror.clientFrameLimit, 20_000, 'the lower size is in force');
  });
});
