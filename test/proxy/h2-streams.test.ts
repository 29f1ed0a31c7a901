/**
 * The relay's stream table alone: which streams are idle, what it remembers of closed streams
 * (who handled them, so that late frames go to the right peer) and of streams it ended at the
 * client itself, and that both memories stay bounded.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EndedAtClient, Stream, StreamTable } from '../../src/proxy/h2/streams.js';

function forwarded(table: StreamTable, id: number): Stream {
  const stream = new Stream(id, 65_535, 65_535);
  table.clientOpened(id);
  table.forward(stream);
  return stream;
}

describe('idle streams (RFC 9113 5.1.1)', () => {
  test('odd ids above the last the client opened, even ids above the last promised', () => {
    const table = new StreamTable();
    assert.ok(table.isIdle(1));
    table.clientOpened(5);
    assert.ok(!table.isIdle(1), 'skipped ids are closed, not idle');
    assert.ok(!table.isIdle(5));
    assert.ok(table.isIdle(7));
    assert.ok(table.isIdle(2));
    table.promised(4);
    table.promised(2);
    assert.ok(!table.isIdle(4), 'the highest promise counts');
    assert.ok(table.isIdle(6));
    assert.equal(table.lastOpenedByClient, 5);
  });
});

describe('closed streams', () => {
  test('a forwarded stream is remembered as the upstream’s, a refused one as the relay’s', () => {
    const table = new StreamTable();
    const stream = forwarded(table, 1);
    assert.equal(table.get(1), stream);
    assert.ok(table.close(stream));
    assert.ok(!table.close(stream), 'closing twice is a no-op');
    assert.equal(table.get(1), undefined);
    table.clientOpened(3);
    table.keptFromUpstream(3);
    assert.equal(table.handlerOfClosed(1), 'upstream');
    assert.equal(table.handlerOfClosed(3), 'relay');
    assert.equal(table.handlerOfClosed(5), 'forgotten');
    assert.ok(table.closedWentUpstream(1));
    assert.ok(!table.closedWentUpstream(3));
  });

  test('past 128 closes the oldest is forgotten: ids up to the last forwarded go upstream', () => {
    const table = new StreamTable();
    forwarded(table, 1);
    table.close(table.get(1) as Stream);
    table.clientOpened(3);
    table.keptFromUpstream(3);
    for (let id = 5; id < 5 + 2 * 128; id += 2) {
      table.clientOpened(id);
      table.keptFromUpstream(id);
    }
    assert.equal(table.handlerOfClosed(1), 'forgotten');
    assert.equal(table.handlerOfClosed(3), 'forgotten');
    assert.ok(table.closedWentUpstream(1), 'at or below the last forwarded stream');
    assert.ok(!table.closedWentUpstream(3), 'above it');
    assert.ok(table.closedWentUpstream(2), 'even: promised by the upstream');
  });

  test('closeIfEnded closes only a stream both sides ended', () => {
    const table = new StreamTable();
    const stream = forwarded(table, 1);
    stream.clientEnded = true;
    table.closeIfEnded(stream);
    assert.equal(table.size, 1);
    stream.upstreamEnded = true;
    table.closeIfEnded(stream);
    assert.equal(table.size, 0);
  });

  test('takeAll empties the table without remembering the streams as closed', () => {
    const table = new StreamTable();
    forwarded(table, 1);
    forwarded(table, 3);
    assert.deepEqual(
      table.takeAll().map((s) => s.id),
      [1, 3],
    );
    assert.equal(table.size, 0);
    assert.equal(table.handlerOfClosed(1), 'forgotten');
  });

  test('list is a copy: streams may be closed while going through it', () => {
    const table = new StreamTable();
    for (const id of [1, 3, 5]) forwarded(table, id);
    for (const stream of table.list()) table.close(stream);
    assert.equal(table.size, 0);
  });
});

describe('streams the relay ended at the client', () => {
  test('how each was ended is kept until the upstream is done with it', () => {
    const table = new StreamTable();
    assert.equal(table.howEndedAtClient(1), undefined);
    table.endAtClient(1, EndedAtClient.EndStream);
    table.endAtClient(3, EndedAtClient.Reset);
    assert.equal(table.howEndedAtClient(1), EndedAtClient.EndStream);
    assert.equal(table.howEndedAtClient(3), EndedAtClient.Reset);
    assert.ok(table.upstreamDoneWith(1));
    assert.ok(!table.upstreamDoneWith(1));
    assert.equal(table.howEndedAtClient(1), undefined);
  });

  test('at most 128 are kept, the oldest forgotten first', () => {
    const table = new StreamTable();
    for (let id = 1; id <= 2 * 129; id += 2) table.endAtClient(id, EndedAtClient.Reset);
    assert.equal(table.howEndedAtClient(1), undefined);
    assert.equal(table.howEndedAtClient(3), EndedAtClient.Reset);
    assert.equal(table.howEndedAtClient(257), EndedAtClient.Reset);
  });
});
