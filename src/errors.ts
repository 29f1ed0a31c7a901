/**
 * The errors that cross module boundaries: what the CLI, the snapshot source and the proxy
 * layers catch and act on. Each carries a stable `code`; callers branch on the type, never on
 * message text.
 *
 * Errors of one parser stay with that parser and are turned into one of these where they leave
 * it, so a parser can be read and tested alone: DerError (pki/der.ts), PemError (pki/pem.ts),
 * CrlError (pki/crl.ts), InvalidStringError and InvalidNameError (pki/names.ts), HpackError
 * (proxy/h2/hpack.ts), FileWriteError (cli/atomic-file.ts). They too carry a stable `code`.
 */

/**
 * Bad configuration: printed as one line naming the flag, exit code 2, before listening.
 * `flag` is the option's name; `label` is how the line names it: the flag as the user typed
 * it, or with the `--config` file it came from.
 */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(
    readonly flag: string,
    readonly problem: string,
    readonly label = `--${flag}`,
  ) {
    super(`${label}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** Every problem of a configuration at once, each a ConfigError (one line each, exit code 2). */
export class ConfigErrors extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(readonly errors: readonly ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'ConfigErrors';
  }
}

/**
 * The inputs that are loaded, checked and kept (or refused) each on its own: a refused input
 * keeps its last good value and holds back no other.
 */
export const INPUTS = [
  'client-ca',
  'crl',
  'serving',
  'proxy-client',
  'upstream-ca',
  'deny',
] as const;
export type InputName = (typeof INPUTS)[number];

const INPUT_OF_FLAG: Readonly<Record<string, InputName>> = {
  'client-ca-file': 'client-ca',
  'crl-file': 'crl',
  'crl-url': 'crl',
  'tls-cert-file': 'serving',
  'tls-private-key-file': 'serving',
  'proxy-client-cert-file': 'proxy-client',
  'proxy-client-key-file': 'proxy-client',
  'upstream-ca-file': 'upstream-ca',
  'deny-file': 'deny',
};

/** A watched input that failed to load; its last good value stays in force. */
export class InputError extends Error {
  readonly code = 'ERR_INPUT';
  constructor(
    readonly flag: string,
    readonly file: string | null,
    readonly problem: string,
  ) {
    super(file === null ? `--${flag}: ${problem}` : `--${flag}: ${file}: ${problem}`);
    this.name = 'InputError';
  }

  /** The input this problem belongs to (the flag that named the file). */
  get input(): InputName {
    return INPUT_OF_FLAG[this.flag] ?? 'crl';
  }

  toConfigError(): ConfigError {
    return new ConfigError(
      this.flag,
      this.file === null ? this.problem : `${this.file}: ${this.problem}`,
    );
  }
}

export type UpstreamErrorKind = 'connect' | 'tls' | 'timeout' | 'reset' | 'protocol';

/** The apiserver could not be reached or broke a connection. */
export class UpstreamError extends Error {
  readonly code = 'ERR_UPSTREAM';
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Why a file could not be read, in a few words for the usual reasons. */
export function fileErrorMessage(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return errorMessage(err);
}

/**
 * An HTTP/1.1 request whose head or body framing is refused: answered with `status` (400, or
 * 431 for a head over the limits) and the connection closed.
 */
export class RequestFramingError extends Error {
  readonly code = 'ERR_REQUEST_FRAMING';
  constructor(
    readonly status: 400 | 431,
    message: string,
  ) {
    super(message);
    this.name = 'RequestFramingError';
  }
}
