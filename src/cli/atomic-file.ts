/**
 * How `kube-crl-proxy crl` replaces a file that a running proxy watches: one writer at a time
 * (a lock file beside it), and a complete new file renamed over the old one, so the proxy never
 * reads half a CRL and a crash never leaves one.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { errorMessage } from '../errors.js';
import { syncDirectory } from '../pki/files.js';

export class FileWriteError extends Error {
  readonly code = 'ERR_FILE_WRITE';
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'FileWriteError';
  }
}

/** Mode of a file created where none was: CRLs are public. */
const NEW_FILE_MODE = 0o644;

/**
 * The path a write to `path` must go to: the file a symbolic link points at (so the link stays a
 * link), or `path` itself when nothing is there yet.
 */
export function writeTarget(path: string): string {
  try {
    return realpathSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return path;
    throw new FileWriteError(path, `cannot resolve: ${errorMessage(err)}`);
  }
}

/**
 * Replaces `path` with `bytes`: a temporary file in the same directory, written, given the old
 * file's mode and owner (or mode 0644), flushed to disk, then renamed over `path` and the
 * directory flushed. The temporary name starts with "." so a proxy reading the directory as its
 * --crl-file skips it, as it skips Secret mounts' `..data`.
 */
export function writeFileAtomically(path: string, bytes: Uint8Array): void {
  const target = writeTarget(path);
  const existing = statOrNull(target);
  if (existing?.isDirectory()) throw new FileWriteError(path, 'is a directory');
  const dir = dirname(target);
  const temporary = join(dir, `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(temporary, 'wx', 0o600);
  } catch (err) {
    throw new FileWriteError(path, `cannot create a file in ${dir}: ${errorMessage(err)}`);
  }
  try {
    try {
      for (let offset = 0; offset < bytes.length; )
        offset += writeSync(fd, bytes, offset, bytes.length - offset);
      keepModeAndOwner(fd, existing, path);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, target);
  } catch (err) {
    removeQuietly(temporary);
    if (err instanceof FileWriteError) throw err;
    throw new FileWriteError(path, `cannot write: ${errorMessage(err)}`);
  }
  syncDirectory(dir);
}

function keepModeAndOwner(fd: number, existing: Stats | null, path: string): void {
  fchmodSync(fd, existing === null ? NEW_FILE_MODE : existing.mode & 0o7777);
  if (existing === null) return;
  const created = fstatSync(fd);
  if (created.uid === existing.uid && created.gid === existing.gid) return;
  try {
    fchownSync(fd, existing.uid, existing.gid);
  } catch (err) {
    throw new FileWriteError(
      path,
      `cannot keep its owner ${existing.uid}:${existing.gid} (${errorMessage(err)}); run as root or as its owner`,
    );
  }
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new FileWriteError(path, `cannot read: ${errorMessage(err)}`);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone, or never made: nothing to clean up.
  }
}

/** How long a writer waits for another one before giving up. */
const LOCK_WAIT_MS = 10_000;
const LOCK_POLL_MS = 50;
/**
 * A lock older than this is left over from a writer that died without removing it (a reboot
 * can give its pid to another process); no write of a CRL takes that long.
 */
const LOCK_STALE_MS = 10 * 60_000;

/**
 * Runs `work` while holding `.<name>.lock` beside the file `path` resolves to. Read-modify-write
 * of a CRL must not interleave: a timer's renew and an operator's revoke reading the same CRL
 * would each write number n+1, and the later rename would drop the other's entries. The lock
 * file names its holder (pid and host); a holder that is gone, or a lock older than 10 minutes,
 * is taken over.
 */
export async function withFileLock<T>(path: string, work: () => T): Promise<T> {
  const target = writeTarget(path);
  const lock = join(dirname(target), `.${basename(target)}.lock`);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    const fd = tryCreate(lock, path);
    if (fd !== null) {
      try {
        writeSync(fd, `${process.pid} ${hostname()}\n`);
      } finally {
        closeSync(fd);
      }
      break;
    }
    const holder = lockHolder(lock);
    if (holder !== null && isStale(holder)) {
      removeQuietly(lock);
      continue;
    }
    if (Date.now() > deadline) {
      throw new FileWriteError(
        path,
        `another writer holds ${lock}${holder === null ? '' : ` (pid ${holder.pid} on ${holder.host})`}; if no kube-crl-proxy crl command is running, remove it`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
  try {
    return work();
  } finally {
    removeQuietly(lock);
  }
}

function tryCreate(lock: string, path: string): number | null {
  try {
    return openSync(lock, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return null;
    if (code === 'ENOENT')
      throw new FileWriteError(path, `directory ${dirname(lock)} does not exist`);
    throw new FileWriteError(path, `cannot create the lock file ${lock}: ${errorMessage(err)}`);
  }
}

interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly since: number;
}

/** Who holds the lock; null when it vanished meanwhile or is being written. */
function lockHolder(lock: string): LockHolder | null {
  try {
    const since = statSync(lock).mtimeMs;
    const [pid, host] = readFileSync(lock, 'utf8').trim().split(' ');
    return { pid: Number(pid), host: host ?? '', since };
  } catch {
    return null;
  }
}

function isStale(holder: LockHolder): boolean {
  if (Date.now() - holder.since > LOCK_STALE_MS) return true;
  if (holder.host !== hostname() || !Number.isInteger(holder.pid) || holder.pid <= 0) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
