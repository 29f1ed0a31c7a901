/**
 * A small POSIX-sh subset for `sh -c '...'`, the usual shape of exec commands in tests and
 * scripts: words with '…', "…" and \ quoting, $? $# $0-$9 $@ and a few environment
 * variables, `;` `&&` `||` newlines and `|` pipelines, redirections to /dev/null and between
 * 1 and 2, and the builtins exit, exec, cd, :, export. Messages and statuses follow dash
 * (`sh: 1: foo: not found`, 127). Compound commands (if, for, while, case, subshells,
 * $(…)) are refused with status 2 rather than half-emulated.
 */
import { PassThrough, type Readable, Writable } from 'node:stream';
import { findProgram, runProgram } from './commands.js';
import { ProcessKilledError } from './errors.js';
import { emptyStdin, type ProcessIo, readLines, write } from './process-io.js';

type WordPart = { readonly literal: string } | { readonly parameter: string };
type Word = readonly WordPart[];

interface Redirect {
  readonly fd: number;
  readonly mode: 'out' | 'append' | 'in' | 'dup';
  /** A file name, or for 'dup' the fd to duplicate. */
  readonly target: Word | number;
}

interface Command {
  readonly words: readonly Word[];
  readonly redirects: readonly Redirect[];
  readonly line: number;
}

type Connector = ';' | '&&' | '||';

interface ListItem {
  /** How this pipeline depends on the previous one's status. */
  readonly connector: Connector;
  readonly pipeline: readonly Command[];
}

class ShellSyntaxError extends Error {
  override readonly name: string = 'ShellSyntaxError';
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

/** `exit N` unwinds the whole script. */
class ShellExit {
  constructor(readonly status: number) {}
}

interface ShellState {
  status: number;
  readonly positional: readonly string[];
}

const UNSUPPORTED_KEYWORDS = new Set(['if', 'then', 'for', 'while', 'until', 'case', 'function']);

export async function runShell(args: readonly string[], io: ProcessIo): Promise<number> {
  const first = args[0];
  if (first === '-c') {
    const script = args[1];
    if (script === undefined) {
      await write(io.stderr, 'sh: 0: -c requires an argument\n', io.signal);
      return 2;
    }
    return runScript(script, [args[2] ?? 'sh', ...args.slice(3)], io);
  }
  if (first === undefined || first === '-s' || first === '-i') return runInteractive(io);
  await write(io.stderr, `sh: 0: cannot open ${first}: No such file\n`, io.signal);
  return 2;
}

async function runScript(script: string, positional: string[], io: ProcessIo): Promise<number> {
  const state: ShellState = { status: 0, positional };
  try {
    await runList(parseScript(script), io, state);
  } catch (error) {
    if (error instanceof ShellExit) return error.status;
    if (error instanceof ShellSyntaxError) {
      await write(io.stderr, `sh: ${error.line}: ${error.message}\n`, io.signal);
      return 2;
    }
    throw error;
  }
  return state.status;
}

/**
 * `sh` reading commands from stdin, line by line, with a prompt on a terminal where Ctrl-C
 * interrupts the running command (status 130), not the shell. The commands themselves get
 * an empty stdin: a real shell shares the pipe byte by byte, which is not worth emulating.
 */
async function runInteractive(io: ProcessIo): Promise<number> {
  const state: ShellState = { status: 0, positional: ['sh'] };
  const terminal = io.identity.terminal;
  const prompt = terminal ? '# ' : '';
  const showPrompt = (): Promise<void> =>
    prompt ? write(io.stdout, prompt, io.signal) : Promise.resolve();
  let current: AbortController | null = null;
  const stopInterrupts = terminal?.onInterrupt(() => {
    if (current) current.abort();
    else showPrompt().catch(() => undefined);
  });
  try {
    await showPrompt();
    for await (const line of readLines(io.stdin, io.signal)) {
      current = new AbortController();
      const lineIo: ProcessIo = {
        ...io,
        stdin: emptyStdin(),
        signal: AbortSignal.any([io.signal, current.signal]),
      };
      try {
        await runList(parseScript(line), lineIo, state);
      } catch (error) {
        if (error instanceof ShellExit) return error.status;
        if (error instanceof ProcessKilledError && !io.signal.aborted) {
          state.status = 130;
        } else if (error instanceof ShellSyntaxError) {
          await write(io.stderr, `sh: ${error.line}: ${error.message}\n`, io.signal);
          state.status = 2;
        } else {
          throw error;
        }
      } finally {
        current = null;
      }
      await showPrompt();
    }
    return state.status;
  } finally {
    stopInterrupts?.();
  }
}

async function runList(list: readonly ListItem[], io: ProcessIo, state: ShellState) {
  for (const { connector, pipeline } of list) {
    if (connector === '&&' && state.status !== 0) continue;
    if (connector === '||' && state.status === 0) continue;
    state.status = await runPipeline(pipeline, io, state);
  }
}

async function runPipeline(commands: readonly Command[], io: ProcessIo, state: ShellState) {
  if (commands.length === 1) return runCommand(commands[0] as Command, io, state);
  const last = commands.length - 1;
  const pipes = commands.slice(1).map(() => new PassThrough({ highWaterMark: 64 * 1024 }));
  const statuses = await Promise.all(
    commands.map(async (command, i) => {
      const stdin = i === 0 ? io.stdin : (pipes[i - 1] as PassThrough);
      const stdout = i === last ? io.stdout : (pipes[i] as PassThrough);
      try {
        return await runCommand(command, { ...io, stdin, stdout }, state);
      } catch (error) {
        // `exit` inside a pipeline ends only its own (sub)shell.
        if (error instanceof ShellExit) return error.status;
        throw error;
      } finally {
        if (i < last) (pipes[i] as PassThrough).end();
        // The reader is gone: a writer still blocked on this pipe gets EPIPE.
        if (i > 0) (pipes[i - 1] as PassThrough).destroy();
      }
    }),
  );
  return statuses[last] as number;
}

async function runCommand(command: Command, io: ProcessIo, state: ShellState): Promise<number> {
  const argv = command.words.map((word) => expand(word, state, io));
  const redirected = await applyRedirects(command, io, state);
  if (redirected === null) return 2;
  const name = argv[0];
  if (name === undefined) return 0;
  const args = argv.slice(1);
  if (UNSUPPORTED_KEYWORDS.has(name)) {
    throw new ShellSyntaxError(`"${name}" is not supported by the fake pod's shell`, command.line);
  }
  switch (name) {
    case 'exit': {
      const status = args[0] === undefined ? state.status : Number.parseInt(args[0], 10);
      if (Number.isNaN(status)) {
        await write(
          redirected.stderr,
          `sh: ${command.line}: exit: Illegal number: ${args[0]}\n`,
          io.signal,
        );
        throw new ShellExit(2);
      }
      throw new ShellExit(status & 0xff);
    }
    case ':':
    case 'export':
    case 'unset':
      return 0;
    case 'cd':
      return 0;
    case 'exec': {
      if (args.length === 0) return 0;
      throw new ShellExit(await runExternal(args, command.line, redirected));
    }
    default:
      return runExternal(argv, command.line, redirected);
  }
}

async function runExternal(argv: readonly string[], line: number, io: ProcessIo) {
  const name = argv[0] as string;
  const program = findProgram(name);
  if (!program) {
    await write(io.stderr, `sh: ${line}: ${name}: not found\n`, io.signal);
    return 127;
  }
  return runProgram(program, argv.slice(1), io);
}

/** Applies redirections left to right, like dup2; null (status 2) when a file is refused. */
async function applyRedirects(
  command: Command,
  io: ProcessIo,
  state: ShellState,
): Promise<ProcessIo | null> {
  const fds = new Map<number, Writable>([
    [1, io.stdout],
    [2, io.stderr],
  ]);
  let stdin: Readable = io.stdin;
  for (const redirect of command.redirects) {
    if (redirect.mode === 'dup') {
      const source = fds.get(redirect.target as number);
      if (!source) {
        await write(
          io.stderr,
          `sh: ${command.line}: ${redirect.target}: Bad file descriptor\n`,
          io.signal,
        );
        return null;
      }
      fds.set(redirect.fd, source);
      continue;
    }
    const file = expand(redirect.target as Word, state, io);
    if (redirect.mode === 'in') {
      if (file === '/dev/null') {
        stdin = emptyStdin();
        continue;
      }
      await write(io.stderr, `sh: ${command.line}: cannot open ${file}: No such file\n`, io.signal);
      return null;
    }
    if (file !== '/dev/null') {
      await write(
        io.stderr,
        `sh: ${command.line}: cannot create ${file}: Read-only file system\n`,
        io.signal,
      );
      return null;
    }
    fds.set(redirect.fd, nullSink());
  }
  return { ...io, stdin, stdout: fds.get(1) as Writable, stderr: fds.get(2) as Writable };
}

function nullSink(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

function expand(word: Word, state: ShellState, io: ProcessIo): string {
  return word
    .map((part) => ('literal' in part ? part.literal : parameter(part.parameter, state, io)))
    .join('');
}

function parameter(name: string, state: ShellState, io: ProcessIo): string {
  const args = state.positional.slice(1);
  switch (name) {
    case '?':
      return String(state.status);
    case '#':
      return String(args.length);
    case '@':
    case '*':
      return args.join(' ');
    case '$':
      return '1';
    case 'HOME':
      return '/root';
    case 'PATH':
      return '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
    case 'HOSTNAME':
      return io.identity.pod;
    case 'USER':
      return io.identity.user.username;
    default:
      return /^\d$/.test(name) ? (state.positional[Number(name)] ?? '') : '';
  }
}

/** Tokenises and parses a script into a list of pipelines. */
function parseScript(script: string): ListItem[] {
  const list: ListItem[] = [];
  let connector: Connector = ';';
  let pipeline: Command[] = [];
  let words: Word[] = [];
  let redirects: Redirect[] = [];
  let line = 1;
  let i = 0;

  const endCommand = (): boolean => {
    if (words.length === 0 && redirects.length === 0) return false;
    pipeline.push({ words, redirects, line });
    words = [];
    redirects = [];
    return true;
  };
  /** True while `&&`/`||` waits for its right-hand side. */
  const awaitingOperand = (): boolean =>
    pipeline.length === 0 && words.length === 0 && redirects.length === 0 && connector !== ';';
  const endPipeline = (next: Connector): void => {
    endCommand();
    if (pipeline.length > 0) list.push({ connector, pipeline });
    else if (connector !== ';' || next !== ';') {
      throw new ShellSyntaxError(`Syntax error: "${next}" unexpected`, line);
    }
    pipeline = [];
    connector = next;
  };

  while (i < script.length) {
    const c = script[i] as string;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '\n' && awaitingOperand()) {
      // `a &&` may continue on the next line.
      line++;
      i++;
    } else if (c === '\n' || c === ';') {
      endPipeline(';');
      if (c === '\n') line++;
      i++;
    } else if (c === '#') {
      while (i < script.length && script[i] !== '\n') i++;
    } else if (script.startsWith('&&', i) || script.startsWith('||', i)) {
      const operator = script.slice(i, i + 2) as Connector;
      if (pipeline.length === 0 && words.length === 0) {
        throw new ShellSyntaxError(`Syntax error: "${operator}" unexpected`, line);
      }
      endPipeline(operator);
      i += 2;
    } else if (c === '|') {
      if (!endCommand()) throw new ShellSyntaxError('Syntax error: "|" unexpected', line);
      i++;
    } else if (c === '>' || c === '<') {
      i = parseRedirect(script, i, 1, redirects, line);
    } else if ('&()`{}'.includes(c)) {
      throw new ShellSyntaxError(`"${c}" is not supported by the fake pod's shell`, line);
    } else {
      const { word, end } = parseWord(script, i, line);
      const only = word.length === 1 ? word[0] : undefined;
      const fd = only !== undefined && 'literal' in only ? only.literal : '';
      if (/^\d$/.test(fd) && (script[end] === '>' || script[end] === '<')) {
        i = parseRedirect(script, end, Number(fd), redirects, line);
      } else {
        words.push(word);
        i = end;
      }
    }
  }
  if (awaitingOperand()) throw new ShellSyntaxError('Syntax error: end of file unexpected', line);
  endPipeline(';');
  return list;
}

function parseRedirect(
  script: string,
  start: number,
  fd: number,
  redirects: Redirect[],
  line: number,
): number {
  let i = start;
  const input = script[i] === '<';
  i++;
  let mode: Redirect['mode'] = input ? 'in' : 'out';
  if (!input && script[i] === '>') {
    mode = 'append';
    i++;
  }
  if (script[i] === '&') {
    const match = /^&(\d)/.exec(script.slice(i));
    if (!match) throw new ShellSyntaxError('Syntax error: bad fd number', line);
    redirects.push({ fd: input ? 0 : fd, mode: 'dup', target: Number(match[1]) });
    return i + 2;
  }
  while (script[i] === ' ' || script[i] === '\t') i++;
  if (i >= script.length || ';&|\n<>'.includes(script[i] as string)) {
    throw new ShellSyntaxError('Syntax error: redirection without a file', line);
  }
  const { word, end } = parseWord(script, i, line);
  redirects.push({ fd: input ? 0 : fd, mode, target: word });
  return end;
}

function parseWord(script: string, start: number, line: number): { word: WordPart[]; end: number } {
  const parts: WordPart[] = [];
  let literal = '';
  const flush = (): void => {
    if (literal) parts.push({ literal });
    literal = '';
  };
  const parseParameter = (at: number): number => {
    const rest = script.slice(at + 1);
    const braced = /^\{([A-Za-z_][A-Za-z0-9_]*|[?#@*$\d])\}/.exec(rest);
    const plain = /^([A-Za-z_][A-Za-z0-9_]*|[?#@*$\d])/.exec(rest);
    const match = braced ?? plain;
    if (!match) {
      if (rest.startsWith('('))
        throw new ShellSyntaxError('"$(" is not supported by the fake pod\'s shell', line);
      literal += '$';
      return at + 1;
    }
    flush();
    parts.push({ parameter: match[1] as string });
    return at + 1 + match[0].length;
  };

  let i = start;
  while (i < script.length) {
    const c = script[i] as string;
    if (' \t\n;&|<>()'.includes(c)) break;
    if (c === "'") {
      const close = script.indexOf("'", i + 1);
      if (close < 0) throw new ShellSyntaxError('Syntax error: Unterminated quoted string', line);
      literal += script.slice(i + 1, close);
      if (close === i + 1) parts.push({ literal: '' });
      i = close + 1;
    } else if (c === '"') {
      i++;
      const emptyAt = parts.length;
      while (i < script.length && script[i] !== '"') {
        const d = script[i] as string;
        if (d === '\\' && '$`"\\\n'.includes(script[i + 1] ?? '')) {
          literal += script[i + 1];
          i += 2;
        } else if (d === '$') {
          i = parseParameter(i);
        } else if (d === '`') {
          throw new ShellSyntaxError('"`" is not supported by the fake pod\'s shell', line);
        } else {
          literal += d;
          i++;
        }
      }
      if (i >= script.length)
        throw new ShellSyntaxError('Syntax error: Unterminated quoted string', line);
      if (literal === '' && parts.length === emptyAt) parts.push({ literal: '' });
      i++;
    } else if (c === '\\') {
      if (script[i + 1] !== '\n') literal += script[i + 1] ?? '';
      i += 2;
    } else if (c === '$') {
      i = parseParameter(i);
    } else if (c === '`') {
      throw new ShellSyntaxError('"`" is not supported by the fake pod\'s shell', line);
    } else {
      literal += c;
      i++;
    }
  }
  flush();
  return { word: parts, end: i };
}
