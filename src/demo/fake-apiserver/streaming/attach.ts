/**
 * The pod's main process as `kubectl attach` sees it: it prints every line appended to the
 * pod's log from now on (attach shows new output only, never history) and, when the client
 * attached stdin, echoes each stdin line back. Closing stdin ends the attach with success,
 * like a container whose stdin is `stdinOnce`; without stdin it runs until the client
 * detaches.
 */
import type { PodLog } from '../types.js';
import { ProcessKilledError } from './errors.js';
import { type Program, readLines, write } from './process-io.js';

export function attachedMainProcess(logs: PodLog, interactive: boolean): Program {
  return async (_args, io) => {
    // Log lines and echoed input interleave; one chain keeps each line whole and in order.
    let tail: Promise<void> = Promise.resolve();
    let failure: unknown = null;
    const print = (text: string): void => {
      tail = tail
        .then(() => write(io.stdout, text, io.signal))
        .catch((error: unknown) => {
          failure ??= error;
        });
    };
    const unsubscribe = logs.follow((line) => print(`${line}\n`));
    try {
      if (interactive) {
        for await (const line of readLines(io.stdin, io.signal)) print(`${line}\n`);
      } else {
        await new Promise<never>((_resolve, reject) => {
          if (io.signal.aborted) reject(new ProcessKilledError());
          io.signal.addEventListener('abort', () => reject(new ProcessKilledError()), {
            once: true,
          });
        });
      }
      await tail;
      if (failure !== null) throw failure;
      return 0;
    } finally {
      unsubscribe();
    }
  };
}
