/**
 * SPDY/3.1 pieces of the fake: the framer against arbitrary splits, header-block zlib with
 * the SPDY/3 dictionary, and the session (replies, PING echo, RST, GOAWAY, backpressure)
 * driven by a small client over a real upgraded socket.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type TestContext, test } from 'node:test';
import { constants, deflateSync, inflateSync } from 'node:zlib';
import { SPDY3_DICTIONARY } from '../../../src/demo/fake-apiserver/streaming/spdy-dictionary.js';
import {
  encodeData,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSynReply,
  encodeSynStream,
  FLAG_FIN,
  SpdyFrameParser,
} from '../../../src/demo/fake-apiserver/streaming/spdy-framer.js';
import {
  decodeHeaderBlock,
  encodeHeaderBlock,
  HeaderCompressor,
  HeaderDecompressor,
} from '../../../src/demo/fake-apiserver/streaming/spdy-headers.js';
import { SpdyTestClient } from './spdy-test-client.js';
import {
  rawUpgrade,
  readToClose,
  spdyUpgradeHead,
  startStreamingTestServer,
} from './test-harness.js';

test('the SPDY/3 dictionary is the draft-3 one (size and zlib dictionary id)', () => {
  assert.equal(SPDY3_DICTIONARY.length, 1423);
  // The zlib header of a dictionary-primed stream carries adler32(dictionary) as DICTID;
  // peers compare it with their own, so it must be the well-known SPDY/3 value.
  const zlibStream = deflateSync(Buffer.from('x'), { dictionary: SPDY3_DICTIONARY });
  assert.equal(zlibStream.readUInt32BE(2).toString(16), 'e3c6a7c2');
});

test('the frame parser reassembles frames cut at every byte boundary', () => {
  const frames = Buffer.concat([
    encodeSynStream(1, Buffer.from([1, 2, 3]), FLAG_FIN),
    encodeData(1, Buffer.from('hello')),
    encodePing(7),
    encodeRstStream(3, 5),
    encodeGoAway(3, 0),
    encodeSynReply(2, Buffer.from([9])),
    encodeData(1, Buffer.alloc(0), true),
  ]);
  for (let cut = 0; cut <= frames.length; cut++) {
    const parser = new SpdyFrameParser();
    const parsed = [...parser.push(frames.subarray(0, cut)), ...parser.push(frames.subarray(cut))];
    assert.deepEqual(
      parsed.map((f) => f.kind),
      ['syn_stream', 'data', 'ping', 'rst_stream', 'goaway', 'syn_reply', 'data'],
      `cut at ${cut}`,
    );
  }
  const byteByByte = new SpdyFrameParser();
  const kinds: string[] = [];
  for (const byte of frames) kinds.push(...byteByByte.push(Buffer.of(byte)).map((f) => f.kind));
  assert.equal(kinds.length, 7);
});

test('header blocks round-trip through one zlib context per direction', async () => {
  const compressor = new HeaderCompressor();
  const decompressor = new HeaderDecompressor();
  try {
    for (let i = 0; i < 50; i++) {
      const headers = new Map([
        ['streamtype', [i % 2 === 0 ? 'data' : 'error']],
        ['port', ['8080']],
        ['requestid', [String(i)]],
      ]);
      const block = await compressor.compress(headers);
      // Every block ends at a sync-flush point, so it is decodable on its own arrival.
      assert.deepEqual(block.subarray(-4), Buffer.from([0, 0, 0xff, 0xff]));
      assert.deepEqual(await decompressor.decompress(block), headers);
    }
  } finally {
    compressor.close();
    decompressor.close();
  }
});

test('a header block from another zlib implementation (sync-flushed, dictionary) decodes', async () => {
  const block = encodeHeaderBlock(new Map([['streamtype', ['stdout']]]));
  const compressed = deflateSync(block, {
    dictionary: SPDY3_DICTIONARY,
    finishFlush: constants.Z_SYNC_FLUSH,
  });
  const decompressor = new HeaderDecompressor();
  try {
    assert.deepEqual(
      await decompressor.decompress(compressed),
      new Map([['streamtype', ['stdout']]]),
    );
  } finally {
    decompressor.close();
  }
  assert.deepEqual(
    decodeHeaderBlock(
      inflateSync(compressed, {
        dictionary: SPDY3_DICTIONARY,
        finishFlush: constants.Z_SYNC_FLUSH,
      }),
    )?.headers,
    new Map([['streamtype', ['stdout']]]),
  );
});

test('SPDY exec: streams by streamtype, stdout, Status on the error stream, FIN, GOAWAY', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  const path =
    '/api/v1/namespaces/default/pods/demo/exec?command=sh&command=-c&command=echo+out%3B+echo+err+%3E%262%3B+exit+3&stdout=true&stderr=true';
  const { socket, response, rest } = await rawUpgrade(
    server.port,
    spdyUpgradeHead(path, ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io']),
  );
  assert.match(response, /^HTTP\/1\.1 101 /);
  assert.match(response, /\r\nUpgrade: SPDY\/3\.1\r\n/);
  assert.match(response, /\r\nX-Stream-Protocol-Version: v5\.channel\.k8s\.io/);
  socket.unshift(rest);
  const client = new SpdyTestClient(socket);
  t.after(() => client.close());

  const error = await client.open({ streamtype: 'error' });
  const stdout = await client.open({ streamtype: 'stdout' });
  const stderr = await client.open({ streamtype: 'stderr' });
  await Promise.all([error.whenFinished(), stdout.whenFinished(), stderr.whenFinished()]);
  assert.equal(stdout.received.toString(), 'out\n');
  assert.equal(stderr.received.toString(), 'err\n');
  const status = JSON.parse(error.received.toString()) as Record<string, unknown>;
  assert.equal(status.reason, 'NonZeroExitCode');
  assert.deepEqual(status.details, { causes: [{ reason: 'ExitCode', message: '3' }] });
  await server.until(() => client.goAway !== null, 5_000, 'GOAWAY');
  assert.equal(server.sessions[0]?.transport, 'spdy');
  assert.equal(server.sessions[0]?.endedBy, 'server');
});

/** A streaming test server and a SPDY client on its demo pod's port-forward; both closed after `t`. */
async function portForward(t: TestContext, options?: { readonly splitWrites?: boolean }) {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  const { socket, rest } = await rawUpgrade(
    server.port,
    spdyUpgradeHead('/api/v1/namespaces/default/pods/demo/portforward', ['portforward.k8s.io']),
  );
  socket.unshift(rest);
  const client = new SpdyTestClient(socket, options);
  t.after(() => client.close());
  return { server, client };
}

test('SPDY session: PINGs echoed, client GOAWAY ends the session as the client', async (t) => {
  const { server, client } = await portForward(t, { splitWrites: true });
  client.ping(1);
  client.ping(3);
  await server.until(() => client.pings.length === 2, 5_000, 'PING echoes');
  assert.deepEqual(client.pings, [1, 3]);
  client.sendGoAway();
  await server.until(() => server.sessions[0]?.endedBy === 'client', 5_000, 'client end');
});

test('SPDY port-forward: data echoed both ways, FIN follows FIN, error stream FINed empty', async (t) => {
  const { server, client } = await portForward(t, { splitWrites: true });
  assert.equal(server.sessions[0]?.transport, 'spdy');

  const payload = randomBytes(3 * 1024 * 1024);
  const error = await client.open({ streamtype: 'error', port: '8080', requestid: '0' }, true);
  const data = await client.open({ streamtype: 'data', port: '8080', requestid: '0' });
  for (let offset = 0; offset < payload.length; offset += 32 * 1024) {
    data.write(payload.subarray(offset, offset + 32 * 1024));
  }
  data.end();
  await data.whenFinished(20_000);
  await error.whenFinished();
  assert.ok(data.received.equals(payload), 'echo differs');
  assert.equal(error.received.length, 0);
  assert.equal(server.sessions[0]?.bytesIn, payload.length);
  assert.equal(server.sessions[0]?.bytesOut, payload.length);
});

test('SPDY port-forward: a client RST closes the pod-side connection, the session lives on', async (t) => {
  const { server, client } = await portForward(t);
  const error = await client.open({ streamtype: 'error', port: '80', requestid: '0' }, true);
  const data = await client.open({ streamtype: 'data', port: '80', requestid: '0' });
  data.write('ping');
  await data.whenReceived(4);
  data.resetStream();
  await error.whenFinished();
  const error2 = await client.open({ streamtype: 'error', port: '80', requestid: '1' }, true);
  const data2 = await client.open({ streamtype: 'data', port: '80', requestid: '1' });
  data2.end('again');
  await data2.whenFinished();
  await error2.whenFinished();
  assert.equal(data2.received.toString(), 'again');
  assert.equal(server.sessions[0]?.endedAt, null);
});

test('SPDY upgrade without a supported protocol is refused like the kubelet (403)', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  const { socket, response, rest } = await rawUpgrade(
    server.port,
    spdyUpgradeHead('/api/v1/namespaces/default/pods/demo/exec?command=true&stdout=true', [
      'channel.k8s.io',
    ]),
  );
  assert.match(response, /^HTTP\/1\.1 403 /);
  assert.match(
    await readToClose(socket, rest),
    /^unable to upgrade: unable to negotiate protocol: client supports \[channel\.k8s\.io\], server supports \[v5\.channel\.k8s\.io v4\.channel\.k8s\.io\]/,
  );
  assert.equal(server.sessions.length, 0);
});

test('SPDY stdout backpressure: a reader that stops halts the producer', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  const total = 200 * 1024 * 1024;
  const path = `/api/v1/namespaces/default/pods/demo/exec?command=head&command=-c&command=${total}&command=%2Fdev%2Fzero&stdout=true`;
  const { socket, rest } = await rawUpgrade(
    server.port,
    spdyUpgradeHead(path, ['v4.channel.k8s.io']),
  );
  socket.unshift(rest);
  const client = new SpdyTestClient(socket);
  t.after(() => client.close());
  await client.open({ streamtype: 'error' });
  const stdout = await client.open({ streamtype: 'stdout' });
  stdout.discard = true;
  await stdout.whenReceived(1);
  socket.pause();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const stalledAt = server.sessions[0]?.bytesOut ?? 0;
  await new Promise((resolve) => setTimeout(resolve, 500));
  const session = server.sessions[0];
  assert.ok(session);
  // Only socket buffers (kernel + a frame or two) may sit between producer and reader.
  assert.ok(
    session.bytesOut - stalledAt < 1024 * 1024,
    `producer kept going: ${session.bytesOut - stalledAt}`,
  );
  assert.ok(
    session.bytesOut < 32 * 1024 * 1024,
    `${session.bytesOut} bytes produced for a paused reader`,
  );
  stdout.discard = true;
  socket.resume();
  await server.until(() => server.sessions[0]?.endedAt !== null, 60_000, 'end of 200 MB');
  await stdout.whenFinished(60_000);
  assert.equal(stdout.receivedBytes, total);
});
