/**
 * What the inspection commands (check-cert, inspect-crl, crl list) share: `--at`, `--output`,
 * reading the proxy's own `--config` file and CRL files, and how times are printed.
 */
import { parseRfc3339 } from '../config/config.js';
import { readConfigFile } from '../config/sources.js';
import { errorMessage, InputError } from '../errors.js';
import { type ParsedCrl, parseCrl } from '../pki/crl.js';
import { readBlocksOf } from '../pki/files.js';
import type { PemBlock } from '../pki/pem.js';
import { fail, failWith } from './exit.js';

export type OutputFormat = 'text' | 'json';

/** The --help group of the inspection commands' own flags. */
export const INSPECTION_GROUP = 'Inspection:';

export const OUTPUT_OPTION = {
  alias: 'o',
  choices: ['text', 'json'],
  default: 'text',
  group: INSPECTION_GROUP,
  describe: 'text for people, json for scripts (stable fields, see docs/cli.md)',
} as const;

export const AT_OPTION = {
  type: 'string',
  group: INSPECTION_GROUP,
  describe: 'check as of this time instead of now (RFC 3339, e.g. 2027-01-01T00:00:00Z)',
} as const;

/** `--at` as ms since the epoch; now when absent. Bad input exits 2. */
export function parseAt(value: string | undefined): number {
  if (value === undefined) return Date.now();
  const ms = parseRfc3339(value);
  if (ms === null) fail(`--at: "${value}" is not an RFC 3339 time (e.g. 2027-01-01T00:00:00Z)`);
  return ms;
}

/**
 * The keys of a proxy `--config` file that a command uses; the file's other keys are the
 * proxy's and are ignored here (unknown keys are still refused, as the proxy refuses them).
 */
export function configFileKeys(path: string, keys: readonly string[]): Record<string, unknown> {
  const file = readConfigFile(path);
  if (file.problems.length > 0) failWith(file.problems);
  return Object.fromEntries(Object.entries(file.values).filter(([key]) => keys.includes(key)));
}

/** Every CRL of a file, as the proxy reads them; unreadable ones exit 2 naming the file. */
export function readCrls(file: string): ParsedCrl[] {
  let blocks: PemBlock[];
  try {
    blocks = readBlocksOf('crl-file', file, ['X509 CRL'], 'CRL (PEM "X509 CRL" block or DER)');
  } catch (err) {
    if (err instanceof InputError) fail(`${file}: ${err.problem}`);
    throw err;
  }
  return blocks.map((block, index) => parseCrlOf(file, index, block.der));
}

function parseCrlOf(file: string, index: number, der: Buffer): ParsedCrl {
  try {
    return parseCrl(der);
  } catch (err) {
    fail(`${file}: CRL #${index + 1}: invalid CRL: ${errorMessage(err)}`);
  }
}
