/**
 * Reading input files, with errors that name the flag the file came from; and making the
 * files the proxy writes durable.
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readdirSync,
  readSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { errorMessage, fileErrorMessage, InputError } from '../errors.js';
import { type PemBlock, readBlocks } from './pem.js';

export function readInput(flag: string, file: string): Buffer {
  try {
    return readInChunks(file);
  } catch (err) {
    throw new InputError(flag, file, `cannot read: ${fileErrorMessage(err)}`);
  }
}

/** Largest single read(2): see readInChunks. */
const READ_CHUNK = 1 << 20;

/**
 * The whole file, read 1 MiB per system call. readFileSync asks for the whole file in one
 * read(2), and the kernel does not preempt a thread inside it: a big CRL read by the trust
 * worker kept the proxy's event loop off its core, waiting in the run queue while the nice-19
 * worker ran (bench/README.md#figures-behind-design-choices-in-src). Between chunks the worker is back in user space, where the scheduler can switch.
 */
function readInChunks(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    // One byte more than the size: reading 0 bytes there confirms the end in the same buffer.
    let buffer = Buffer.allocUnsafeSlow(fstatSync(fd).size + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        // The file grew while being read: keep reading, the writer's rename will signal again.
        const bigger = Buffer.allocUnsafeSlow(buffer.length * 2);
        buffer.copy(bigger, 0, 0, length);
        buffer = bigger;
      }
      const n = readSync(fd, buffer, length, Math.min(READ_CHUNK, buffer.length - length), null);
      if (n === 0) return buffer.subarray(0, length);
      length += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The PEM/DER blocks of `file` with one of `labels`; none is an error naming `what`. */
export function readBlocksOf(
  flag: string,
  file: string,
  labels: readonly string[],
  what: string,
): PemBlock[] {
  return blocksIn(flag, file, readInput(flag, file), labels, what);
}

/** readBlocksOf for bytes already read from `file`. */
export function blocksIn(
  flag: string,
  file: string,
  bytes: Buffer,
  labels: readonly string[],
  what: string,
): PemBlock[] {
  let blocks: PemBlock[];
  try {
    blocks = readBlocks(bytes, labels);
  } catch (err) {
    throw new InputError(flag, file, errorMessage(err));
  }
  if (blocks.length === 0) {
    throw new InputError(flag, file, bytes.length === 0 ? 'is empty' : `contains no ${what}`);
  }
  return blocks;
}

/**
 * The files a `--crl-file` names: the file itself, or every regular file of a directory
 * (names starting with "." skipped: Kubernetes Secret/ConfigMap mounts keep their `..data`
 * machinery there; symlinks to files count as files). A path that cannot be read is a failure
 * of its own: the others are listed all the same.
 */
export function expandCrlPaths(
  flag: string,
  paths: readonly string[],
): { readonly files: string[]; readonly failures: InputError[] } {
  const files: string[] = [];
  const failures: InputError[] = [];
  for (const path of paths) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (err) {
      failures.push(new InputError(flag, path, `cannot read: ${fileErrorMessage(err)}`));
      continue;
    }
    if (!isDirectory) {
      files.push(path);
      continue;
    }
    let names: string[];
    try {
      names = readdirSync(path).sort();
    } catch (err) {
      failures.push(new InputError(flag, path, `cannot list directory: ${fileErrorMessage(err)}`));
      continue;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const file = join(path, name);
      try {
        if (statSync(file).isFile()) files.push(file);
      } catch (err) {
        failures.push(new InputError(flag, file, `cannot read: ${fileErrorMessage(err)}`));
      }
    }
  }
  return { files, failures };
}

/** A rename into `dir` is durable only once the directory entry is on disk too. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
