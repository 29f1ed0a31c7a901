/**
 * The emulated container image: a handful of programs written in TypeScript. Nothing is
 * ever spawned — the demo lets anyone holding a certificate exec into the fake pod, so the
 * "container" must not be the host.
 *
 * Programs follow busybox/coreutils output and exit codes closely enough for tests that
 * compare kubectl's output with what a real pod would print.
 */
import { randomFillSync } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { ExecutableNotFoundError, ProcessKilledError } from './errors.js';
import {
  BrokenPipeError,
  type ProcessIo,
  type Program,
  readChunks,
  readLines,
  SIGPIPE_STATUS,
  write,
} from './process-io.js';
import { runShell } from './shell.js';

const CHUNK_SIZE = 64 * 1024;
const ZEROES = Buffer.alloc(CHUNK_SIZE);

/** Where a name without a slash is looked up, like $PATH. */
const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const PROGRAMS: ReadonlyMap<string, Program> = new Map<string, Program>([
  ['echo', echo],
  ['printf', printf],
  ['cat', cat],
  ['head', head],
  ['true', async () => 0],
  ['false', async () => 1],
  ['sleep', sleep],
  ['id', id],
  ['whoami', whoami],
  ['hostname', hostname],
  ['pwd', pwd],
  ['stty', stty],
  ['sh', shell],
  ['ash', shell],
  ['bash', shell],
]);

/**
 * Resolves argv[0] like execve with $PATH: a bare name is searched, an absolute path must be
 * one of the search directories. Throws ExecutableNotFoundError otherwise.
 */
export function resolveProgram(argv0: string): Program {
  const slash = argv0.lastIndexOf('/');
  const name = slash >= 0 ? argv0.slice(slash + 1) : argv0;
  const directory = slash > 0 ? argv0.slice(0, slash) : slash === 0 ? '/' : null;
  const program = PROGRAMS.get(name);
  if (program && (directory === null || SEARCH_PATH.includes(directory))) return program;
  throw new ExecutableNotFoundError(argv0);
}

/** Like resolveProgram but null instead of throwing (the shell prints its own message). */
export function findProgram(name: string): Program | null {
  try {
    return resolveProgram(name);
  } catch {
    return null;
  }
}

/** Runs a program to its exit status; a write to a closed pipe ends it like SIGPIPE would. */
export async function runProgram(program: Program, args: readonly string[], io: ProcessIo) {
  try {
    return await program(args, io);
  } catch (error) {
    if (error instanceof BrokenPipeError && !io.signal.aborted) return SIGPIPE_STATUS;
    if (io.signal.aborted) throw new ProcessKilledError();
    throw error;
  }
}

async function echo(args: readonly string[], io: ProcessIo): Promise<number> {
  let newline = true;
  let escapes = false;
  let index = 0;
  // busybox echo: leading -n/-e/-E option words, anything else is text.
  for (; index < args.length; index++) {
    const arg = args[index] as string;
    if (!/^-[neE]+$/.test(arg)) break;
    for (const flag of arg.slice(1)) {
      if (flag === 'n') newline = false;
      else escapes = flag === 'e';
    }
  }
  let text = args.slice(index).join(' ');
  if (escapes) text = interpretEscapes(text);
  await write(io.stdout, newline ? `${text}\n` : text, io.signal);
  return 0;
}

async function printf(args: readonly string[], io: ProcessIo): Promise<number> {
  const [format, ...values] = args;
  if (format === undefined) {
    await write(io.stderr, 'printf: usage: printf FORMAT [ARGUMENT]...\n', io.signal);
    return 2;
  }
  // The format is reused while arguments remain, as POSIX printf does.
  let output = '';
  let next = 0;
  do {
    const consumedBefore = next;
    output += interpretEscapes(format).replace(/%([%sdc])/g, (_match, conversion: string) => {
      if (conversion === '%') return '%';
      const value = values[next++] ?? '';
      if (conversion === 'd') return String(Number.parseInt(value, 10) || 0);
      if (conversion === 'c') return value.slice(0, 1);
      return value;
    });
    if (next === consumedBefore) break;
  } while (next < values.length);
  await write(io.stdout, output, io.signal);
  return 0;
}

function interpretEscapes(text: string): string {
  const map: Readonly<Record<string, string>> = {
    n: '\n',
    t: '\t',
    r: '\r',
    '\\': '\\',
    a: '\x07',
  };
  return text.replace(/\\([ntr\\a])/g, (_match, c: string) => map[c] ?? c);
}

/** The few files the image has; devices are endless streams. */
type FileSource = 'zero' | 'urandom' | 'null';
const FILES: ReadonlyMap<string, FileSource> = new Map([
  ['/dev/zero', 'zero'],
  ['/dev/urandom', 'urandom'],
  ['/dev/random', 'urandom'],
  ['/dev/null', 'null'],
]);

/** Streams `limit` bytes (Infinity: until killed) from a device, waiting for the reader. */
async function streamDevice(source: FileSource, limit: number, io: ProcessIo): Promise<void> {
  if (source === 'null') return;
  let remaining = limit;
  while (remaining > 0) {
    const size = Math.min(CHUNK_SIZE, remaining);
    // A fresh buffer each time: the previous one may still sit in a write queue.
    const chunk =
      source === 'zero' ? ZEROES.subarray(0, size) : randomFillSync(Buffer.allocUnsafe(size));
    await write(io.stdout, chunk, io.signal);
    remaining -= size;
  }
}

async function cat(args: readonly string[], io: ProcessIo): Promise<number> {
  const files = args.length === 0 ? ['-'] : args;
  let status = 0;
  for (const file of files) {
    if (file === '-') {
      for await (const chunk of readChunks(io.stdin, io.signal)) {
        await write(io.stdout, chunk, io.signal);
      }
      continue;
    }
    const source = FILES.get(file);
    if (source === undefined) {
      await write(io.stderr, `cat: ${file}: No such file or directory\n`, io.signal);
      status = 1;
      continue;
    }
    await streamDevice(source, Number.POSITIVE_INFINITY, io);
  }
  return status;
}

/** GNU-style sizes: 10, 10K (KiB), 10M, 10G, 10kB/10KB (1000s), 10MB, 10GB. */
export function parseSize(text: string): number | null {
  const match = /^(\d+)(|[KMG]|[kKMG]B|[KMG]iB)$/.exec(text);
  if (!match) return null;
  const value = Number(match[1]);
  const unit = match[2] as string;
  const powers: Readonly<Record<string, number>> = { K: 1, M: 2, G: 3 };
  const power = powers[unit.charAt(0).toUpperCase()] ?? 0;
  const base = unit.endsWith('B') && !unit.endsWith('iB') ? 1000 : 1024;
  return value * base ** power;
}

async function head(args: readonly string[], io: ProcessIo): Promise<number> {
  let bytes: number | null = null;
  let lines = 10;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const option = /^(-c|-n|--bytes=|--lines=)(.*)$/.exec(arg);
    if (!option) {
      files.push(arg);
      continue;
    }
    const value = option[2] !== '' ? option[2] : args[++i];
    const parsed = value === undefined ? null : parseSize(value);
    if (parsed === null) {
      await write(io.stderr, `head: invalid number '${value ?? ''}'\n`, io.signal);
      return 1;
    }
    if (option[1] === '-c' || option[1] === '--bytes=') bytes = parsed;
    else lines = parsed;
  }
  const file = files[0] ?? '-';
  if (file !== '-') {
    const source = FILES.get(file);
    if (source === undefined) {
      await write(io.stderr, `head: cannot open '${file}' for reading: No such file\n`, io.signal);
      return 1;
    }
    // Devices have no newlines worth counting: -n on them is treated as bytes.
    await streamDevice(source, bytes ?? lines, io);
    return 0;
  }
  if (bytes !== null) {
    let remaining = bytes;
    for await (const chunk of readChunks(io.stdin, io.signal)) {
      if (remaining <= 0) break;
      const part = chunk.subarray(0, remaining);
      remaining -= part.length;
      await write(io.stdout, part, io.signal);
    }
    return 0;
  }
  let printed = 0;
  for await (const line of readLines(io.stdin, io.signal)) {
    if (printed++ >= lines) break;
    await write(io.stdout, `${line}\n`, io.signal);
  }
  return 0;
}

async function sleep(args: readonly string[], io: ProcessIo): Promise<number> {
  if (args.length === 0) {
    await write(io.stderr, 'sleep: missing operand\n', io.signal);
    return 1;
  }
  let total = 0;
  for (const arg of args) {
    if (arg === 'infinity') total = Number.POSITIVE_INFINITY;
    const match = /^(\d+(?:\.\d*)?|\.\d+)([smhd]?)$/.exec(arg);
    if (arg !== 'infinity' && !match) {
      await write(io.stderr, `sleep: invalid time interval '${arg}'\n`, io.signal);
      return 1;
    }
    if (match) {
      const unit: Readonly<Record<string, number>> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };
      total += Number(match[1]) * (unit[match[2] as string] ?? 1);
    }
  }
  try {
    // Timers cannot exceed ~24.8 days; "infinity" waits in day-long steps until killed.
    while (total > 0) {
      const step = Math.min(total, 86_400);
      await delay(step * 1000, undefined, { signal: io.signal });
      total -= step;
    }
  } catch {
    throw new ProcessKilledError();
  }
  return 0;
}

/**
 * `id` as the request's Kubernetes identity: the user and its groups, numbered from 1000
 * in order so output is stable. -u/-g/-G with -n print names only.
 */
async function id(args: readonly string[], io: ProcessIo): Promise<number> {
  const { username, groups } = io.identity.user;
  const flags = new Set(args.flatMap((arg) => (arg.startsWith('-') ? [...arg.slice(1)] : [])));
  let output: string;
  if (flags.has('u')) output = flags.has('n') ? username : '1000';
  else if (flags.has('g')) output = flags.has('n') ? username : '1000';
  else if (flags.has('G')) {
    output = flags.has('n')
      ? [username, ...groups].join(' ')
      : ['1000', ...groups.map((_g, i) => String(1001 + i))].join(' ');
  } else {
    const groupList = [`1000(${username})`, ...groups.map((g, i) => `${1001 + i}(${g})`)];
    output = `uid=1000(${username}) gid=1000(${username}) groups=${groupList.join(',')}`;
  }
  await write(io.stdout, `${output}\n`, io.signal);
  return 0;
}

async function whoami(_args: readonly string[], io: ProcessIo): Promise<number> {
  await write(io.stdout, `${io.identity.user.username}\n`, io.signal);
  return 0;
}

async function hostname(_args: readonly string[], io: ProcessIo): Promise<number> {
  await write(io.stdout, `${io.identity.pod}\n`, io.signal);
  return 0;
}

async function pwd(_args: readonly string[], io: ProcessIo): Promise<number> {
  await write(io.stdout, '/\n', io.signal);
  return 0;
}

/** Only `stty size`, which shows what the client's resize messages set. */
async function stty(args: readonly string[], io: ProcessIo): Promise<number> {
  const terminal = io.identity.terminal;
  if (!terminal) {
    await write(io.stderr, 'stty: standard input: Not a tty\n', io.signal);
    return 1;
  }
  if (args[0] !== 'size') {
    await write(io.stderr, 'stty: only "stty size" is supported here\n', io.signal);
    return 1;
  }
  const size = terminal.size ?? { width: 0, height: 0 };
  await write(io.stdout, `${size.height} ${size.width}\n`, io.signal);
  return 0;
}

async function shell(args: readonly string[], io: ProcessIo): Promise<number> {
  return runShell(args, io);
}
