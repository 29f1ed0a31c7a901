/**
 * The relay's flow-control windows alone (RFC 9113 6.9): the client may not overrun the
 * upstream's windows, WINDOW_UPDATE may not overflow 2^31-1, DATA the relay drops is credited
 * back, and SETTINGS_INITIAL_WINDOW_SIZE moves open streams by the change.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FlowWindows, type StreamWindows } from '../../src/proxy/h2/flow.js';

const MAX = 0x7fff_ffff;

function streamOf(flow: FlowWindows): StreamWindows {
  return {
    clientMaySend: flow.newStreamClientMaySend,
    upstreamMaySend: flow.newStreamUpstreamMaySend,
  };
}

describe('client DATA', () => {
  test('the connection window is 65,535 until the upstream grants more', () => {
    const flow = new FlowWindows();
    assert.ok(flow.clientSent(65_535));
    assert.ok(!flow.clientSent(1), 'one octet over');
    flow.upstreamGranted(1);
    assert.ok(flow.clientSent(0));
  });

  test('a stream window of its own, from the initial window', () => {
    const flow = new FlowWindows();
    const stream = streamOf(flow);
    assert.ok(flow.clientSentOn(stream, 65_535));
    assert.ok(!flow.clientSentOn(stream, 1));
    flow.upstreamGrantedOn(stream, 10);
    assert.equal(stream.clientMaySend, 9);
    flow.upstreamGrantedOn(undefined, 10);
  });

  test('DATA the relay drops is given back to the client', () => {
    const flow = new FlowWindows();
    assert.ok(flow.clientSent(60_000));
    flow.returnToClient(60_000);
    assert.ok(flow.clientSent(65_535));
  });
});

describe('client WINDOW_UPDATE', () => {
  test('the connection window may not pass 2^31-1', () => {
    const flow = new FlowWindows();
    assert.ok(flow.clientGranted(MAX - 65_535));
    assert.ok(!flow.clientGranted(1));
  });

  test('nor a stream window', () => {
    const flow = new FlowWindows();
    const stream = streamOf(flow);
    assert.ok(flow.clientGrantedOn(stream, MAX - 65_535));
    assert.ok(!flow.clientGrantedOn(stream, 1));
  });

  test('upstream DATA spends the windows the client granted; dropped DATA is given back', () => {
    const flow = new FlowWindows();
    const stream = streamOf(flow);
    flow.upstreamSent(stream, 65_535);
    assert.equal(stream.upstreamMaySend, 0);
    flow.returnToUpstream(10);
    assert.ok(flow.clientGranted(MAX - 10), 'the connection window was 10');
    assert.ok(!flow.clientGranted(1));
  });
});

describe('SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 6.9.2)', () => {
  test("the upstream's moves what the client may send on open streams, and on new ones", () => {
    const flow = new FlowWindows();
    const open = [streamOf(flow), streamOf(flow)];
    flow.clientSentOn(open[0] as StreamWindows, 1000);
    flow.setUpstreamInitialWindow(1000, open);
    // 65,535 → 1,000: both move by -64,535 (the first had 64,535 left).
    assert.deepEqual(
      open.map((s) => s.clientMaySend),
      [0, 1000],
    );
    assert.equal(flow.newStreamClientMaySend, 1000);
    assert.equal(flow.newStreamUpstreamMaySend, 65_535, "the client's side is apart");
  });

  test("the client's moves what the upstream may send", () => {
    const flow = new FlowWindows();
    const open = [streamOf(flow)];
    flow.setClientInitialWindow(MAX, open);
    assert.equal(open[0]?.upstreamMaySend, MAX);
    assert.equal(flow.newStreamUpstreamMaySend, MAX);
    assert.equal(open[0]?.clientMaySend, 65_535);
  });
});
