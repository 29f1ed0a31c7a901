/**
 * Full mTLS handshakes with `openssl s_time -new` (every connection a new session, client
 * certificate presented), handshake only or with one HTTP/1.0 request (`-www`).
 */
import { spawn } from 'node:child_process';
import { between, sample, type Window } from '../measure/proc.js';
import { trackChild } from '../support/processes.js';
import type { ClientIdentity } from './tls-client.js';
import { LOAD_HOST } from './tls-client.js';

export interface STimeResult {
  readonly connections: number;
  readonly seconds: number;
  readonly window: Window;
  /** User CPU seconds of openssl itself (the generator), as s_time reports them. */
  readonly generatorCpuSeconds: number;
}

export async function runSTime(
  identity: ClientIdentity,
  seconds: number,
  wwwPath: string | null,
  pids: readonly number[],
): Promise<STimeResult> {
  const args = [
    's_time',
    '-connect',
    `${LOAD_HOST}:${identity.port}`,
    '-new',
    '-time',
    String(seconds),
    '-cert',
    identity.certFile,
    '-key',
    identity.keyFile,
    '-CAfile',
    identity.caFile,
  ];
  if (wwwPath !== null) args.push('-www', wwwPath);
  const before = sample(pids);
  const child = trackChild(spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d;
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d;
  });
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const after = sample(pids);
  const window = between(before, after);
  // "N connections in Us; ..." where U is openssl's own user CPU time.
  const match = /(\d+) connections in ([\d.]+)s;/.exec(out);
  if (match === null || child.exitCode !== 0)
    throw new Error(`openssl s_time failed (${child.exitCode}): ${out}`);
  return {
    connections: Number(match[1]),
    seconds: window.seconds,
    window,
    generatorCpuSeconds: Number(match[2]),
  };
}
