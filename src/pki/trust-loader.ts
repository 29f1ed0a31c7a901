/**
 * Main-thread side of the trust worker: one long-lived worker thread, one load at a time (the
 * trust inputs, or the deny file).
 */
import { Worker } from 'node:worker_threads';
import { InputError } from '../errors.js';
import type { DenyData } from './deny-list.js';
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
    const request = { kind: 'trust', inputs, previous: previous && baselineOf(previous) } as const;
    return this.ask('crl-file', request, (response) => {
      if (!('load' in response)) throw new Error('unexpected answer to a trust load');
      const { load, elapsedMs } = response;
      if (load !== null) {
        return {
          data: withHeldRevocations(load, previous),
          problems: load.problems.map((p) => new InputError(p.flag, p.file, p.problem)),
          elapsedMs,
          unchanged: false,
        };
      }
      if (previous === null)
        throw new InputError('crl-file', null, 'trust loader answered without data');
      const data = { ...previous, warnings: warningsAt(previous, Date.now()) };
      return { data, problems: [], elapsedMs, unchanged: true };
    });
  }

  /**
   * Reads and checks the deny file in the worker: `previous` when its bytes are unchanged.
   * Rejects with the InputError that refuses it.
   */
  loadDeny(file: string, previous: DenyData | null): Promise<DenyData> {
    const previousDigest = previous?.file === file ? previous.digest : null;
    return this.ask('deny-file', { kind: 'deny', file, previousDigest }, (response) => {
      if (!('deny' in response)) throw new Error('unexpected answer to a deny load');
      if (response.deny !== null) return response.deny;
      if (previous === null)
        throw new InputError('deny-file', file, 'deny loader answered without data');
      return previous;
    });
  }

  /** One request to the worker, after those before it; an InputError for what it refuses. */
  private ask<T>(
    flag: string,
    request: DistributiveOmit<TrustRequest, 'id'>,
    answer: (response: Extract<TrustResponse, { ok: true }>) => T,
  ): Promise<T> {
    const run = this.queue.then(() => this.run(flag, { ...request, id: this.nextId++ }, answer));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private run<T>(
    flag: string,
    request: TrustRequest,
    answer: (response: Extract<TrustResponse, { ok: true }>) => T,
  ): Promise<T> {
    const worker = this.ensureWorker();
    // Keep the process alive while a load is pending (the worker is otherwise unref'd).
    worker.ref();
    return new Promise((resolve, reject) => {
      const onMessage = (response: TrustResponse) => {
        if (response.id !== request.id) return;
        cleanup();
        if (!response.ok) {
          reject(new InputError(response.flag, response.file, response.problem));
          return;
        }
        try {
          resolve(answer(response));
        } catch (err) {
          reject(err);
        }
      };
      const onError = (err: Error) => {
        cleanup();
        this.worker = null;
        reject(new InputError(flag, null, `trust loader failed: ${err.message}`));
      };
      const cleanup = () => {
        worker.unref();
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
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

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
