/**
 * What an emulated process sees: stdin/stdout/stderr streams, the session's abort signal
 * and the identity it runs as. The helpers here are the only way programs write, so every
 * program respects backpressure: a write resolves once the stream has room again.
 */
import { Readable, type Writable } from 'node:stream';
import type { UserInfo } from '../types.js';
import { ProcessKilledError } from './errors.js';

export interface TerminalSize {
  readonly width: number;
  readonly height: number;
}

/** The terminal of a TTY session. */
export interface Terminal {
  /** The latest size, as the client's resize messages set it. */
  readonly size: TerminalSize | null;
  /**
   * Ctrl-C: a program that handles it (an interactive shell interrupting its current
   * command) subscribes here; with no subscriber the whole process is killed.
   */
  onInterrupt(listener: () => void): () => void;
}

export interface ProcessIo {
  /** Ends when the client closes stdin; already ended when the session has no stdin. */
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Aborted when the session ends (client gone, fake closing): the process is killed. */
  readonly signal: AbortSignal;
  readonly identity: ProcessIdentity;
}

export interface ProcessIdentity {
  /** The Kubernetes user the exec request arrived as; `id`/`whoami` print it. */
  readonly user: UserInfo;
  readonly pod: string;
  readonly terminal: Terminal | null;
}

/** A program's main: resolves with its exit status. */
export type Program = (args: readonly string[], io: ProcessIo) => Promise<number>;

/** Writing to a pipe whose reader is gone (a pipeline stage that exited): EPIPE. */
export class BrokenPipeError extends Error {
  override readonly name: string = 'BrokenPipeError';
  constructor() {
    super('write to a closed pipe');
  }
}

/** Exit status of a process killed by SIGPIPE, as a shell reports it. */
export const SIGPIPE_STATUS = 141;

export function emptyStdin(): Readable {
  return Readable.from([]);
}

/** Writes and waits for room: the program never runs ahead of its reader. */
export async function write(
  stream: Writable,
  data: Buffer | string,
  signal: AbortSignal,
): Promise<void> {
  if (signal.aborted) throw new ProcessKilledError();
  if (stream.destroyed || stream.writableEnded) throw new BrokenPipeError();
  if (stream.write(data)) return;
  await drained(stream, signal);
}

function drained(stream: Writable, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onClose = (): void => {
      cleanup();
      reject(signal.aborted ? new ProcessKilledError() : new BrokenPipeError());
    };
    const onAbort = (): void => {
      cleanup();
      reject(new ProcessKilledError());
    };
    stream.on('drain', onDrain);
    stream.on('close', onClose);
    signal.addEventListener('abort', onAbort);
  });
}

/** Iterates stdin chunks; stops (without throwing) when the stream is destroyed. */
export async function* readChunks(stdin: Readable, signal: AbortSignal): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stdin) {
      if (signal.aborted) throw new ProcessKilledError();
      yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    }
  } catch (error) {
    if (signal.aborted) throw new ProcessKilledError();
    if ((error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw error;
  }
}

/** Iterates stdin lines (without the newline); a last line without newline is yielded too. */
export async function* readLines(stdin: Readable, signal: AbortSignal): AsyncGenerator<string> {
  let pending = '';
  for await (const chunk of readChunks(stdin, signal)) {
    pending += chunk.toString('utf8');
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      yield pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
    }
  }
  if (pending.length > 0) yield pending;
}
