/**
 * Work deferred to the end of this turn of the event loop, after every read of the turn. The
 * relay writes what a turn's reads produced in one write per socket: a TLS write completes
 * asynchronously, and a second write before it does would be queued and written again by
 * Node's stream machinery.
 */

let queued: Array<() => void> = [];
let scheduled = false;

function runQueued(): void {
  scheduled = false;
  const tasks = queued;
  queued = [];
  for (const task of tasks) task();
}

/** Runs `task` once the I/O callbacks of this turn have run (setImmediate), with the others. */
export function atEndOfTurn(task: () => void): void {
  queued.push(task);
  if (!scheduled) {
    scheduled = true;
    setImmediate(runQueued);
  }
}
