/**
 * exec and attach independent of the wire: what the request asks for, running the emulated
 * process against the session's streams, and the Status the error channel carries at the
 * end. websocket-exec.ts and spdy-exec.ts only move bytes.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, type Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { StreamContext } from '../types.js';
import { attachedMainProcess } from './attach.js';
import { resolveProgram, runProgram } from './commands.js';
import { ExecutableNotFoundError, ProcessKilledError } from './errors.js';
import {
  internalErrorStatus,
  type KubeStatus,
  nonZeroExitStatus,
  successStatus,
} from './kube-status.js';
import { emptyStdin, type ProcessIo, type Program } from './process-io.js';
import { attachLineDiscipline, type TerminalState, TtyOutput } from './tty.js';

export interface CommandRequest {
  readonly command: readonly string[];
  readonly container: string | null;
  readonly stdin: boolean;
  readonly stdout: boolean;
  /** Always false with a TTY: the kubelet drops stderr then (one stream, the terminal). */
  readonly stderr: boolean;
  readonly tty: boolean;
}

/** The wire side of a session, as the transport adapter provides it. */
export interface CommandStreams {
  /** Raw client stdin; ends when the client closes it. */
  readonly stdin: Readable | null;
  /** Ended by the runner once the process has exited and its output is written. */
  readonly stdout: Writable | null;
  readonly stderr: Writable | null;
  readonly terminal: TerminalState | null;
}

export type CommandOutcome =
  | { readonly kind: 'exited'; readonly code: number }
  /** The process never started (the runtime's error text). */
  | { readonly kind: 'failed'; readonly reason: string };

/** Who writes the final Status: the kubelet (SPDY) or the apiserver's translator (WebSocket). */
export type StatusWriter = 'kubelet' | 'apiserver';

/** Exit status of a process killed by SIGINT (Ctrl-C on the terminal). */
const SIGINT_STATUS = 130;

/** strconv.ParseBool's true spellings, which the apiserver's query decoding accepts. */
function isTrue(value: string | null): boolean {
  return value !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value);
}

/** Reads PodExecOptions / PodAttachOptions from the query; a string is a 400 message. */
export function parseCommandRequest(ctx: StreamContext): CommandRequest | string {
  const raw = ctx.request.query;
  const query = new URLSearchParams(raw.startsWith('?') ? raw.slice(1) : raw);
  const tty = isTrue(query.get('tty'));
  const request: CommandRequest = {
    command: query.getAll('command'),
    container: query.get('container'),
    stdin: isTrue(query.get('stdin')),
    stdout: isTrue(query.get('stdout')),
    stderr: isTrue(query.get('stderr')) && !tty,
    tty,
  };
  if (!request.stdin && !request.stdout && !isTrue(query.get('stderr'))) {
    return 'you must specify at least 1 of stdin, stdout, stderr';
  }
  if (ctx.kind === 'exec' && request.command.length === 0) {
    return 'you must specify at least one command for the container';
  }
  return request;
}

export interface RunOptions {
  readonly ctx: StreamContext;
  readonly request: CommandRequest;
  readonly streams: CommandStreams;
  readonly signal: AbortSignal;
  /** How long a TTY session waits for the client's first resize before starting. */
  readonly resizeWaitMs: number;
}

/**
 * Runs the command to completion. Throws ProcessKilledError when `signal` aborts (the
 * session ended without an exit status to report).
 */
export async function runCommand(options: RunOptions): Promise<CommandOutcome> {
  const { ctx, request, streams, signal } = options;
  let program: Program;
  try {
    program =
      ctx.kind === 'attach'
        ? attachedMainProcess(ctx.logs, request.stdin)
        : resolveProgram(request.command[0] as string);
  } catch (error) {
    if (error instanceof ExecutableNotFoundError) {
      return { kind: 'failed', reason: containerdExecNotFound(error.executable) };
    }
    throw error;
  }

  // kubectl sends the terminal size right after the upgrade; a process that finishes
  // before it arrives would close the session under kubectl's feet ("close sent").
  if (streams.terminal) await waitForFirstResize(streams.terminal, options.resizeWaitMs, signal);

  const interrupted = new AbortController();
  const processSignal = AbortSignal.any([signal, interrupted.signal]);
  const outputs = wireOutputs(streams);
  const io: ProcessIo = {
    stdin: wireStdin(streams, outputs.terminal, () => {
      if (!streams.terminal?.interrupt()) interrupted.abort();
    }),
    stdout: outputs.stdout,
    stderr: outputs.stderr,
    signal: processSignal,
    identity: { user: ctx.user, pod: ctx.pod, terminal: streams.terminal },
  };

  let code: number;
  try {
    code = await runProgram(program, request.command.slice(1), io);
  } catch (error) {
    if (!(error instanceof ProcessKilledError) || signal.aborted) throw error;
    code = SIGINT_STATUS;
  } finally {
    io.stdin.destroy();
  }
  await outputs.finish();
  return { kind: 'exited', code };
}

async function waitForFirstResize(terminal: TerminalState, ms: number, signal: AbortSignal) {
  const timer = new AbortController();
  try {
    await Promise.race([
      terminal.firstResize,
      delay(ms, undefined, { signal: AbortSignal.any([signal, timer.signal]) }),
    ]);
  } catch {
    if (signal.aborted) throw new ProcessKilledError();
  } finally {
    timer.abort();
  }
}

interface WiredOutputs {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** The pty's output side, where keystrokes are echoed; null without a TTY. */
  readonly terminal: Writable | null;
  /** Ends the wire streams once everything written reached them. */
  finish(): Promise<void>;
}

function wireOutputs(streams: CommandStreams): WiredOutputs {
  const stdout = streams.stdout ?? discard();
  if (streams.terminal) {
    // One terminal: stdout and stderr both go through the pty's output processing.
    const pty = new TtyOutput();
    pty.pipe(stdout);
    return {
      stdout: pty,
      stderr: pty,
      terminal: pty,
      async finish() {
        pty.end();
        await finished(stdout, { readable: false });
      },
    };
  }
  const stderr = streams.stderr ?? discard();
  return {
    stdout,
    stderr,
    terminal: null,
    async finish() {
      stdout.end();
      stderr.end();
      await Promise.all([
        finished(stdout, { readable: false }),
        finished(stderr, { readable: false }),
      ]);
    },
  };
}

/**
 * The process gets its own pipe: when it stops reading (exits, `head -c`), the wire stream
 * is drained and discarded instead of reset under the client.
 */
function wireStdin(
  streams: CommandStreams,
  terminal: Writable | null,
  interrupt: () => void,
): Readable {
  const source = streams.stdin;
  if (!source) return emptyStdin();
  const pipe = new PassThrough({ highWaterMark: 64 * 1024 });
  if (terminal) attachLineDiscipline(source, pipe, terminal, interrupt);
  else source.pipe(pipe);
  pipe.on('close', () => {
    source.unpipe(pipe);
    source.resume();
  });
  return pipe;
}

function discard(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

/** containerd's error when runc cannot find the executable (exec id is random per exec). */
function containerdExecNotFound(executable: string): string {
  const execId = randomBytes(32).toString('hex');
  return (
    `failed to exec in container: failed to start exec "${execId}": OCI runtime exec failed: ` +
    `exec failed: unable to start container process: exec: "${executable}": ` +
    'executable file not found in $PATH: unknown'
  );
}

/**
 * The Status for the error channel. The kubelet reports containerd's errors directly; on the
 * WebSocket path the apiserver (1.30–1.32 stream translator) re-wraps what its SPDY client
 * decoded, which doubles "Internal error occurred" and rewrites the exit message.
 */
export function statusForOutcome(
  outcome: CommandOutcome,
  writer: StatusWriter,
  command: readonly string[],
): KubeStatus {
  if (outcome.kind === 'exited') {
    if (outcome.code === 0) return successStatus();
    const message =
      writer === 'kubelet'
        ? `error executing command [${command.join(' ')}], exit code ${outcome.code}`
        : `command terminated with exit code ${outcome.code}`;
    return nonZeroExitStatus(outcome.code, message);
  }
  const kubeletError = `error executing command in container: ${outcome.reason}`;
  return internalErrorStatus(
    writer === 'kubelet' ? kubeletError : `Internal error occurred: ${kubeletError}`,
  );
}
