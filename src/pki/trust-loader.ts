/**
 * Main-thread side of the trust worker: one long-lived worker thread, one load at a time.
 */
import { Worker } from 'node:worker_threads';
import { InputError } from '../errors.js';
import {
  baselineOf,
  type TrustData,
  type TrustInputs,
  warningsAt,
  withHeldRevocations,
} from './trust.js';
import type { TrustRequest, TrustResponse } from './trust-worker.js';

export interface LoadedTrust {
  /**
   * The trust data to put in force: what could be used of the inputs, with the revocations in
   * force kept for the CAs whose CRL input was refused. null only for a first load with no
   * usable CA bundle.
   */
  readonly data: TrustData | null;
  /** Every input refused by this load (empty when `unchanged`). */
  readonly problems: readonly InputError[];
  readonly elapsedMs: number;
  /** The inputs were byte for byte those of `previous`, which is returned (warnings as of now). */
  readonly unchanged: boolean;
}

export class TrustLoader {
  private worker: Worker | null = null;
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();

  /** Loads in the worker (evaluateTrust); rejects only when the worker itself fails. */
  load(inputs: TrustInputs, previous: TrustData | null): Promise<LoadedTrust> {
    const run = this.queue.then(() => this.run(inputs, previous));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private run(inputs: TrustInputs, previous: TrustData | null): Promise<LoadedTrust> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    // Keep the process alive while a load is pending (the worker is otherwise unref'd).
    worker.ref();
    return new Promise((resolve, reject) => {
      const onMessage = (response: TrustResponse) => {
        if (response.id !== id) return;
        cleanup();
        const elapsedMs = response.ok ? response.elapsedMs : 0;
        if (!response.ok) {
          reject(new InputError(response.flag, response.file, response.problem));
        } else if (response.load !== null) {
          const { load } = response;
          resolve({
            data: withHeldRevocations(load, previous),
            problems: load.problems.map((p) => new InputError(p.flag, p.file, p.problem)),
            elapsedMs,
            unchanged: false,
          });
        } else if (previous !== null) {
          const data = { ...previous, warnings: warningsAt(previous, Date.now()) };
          resolve({ data, problems: [], elapsedMs, unchanged: true });
        } else {
          reject(new InputError('crl-file', null, 'trust loader answered without data'));
        }
      };
      const onError = (err: Error) => {
        cleanup();
        this.worker = null;
        reject(new InputError('crl-file', null, `trust loader failed: ${err.message}`));
      };
      const cleanup = () => {
        worker.unref();
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      const request: TrustRequest = {
        id,
        inputs,
        previous: previous === null ? null : baselineOf(previous),
      };
      worker.postMessage(request);
    });
  }

  private ensureWorker(): Worker {
    if (this.worker === null) {
      this.worker = new Worker(new URL('./trust-worker.js', import.meta.url));
      this.worker.unref();
    }
    return this.worker;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker !== null) await worker.terminate();
  }
}
