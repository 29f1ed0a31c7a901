/**
 * Core placement: the proxy under test gets core 0 to itself; the suite, the load generators
 * and the upstreams run on core 1 (they inherit the runner's affinity).
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';

export const PROXY_CORE = 0;
export const LOAD_CORE = 1;

/** Pins every thread of `pid` (not only the main one) to `core`. */
export function pinProcess(pid: number, core: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}

/** The command line that starts `command` pinned to `core` (taskset execs, so the PID stays). */
export function pinnedCommand(
  cores: number | string,
  command: string,
  args: string[],
): [string, string[]] {
  return ['taskset', ['-c', String(cores), command, ...args]];
}

export function pinSelfToLoadCore(): void {
  if (cpus().length < 2) {
    throw new Error('the benchmark needs 2 cores: the proxy on one, the load on the other');
  }
  pinProcess(process.pid, LOAD_CORE);
}

export function readAffinity(pid: number): number[] {
  const out = execFileSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8' });
  const list = out.slice(out.lastIndexOf(':') + 1).trim();
  const cores: number[] = [];
  for (const part of list.split(',')) {
    const [from, to] = part.split('-').map(Number);
    if (from === undefined || Number.isNaN(from)) continue;
    for (let c = from; c <= (to ?? from); c++) cores.push(c);
  }
  return cores;
}
