/**
 * Reading input files, with errors that name the flag the file came from.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage, InputError } from '../errors.js';
import { type PemBlock, readBlocks } from './pem.js';

export function readInput(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new InputError(flag, file, `cannot read: ${describeFsError(err)}`);
  }
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return errorMessage(err);
}

/** The PEM/DER blocks of `file` with one of `labels`; none is an error naming `what`. */
export function readBlocksOf(
  flag: string,
  file: string,
  labels: readonly string[],
  what: string,
): PemBlock[] {
  const bytes = readInput(flag, file);
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
 * machinery there; symlinks to files count as files).
 */
export function expandCrlPaths(flag: string, paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const path of paths) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (err) {
      throw new InputError(flag, path, `cannot read: ${describeFsError(err)}`);
    }
    if (!isDirectory) {
      files.push(path);
      continue;
    }
    let names: string[];
    try {
      names = readdirSync(path).sort();
    } catch (err) {
      throw new InputError(flag, path, `cannot list directory: ${describeFsError(err)}`);
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const file = join(path, name);
      try {
        if (statSync(file).isFile()) files.push(file);
      } catch (err) {
        throw new InputError(flag, file, `cannot read: ${describeFsError(err)}`);
      }
    }
  }
  return files;
}
