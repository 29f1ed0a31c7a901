/**
 * Runs the real `bin/kube-crl-proxy` as a child process, as an operator would, and reads its
 * JSON log lines (addresses, rejections, reloads).
 */
import { type ChildProcess, type ChildProcessByStdio, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { delimiter, dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../../bin/kube-crl-proxy', import.meta.url));

/** How node is started: environment variables and node flags. */
export interface Launcher {
  readonly env: Readonly<Record<string, string>>;
  readonly nodeFlags: readonly string[];
}

/**
 * The binary's `#!/usr/bin/env -S [NAME=value …] node [--flag …]` line: the environment and the
 * node flags every launcher applies, for callers that must start node themselves (the bench
 * pins it with taskset).
 */
export function binLauncher(bin = BIN): Launcher {
  const shebang = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  const match = /^#!\/usr\/bin\/env -S ((?:\w+=\S* )*)node((?: --[\w=-]+)*)$/.exec(shebang);
  if (match === null) throw new Error(`${bin}: unexpected first line ${JSON.stringify(shebang)}`);
  const env = Object.fromEntries(
    (match[1] ?? '')
      .split(' ')
      .filter(Boolean)
      .map((assignment) => [
        assignment.slice(0, assignment.indexOf('=')),
        assignment.slice(assignment.indexOf('=') + 1),
      ]),
  );
  return { env, nodeFlags: (match[2] ?? '').split(' ').filter(Boolean) };
}

/** PATH with the directory of the node that runs the tests first: the binary's `#!` finds it. */
export const PATH_WITH_TEST_NODE = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;

/**
 * Runs the binary as an operator's shell would (its own `#!` line and flags), on the node that
 * runs the tests.
 */
export function spawnBin(
  args: string[],
  env: Readonly<Record<string, string>> = {},
): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: PATH_WITH_TEST_NODE, ...env },
  });
}

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export interface ProxyProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly adminPort: number;
  readonly url: string;
  readonly adminUrl: string;
  readonly logs: LogLine[];
  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ExitResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the binary to completion (for --help, bad configuration, subcommands). */
export function runBin(args: string[], timeoutMs = 30_000): Promise<ExitResult> {
  return new Promise((resolve, reject) => {
    const child = spawnBin(args);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `kube-crl-proxy ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface FollowedLog {
  /** The JSON lines so far (a line that is not JSON as level `raw`). */
  readonly logs: LogLine[];
  /** Resolves with the first line (already seen or future) matching `pred`. */
  waitForLog(pred: (l: LogLine) => boolean, waitMs?: number): Promise<LogLine>;
  /** stderr so far. */
  stderr(): string;
}

/** Reads the proxy's log: JSON lines on stdout. */
export function followLog(child: ChildProcess): FollowedLog {
  const logs: LogLine[] = [];
  const waiters = new Set<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let stderr = '';
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { level: 'raw', msg: text };
      }
      logs.push(line);
      for (const w of [...waiters]) {
        if (w.pred(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d;
  });
  const waitForLog = (pred: (l: LogLine) => boolean, waitMs = 10_000): Promise<LogLine> => {
    const seen = logs.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { pred, resolve };
      waiters.add(waiter);
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(
          new Error(
            `no matching proxy log line within ${waitMs} ms; stderr: ${stderr}\nlogs: ${logs.map((l) => JSON.stringify(l)).join('\n')}`,
          ),
        );
      }, waitMs);
      const done = waiter.resolve;
      waiter.resolve = (l) => {
        clearTimeout(timer);
        done(l);
      };
    });
  };
  return { logs, waitForLog, stderr: () => stderr };
}

/** Starts the binary and waits until it serves; `env` is added to the test's environment. */
export async function startProxyProcess(
  args: string[],
  timeoutMs = 30_000,
  env: Readonly<Record<string, string>> = {},
): Promise<ProxyProcess> {
  const child = spawnBin(args, env);
  const { logs, waitForLog, stderr } = followLog(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const ready = await Promise.race([
    waitForLog((l) => l.msg === 'kube-crl-proxy serving', timeoutMs),
    exited.then((code) => {
      throw new Error(`kube-crl-proxy exited with ${code} before serving: ${stderr()}`);
    }),
  ]);
  const listen = ready.listen as { port: number };
  const metrics = ready.metricsListen as { port: number };
  return {
    child,
    port: listen.port,
    adminPort: metrics.port,
    url: `https://127.0.0.1:${listen.port}`,
    adminUrl: `http://127.0.0.1:${metrics.port}`,
    logs,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The value of one series (`name{labels}` exactly as exported) on the proxy's /metrics. */
export async function scrapeMetric(
  proxy: ProxyProcess,
  series: string,
  absent = 0,
): Promise<number> {
  const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(`${series} `));
  return found === undefined ? absent : Number(found.slice(series.length + 1));
}
