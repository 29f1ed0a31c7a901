/**
 * Worker-thread entry: loads TrustData off the main thread, so parsing and verifying a
 * 1M-entry CRL never stalls the serving event loop. The serial buffers are transferred, not
 * copied.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { errorMessage, InputError } from '../errors.js';
import {
  evaluateTrust,
  readTrustFiles,
  type TrustBaseline,
  type TrustData,
  type TrustInputs,
} from './trust.js';

export interface TrustRequest {
  readonly id: number;
  readonly inputs: TrustInputs;
  readonly previous: TrustBaseline | null;
}

/** An InputError as it crosses the thread boundary. */
export interface ProblemData {
  readonly flag: string;
  readonly file: string | null;
  readonly problem: string;
}

export type TrustResponse =
  | {
      readonly id: number;
      readonly ok: true;
      /** null: the inputs are byte for byte those of `previous` (nothing was parsed). */
      readonly load: {
        readonly data: TrustData | null;
        readonly held: readonly number[];
        readonly problems: readonly ProblemData[];
      } | null;
      readonly elapsedMs: number;
    }
  | ({ readonly id: number; readonly ok: false } & ProblemData);

/**
 * Nice 19 for this thread only (Linux: setpriority on the thread id). With the proxy confined
 * to one core, the worker and the event loop take turns in scheduler slices of several ms; at
 * the lowest priority the event loop preempts the worker as soon as it has work (measured in
 * bench/, scenario reload: the worst event-loop delay during a 1M-entry reload). Elsewhere, or
 * without /proc, the worker keeps the process priority.
 */
function yieldToTheEventLoop(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0 && tid !== process.pid) setPriority(tid, 19);
  } catch {
    // not Linux, or not permitted: correctness does not depend on it
  }
}

yieldToTheEventLoop();

parentPort?.on('message', (request: TrustRequest) => {
  parentPort?.postMessage(...answer(request));
  collectGarbage();
});

/** The response to one request, and the buffers it transfers. */
function answer(request: TrustRequest): [TrustResponse, ArrayBuffer[]] {
  const started = performance.now();
  try {
    const { inputs, previous } = request;
    const files = readTrustFiles(inputs);
    if (previous !== null && files.digest === previous.inputDigest) {
      return [{ id: request.id, ok: true, load: null, elapsedMs: performance.now() - started }, []];
    }
    const { data, held, problems } = evaluateTrust(inputs, previous, Date.now(), files);
    const transfer = (data?.issuers ?? []).flatMap((i) => [
      i.set.serials.buffer,
      i.set.revokedAt.buffer,
    ]);
    const response: TrustResponse = {
      id: request.id,
      ok: true,
      load: {
        data,
        held,
        problems: problems.map(({ flag, file, problem }) => ({ flag, file, problem })),
      },
      elapsedMs: performance.now() - started,
    };
    return [response, transfer.filter((b) => b.byteLength > 0) as ArrayBuffer[]];
  } catch (err) {
    const response: TrustResponse =
      err instanceof InputError
        ? { id: request.id, ok: false, flag: err.flag, file: err.file, problem: err.problem }
        : {
            id: request.id,
            ok: false,
            flag: 'crl-file',
            file: null,
            problem: `unexpected error: ${errorMessage(err)}`,
          };
    return [response, []];
  }
}

/**
 * A load leaves its garbage in this thread's heap: the files' bytes, the decoded DER, the
 * parsed entries (tens of MB for a 1M-entry CRL). The thread then waits for the next load and
 * allocates nothing, so V8 would never collect them: the memory would stay taken until the
 * next reload. So the worker collects at once, when the binary's launcher exposes gc
 * (--expose-gc on its #! line); elsewhere (tests, other runtimes) it is left to V8.
 */
function collectGarbage(): void {
  globalThis.gc?.();
}
