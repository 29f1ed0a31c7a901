/**
 * Tells when an input file may have changed: chokidar on the directory of every input (so
 * editors' write-then-rename and Kubernetes Secret/ConfigMap mounts, whose `..data` symlink
 * is swapped, are seen like writes in place), debounced so a burst of writes is one signal
 * that comes after its last write, plus a slow periodic poll in case the filesystem drops
 * events.
 *
 * Whether anything really changed is decided by `fingerprintInputs`: the resolved path, inode,
 * size and mtime of every input file and the listing of every CRL directory.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * 'event': the filesystem reported a change (always worth a load: file timestamps are coarse,
 * so two writes in one clock tick can leave size and mtime alike). 'poll': the periodic check,
 * worth a load only if the fingerprint changed.
 */
export type WatchSignal = 'event' | 'poll';

export interface InputWatcherOptions {
  /** Input files and CRL directories. */
  readonly paths: readonly string[];
  readonly onSignal: (signal: WatchSignal) => void;
  readonly log: Logger;
  /** Quiet time after the last event before signalling. */
  readonly debounceMs?: number;
  /** A burst of events signals at the latest this long after its first event. */
  readonly maxDelayMs?: number;
  readonly pollMs?: number;
}

export class InputWatcher {
  private watcher: FSWatcher | null = null;
  private quietTimer: NodeJS.Timeout | null = null;
  private burstTimer: NodeJS.Timeout | null = null;
  private readonly poll: NodeJS.Timeout;

  constructor(private readonly options: InputWatcherOptions) {
    this.poll = setInterval(() => options.onSignal('poll'), options.pollMs ?? 10_000);
    this.poll.unref();
  }

  /** Resolves once the watches are in place. */
  async start(): Promise<void> {
    const directories = new Set<string>();
    const files = new Set<string>();
    const inputDirectories = new Set<string>();
    for (const path of this.options.paths.map((p) => resolve(p))) {
      directories.add(dirname(path));
      if (isDirectory(path)) {
        directories.add(path);
        inputDirectories.add(path);
      } else {
        files.add(path);
      }
    }
    // Only changes that can touch an input count: the input files, files of a CRL directory,
    // and the `..data` symlink a Kubernetes Secret/ConfigMap mount swaps atomically.
    const relevant = (path: string) => {
      const full = resolve(path);
      return (
        files.has(full) ||
        inputDirectories.has(dirname(full)) ||
        inputDirectories.has(full) ||
        basename(full) === '..data'
      );
    };
    const watcher = watch([...directories], {
      ignoreInitial: true,
      depth: 0,
      followSymlinks: false,
      atomic: false,
      ignorePermissionErrors: true,
    });
    this.watcher = watcher;
    // Raw fs.watch events, not chokidar's 'change': chokidar drops a change that follows
    // another within 50 ms or leaves the mtime alike (coarse timestamps), and the last write of
    // a burst is the one that must win. Our own debounce does the de-duplication.
    watcher.on('raw', (_event, path, details) => {
      const watched = (details as { watchedPath?: string }).watchedPath ?? path;
      // fs.watch may leave the file unnamed: then anything watched may have changed.
      if (watched === null || path === null) this.onEvent();
      else if (relevant(watched) || relevant(join(watched, path))) this.onEvent();
    });
    watcher.on('all', (_event, path) => {
      if (relevant(path)) this.onEvent();
    });
    watcher.on('error', (err) =>
      this.options.log.warn({ err: errorMessage(err) }, 'file watcher error; polling continues'),
    );
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  }

  private onEvent(): void {
    const { debounceMs = 25, maxDelayMs = 250 } = this.options;
    if (this.quietTimer !== null) clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => this.fire(), debounceMs);
    if (this.burstTimer === null) this.burstTimer = setTimeout(() => this.fire(), maxDelayMs);
  }

  private fire(): void {
    if (this.quietTimer !== null) clearTimeout(this.quietTimer);
    if (this.burstTimer !== null) clearTimeout(this.burstTimer);
    this.quietTimer = null;
    this.burstTimer = null;
    this.options.onSignal('event');
  }

  async close(): Promise<void> {
    clearInterval(this.poll);
    if (this.quietTimer !== null) clearTimeout(this.quietTimer);
    if (this.burstTimer !== null) clearTimeout(this.burstTimer);
    await this.watcher?.close();
    this.watcher = null;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Identity of the inputs' current state, cheap to compute (stat calls only). It catches what
 * the filesystem failed to report; it cannot tell apart two writes within one timestamp tick,
 * which is why filesystem events always load.
 */
export function fingerprintInputs(paths: readonly string[]): string {
  const parts: string[] = [];
  for (const path of paths) {
    if (isDirectory(path)) {
      let names: string[] = [];
      try {
        names = readdirSync(path)
          .filter((n) => !n.startsWith('.'))
          .sort();
      } catch (err) {
        parts.push(`${path}!${errorMessage(err)}`);
      }
      for (const name of names) parts.push(fileIdentity(join(path, name)));
    } else {
      parts.push(fileIdentity(path));
    }
  }
  return parts.join('\n');
}

function fileIdentity(path: string): string {
  try {
    const stat = statSync(path);
    return `${path}>${realpathSync(path)}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
  } catch (err) {
    return `${path}!${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`;
  }
}
