/**
 * The HTTP/1.1 connection deadline alone (src/proxy/h1/deadline.ts), on real timers with short
 * timeouts: it passes with the kind it was set to, a later deadline moves it, a deadline of
 * None or stop() keeps it from passing. Nothing here asserts how long anything took.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionDeadline, Deadline, type DeadlineHost } from '../../src/proxy/h1/deadline.js';
import { until } from '../support/wait.js';

/** A host that records the deadlines that passed. */
class Host implements DeadlineHost {
  readonly passed: Deadline[] = [];

  deadlinePassed(kind: Deadline): void {
    this.passed.push(kind);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a head deadline, and an idle one, pass with their kind', async () => {
  const host = new Host();
  const deadline = new ConnectionDeadline(host, { httpHeaderTimeoutMs: 20, httpIdleTimeoutMs: 40 });
  deadline.set(Deadline.Head);
  assert.equal(deadline.kind, Deadline.Head);
  await until(() => host.passed.length === 1, 'the head deadline');
  assert.deepEqual(host.passed, [Deadline.Head]);
  deadline.set(Deadline.Idle);
  await until(() => host.passed.length === 2, 'the idle deadline');
  assert.deepEqual(host.passed, [Deadline.Head, Deadline.Idle]);
});

test('the deadline set last is the one that passes, once', async () => {
  const host = new Host();
  const deadline = new ConnectionDeadline(host, { httpHeaderTimeoutMs: 20, httpIdleTimeoutMs: 60 });
  // The idle deadline is later than the timer the head deadline set: the timer fires, is moved.
  deadline.set(Deadline.Head);
  deadline.set(Deadline.Idle);
  await until(() => host.passed.length > 0, 'the idle deadline');
  await sleep(100);
  assert.deepEqual(host.passed, [Deadline.Idle]);
});

test('under None, or stopped, no deadline passes', async () => {
  const host = new Host();
  const limits = { httpHeaderTimeoutMs: 20, httpIdleTimeoutMs: 20 };
  const none = new ConnectionDeadline(host, limits);
  none.set(Deadline.Head);
  none.set(Deadline.None);
  const stopped = new ConnectionDeadline(host, limits);
  stopped.set(Deadline.Idle);
  stopped.stop();
  assert.equal(stopped.kind, Deadline.None);
  await sleep(100);
  assert.deepEqual(host.passed, []);
});
