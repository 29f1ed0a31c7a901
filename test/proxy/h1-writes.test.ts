/**
 * The HTTP/1.1 splice's writes alone (src/proxy/h1/writes.ts), on real loopback sockets: what
 * a read gathered goes out in one write, nothing goes to an upstream that was let go, and the
 * backpressure rule: the client is paused while the upstream is full or too much is read
 * ahead, the upstream while the client is full, and a closing client is read whatever the flow.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, test } from 'node:test';
import { HIGH_WATER_MARK } from '../../src/proxy/backpressure.js';
import { MAX_READ_AHEAD, SpliceWrites } from '../../src/proxy/h1/writes.js';
import { SocketPairs } from '../support/socket-pairs.js';
import { until } from '../support/wait.js';

let sockets: SocketPairs;
const pair = () => sockets.pair();

before(async () => {
  sockets = await SocketPairs.listen();
});

after(() => sockets.close());

test('what a read gathered goes out in one write; nothing to an upstream let go', async () => {
  const client = await pair();
  const upstream = await pair();
  const writes = new SpliceWrites(client.local);
  writes.setUpstream(upstream.local);
  const read = Buffer.from('GET / HTTP/1.1\r\n\r\nbody');
  writes.toUpstream.push(Buffer.from('head\r\n'));
  writes.toUpstream.pass(read, 18, 22);
  writes.toClient.pass(read, 0, 4);
  let upstreamWrites = 0;
  const write = upstream.local.write.bind(upstream.local);
  upstream.local.write = ((chunk: Buffer) => {
    upstreamWrites++;
    return write(chunk);
  }) as typeof upstream.local.write;
  writes.writeToUpstream();
  writes.writeToClient();
  await until(
    () => upstream.received().length === 10 && client.received().length === 4,
    'the writes',
  );
  assert.equal(upstreamWrites, 1);
  assert.equal(upstream.received().toString(), 'head\r\nbody');
  assert.equal(client.received().toString(), 'GET ');

  writes.setUpstream(null);
  writes.toUpstream.push(Buffer.from('lost'));
  writes.writeToUpstream();
  assert.equal(upstreamWrites, 1);
  assert.equal(writes.toUpstream.empty, true);
});

test('backpressure: each side is read only while what reading it produces can be written', async () => {
  const client = await pair();
  const upstream = await pair();
  const writes = new SpliceWrites(client.local);
  writes.setUpstream(upstream.local);
  client.local.resume();
  upstream.local.resume();

  writes.updateFlow(MAX_READ_AHEAD);
  assert.equal(client.local.isPaused(), true, 'too much read ahead');
  writes.updateFlow(0);
  assert.equal(client.local.isPaused(), false);

  // The upstream's peer stops reading: the upstream fills, and the client is paused.
  upstream.remote.pause();
  const big = Buffer.alloc(HIGH_WATER_MARK);
  while (upstream.local.writableLength < HIGH_WATER_MARK) upstream.local.write(big);
  writes.updateFlow(0);
  assert.equal(client.local.isPaused(), true, 'upstream full');
  assert.equal(upstream.local.isPaused(), false);
  // A closing client is read to its end all the same.
  writes.readClientToEnd();
  assert.equal(client.local.isPaused(), false);

  // The client's peer stops reading: the client fills, and the upstream is paused.
  client.remote.pause();
  while (client.local.writableLength < HIGH_WATER_MARK) client.local.write(big);
  writes.setUpstream(null);
  const other = await pair();
  other.local.resume();
  writes.setUpstream(other.local);
  writes.updateFlow(0);
  assert.equal(other.local.isPaused(), true, 'client full');
  client.remote.resume();
  await until(() => client.local.writableLength < HIGH_WATER_MARK, 'the client drained');
  writes.updateFlow(0);
  assert.equal(other.local.isPaused(), false);
});
