/**
 * What the kernel says about a process and the cores: CPU time (utime+stime of every thread,
 * from /proc/<pid>/stat), resident memory (VmRSS) and per-core busy time (/proc/stat).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU seconds used so far by the process: all its threads, plus children it has waited for. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may itself contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const field = (n: number) => Number(fields[n - 3]);
  return (field(14) + field(15) + field(16) + field(17)) / TICKS_PER_SECOND;
}

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

interface CoreTimes {
  readonly busy: number;
  readonly total: number;
}

function coreTimes(): CoreTimes[] {
  const cores: CoreTimes[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const match = /^cpu(\d+) (.*)$/.exec(line);
    if (match === null) continue;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = (match[2] ?? '')
      .trim()
      .split(/\s+/)
      .map(Number) as number[];
    const busy =
      (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
    cores[Number(match[1])] = { busy, total: busy + (idle ?? 0) + (iowait ?? 0) };
  }
  return cores;
}

export interface Sample {
  readonly at: number;
  /** CPU seconds of each watched process, by PID. */
  readonly cpu: ReadonlyMap<number, number>;
  readonly cores: readonly CoreTimes[];
}

export function sample(pids: readonly number[]): Sample {
  return {
    at: performance.now(),
    cpu: new Map(pids.map((pid) => [pid, cpuSeconds(pid)])),
    cores: coreTimes(),
  };
}

export interface Window {
  readonly seconds: number;
  /** CPU seconds spent in the window, by PID. */
  readonly cpu: ReadonlyMap<number, number>;
  /** Busy fraction of each core in the window (0..1). */
  readonly coreBusy: readonly number[];
}

export function between(before: Sample, after: Sample): Window {
  const cpu = new Map<number, number>();
  for (const [pid, start] of before.cpu) cpu.set(pid, (after.cpu.get(pid) ?? start) - start);
  const coreBusy = after.cores.map((end, i) => {
    const start = before.cores[i];
    if (start === undefined) return 0;
    const total = end.total - start.total;
    return total > 0 ? (end.busy - start.busy) / total : 0;
  });
  return { seconds: (after.at - before.at) / 1000, cpu, coreBusy };
}
