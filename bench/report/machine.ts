/** The machine a run was made on, as the README and the JSON state it. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import type { Machine } from './results.js';

/** First line of a command's output, stdout and stderr together (nginx -v uses stderr). */
function firstLine(command: string): string {
  try {
    const out = execFileSync('sh', ['-c', `${command} 2>&1`], { encoding: 'utf8' });
    return out.split('\n')[0]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function describeMachine(): Machine {
  const model =
    /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ??
    cpus()[0]?.model ??
    '?';
  return {
    date: new Date().toISOString(),
    nproc: Number(firstLine('nproc')),
    cpuModel: model.trim(),
    kernel: release(),
    node: process.version,
    haproxy: firstLine('haproxy -v').replace(/ - https?:\/\/\S+/, ''),
    nginx: firstLine('nginx -v'),
    openssl: firstLine('openssl version'),
    commit: firstLine('git rev-parse --short HEAD'),
  };
}
