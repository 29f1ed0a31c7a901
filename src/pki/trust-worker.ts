/**
 * Worker-thread entry: loads TrustData off the main thread, so parsing and verifying a
 * 1M-entry CRL never stalls the serving event loop. The serial buffers are transferred, not
 * copied. The deny file is parsed here too: YAML parsing is slow per entry (bench/README.md#figures-behind-design-choices-in-src).
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { errorMessage, InputError } from '../errors.js';
import { type DenyData, parseDenyEntries, readDenyBytes } from './deny-list.js';
import {
  evaluateTrust,
  readTrustFiles,
  type TrustBaseline,
  type TrustData,
  type TrustInputs,
} from './trust.js';

export type TrustRequest =
  | {
      readonly id: number;
      readonly kind: 'trust';
      readonly inputs: TrustInputs;
      readonly previous: TrustBaseline | null;
    }
  | {
      readonly id: number;
      readonly kind: 'deny';
      readonly file: string;
      /** DenyData.digest of the list in force: the same bytes are answered `unchanged`. */
      readonly previousDigest: string | null;
    };

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
  | {
      readonly id: number;
      readonly ok: true;
      /** null: the file is byte for byte the list in force. */
      readonly deny: DenyData | null;
    }
  | ({ readonly id: number; readonly ok: false } & ProblemData);

/**
 * Nice 19 for this thread only (Linux: setpriority on the thread id). With the proxy confined
 * to one core, the worker and the event loop take turns in scheduler slices; at the lowest
 * priority the event loop preempts the worker as soon as it has work (the worst event-loop
 * delay during a 1M-entry reload: bench/README.md#figures-behind-design-choices-in-src). Elsewhere, or
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
  try {
    if (request.kind === 'deny') loadDeny(request);
    else loadTrust(request);
  } catch (err) {
    const response: TrustResponse =
      err instanceof InputError
        ? { id: request.id, ok: false, flag: err.flag, file: err.file, problem: err.problem }
        : {
            id: request.id,
            ok: false,
            flag: request.kind === 'deny' ? 'deny-file' : 'crl-file',
            file: null,
            problem: `unexpected error: ${errorMessage(err)}`,
          };
    parentPort?.postMessage(response);
  }
  collectGarbage();
});

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

function loadDeny(request: Extract<TrustRequest, { kind: 'deny' }>): void {
  const { file, previousDigest } = request;
  const { bytes, digest } = readDenyBytes(file);
  const deny =
    digest === previousDigest ? null : { file, digest, entries: parseDenyEntries(file, bytes) };
  const response: TrustResponse = { id: request.id, ok: true, deny };
  parentPort?.postMessage(response);
}

function loadTrust(request: Extract<TrustRequest, { kind: 'trust' }>): void {
  const started = performance.now();
  const { inputs, previous } = request;
  const files = readTrustFiles(inputs);
  if (previous !== null && files.digest === previous.inputDigest) {
    const response: TrustResponse = {
      id: request.id,
      ok: true,
      load: null,
      elapsedMs: performance.now() - started,
    };
    parentPort?.postMessage(response);
    return;
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
  parentPort?.postMessage(response, transfer.filter((b) => b.byteLength > 0) as ArrayBuffer[]);
}
