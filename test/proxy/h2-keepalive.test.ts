/**
 * The keep-alive alone, on a short interval: no ping before the client has a server preface (an
 * upstream silent for an interval is reported instead), a ping each interval while the last one
 * was answered, and a client silent for an interval after a ping is reported.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FRAME_HEADER_LENGTH, FrameType } from '../../src/proxy/h2/frames.js';
import { KeepAlive, type KeepAliveHost } from '../../src/proxy/h2/keepalive.js';

type Event = 'upstream silent' | 'client silent' | Buffer;

/** A host that records what the keep-alive asks of it, one event at a time. */
class Host implements KeepAliveHost {
  clientStarted = false;
  private readonly events: Event[] = [];
  private waiting: ((event: Event) => void) | null = null;

  sendPing(frame: Buffer): void {
    this.record(frame);
  }

  upstreamSilent(): void {
    this.record('upstream silent');
  }

  clientSilent(): void {
    this.record('client silent');
  }

  next(): Promise<Event> {
    const event = this.events.shift();
    if (event !== undefined) return Promise.resolve(event);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  private record(event: Event): void {
    const waiting = this.waiting;
    this.waiting = null;
    if (waiting !== null) waiting(event);
    else this.events.push(event);
  }
}

test('pings while answered, and reports whichever peer stays silent', async () => {
  const host = new Host();
  const keepAlive = new KeepAlive(host, 10);
  keepAlive.start();
  // The keep-alive's timer does not hold the process open (unref): this one does meanwhile.
  const open = setInterval(() => {}, 1000);
  try {
    assert.equal(await host.next(), 'upstream silent');
    host.clientStarted = true;
    const ping = await host.next();
    assert.ok(ping instanceof Buffer);
    assert.equal(ping[3], FrameType.Ping);
    assert.equal(ping[4], 0, 'not an ACK');
    const payload = ping.subarray(FRAME_HEADER_LENGTH);
    assert.ok(!keepAlive.answered(Buffer.alloc(8), 0), 'another payload is not the answer');
    const ack = Buffer.concat([Buffer.alloc(3), payload]);
    assert.ok(keepAlive.answered(ack, 3));
    const again = await host.next();
    assert.ok(again instanceof Buffer && again.subarray(FRAME_HEADER_LENGTH).equals(payload));
    assert.equal(await host.next(), 'client silent');
  } finally {
    keepAlive.stop();
    clearInterval(open);
  }
});
