/** Runs Debian's promtool with a time limit and collects what it printed. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PROMTOOL_BIN } from './prometheus.js';

export interface PromtoolResult {
  readonly code: number | null;
  readonly output: string;
}

export function promtool(
  args: readonly string[],
  options: { stdin?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<PromtoolResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!existsSync(PROMTOOL_BIN)) {
    return Promise.reject(
      new Error(`${PROMTOOL_BIN} is missing: apt-get install -y prometheus (see .ci/run)`),
    );
  }
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL_BIN, args, {
      cwd: options.cwd,
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (d: Buffer) => {
      output += d.toString();
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`promtool ${args.join(' ')} did not finish within ${timeoutMs} ms: ${output}`),
      );
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  });
}
