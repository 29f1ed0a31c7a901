/**
 * The HTTP/2 relay's writes alone (src/proxy/h2/writes.ts), on real loopback sockets: what a
 * turn gathered goes out in one write per socket, the end-of-turn callback runs once however
 * often a turn asks for it, nothing goes to an upstream that was let go, and the backpressure
 * rule: a client that is behind stops the reading of both sides.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, test } from 'node:test';
import { RelayWrites } from '../../src/proxy/h2/writes.js';
import { SocketPairs } from '../support/socket-pairs.js';
import { until } from '../support/wait.js';

let sockets: SocketPairs;
const pair = () => sockets.pair();

before(async () => {
  sockets = await SocketPairs.listen();
});

after(() => sockets.close());

test("a turn's output goes out once per socket, after the turn", async () => {
  const client = await pair();
  const upstream = await pair();
  let turns = 0;
  const writes = new RelayWrites(client.local, () => {
    turns++;
    writes.write();
  });
  writes.setUpstream(upstream.local);
  writes.toClient.push(Buffer.from('to '));
  writes.toClient.pass(Buffer.from('the client'), 0, 10);
  writes.toUpstream.push(Buffer.from('to the upstream'));
  writes.schedule();
  writes.schedule();
  assert.equal(turns, 0, 'not before the end of the turn');
  await until(() => client.received().length === 13 && upstream.received().length === 15, 'writes');
  assert.equal(turns, 1);
  assert.equal(client.received().toString(), 'to the client');
  assert.equal(upstream.received().toString(), 'to the upstream');
});

test('nothing is written to an upstream that was let go', async () => {
  const client = await pair();
  const upstream = await pair();
  const writes = new RelayWrites(client.local, () => {});
  writes.setUpstream(upstream.local);
  writes.setUpstream(null);
  writes.toUpstream.push(Buffer.from('lost'));
  writes.toClient.push(Buffer.from('kept'));
  writes.write();
  await until(() => client.received().length === 4, 'the client write');
  writes.toClient.push(Buffer.from('!'));
  writes.write();
  await until(() => client.received().length === 5, 'a second client write');
  assert.equal(upstream.received().length, 0);
});

test('a client that is behind pauses both sides; caught up, both are read again', async () => {
  const client = await pair();
  const upstream = await pair();
  const writes = new RelayWrites(client.local, () => {});
  writes.setUpstream(upstream.local);
  client.local.resume();
  upstream.local.resume();
  writes.updateFlow(true);
  assert.deepEqual([client.local.isPaused(), upstream.local.isPaused()], [true, true]);
  writes.updateFlow(false);
  assert.deepEqual([client.local.isPaused(), upstream.local.isPaused()], [false, false]);
});
