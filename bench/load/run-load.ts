/** Runs one measured window of request load and samples /proc around it. */
import { between, sample, type Window } from '../measure/proc.js';
import type { HttpLoadConfig, HttpLoadResult } from './http-load.js';
import { LoadProcess } from './ipc.js';

export interface MeasuredLoad {
  readonly result: HttpLoadResult;
  readonly window: Window;
}

export async function runHttpLoad(
  config: HttpLoadConfig,
  pids: readonly number[],
): Promise<MeasuredLoad> {
  const load = LoadProcess.start<HttpLoadConfig, HttpLoadResult>('./http-load.js', config);
  try {
    await load.ready(60_000);
    const before = sample(pids);
    load.send({ type: 'go' });
    const result = await load.done(config.durationMs + 60_000);
    const after = sample(pids);
    return { result, window: between(before, after) };
  } finally {
    await load.stop();
  }
}
