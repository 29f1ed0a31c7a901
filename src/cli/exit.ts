/** Exit codes and the one-line failure every command uses. */
import type { ConfigError } from '../errors.js';

export const EXIT_OK = 0;
/** The answer is "no" (check-cert: the certificate would be refused). */
export const EXIT_NO = 1;
/** Bad configuration or arguments. */
export const EXIT_CONFIG = 2;

export function fail(message: string, code = EXIT_CONFIG): never {
  process.stderr.write(`kube-crl-proxy: ${message.trim().replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(code);
}

/** Every configuration problem, one line each, then exit 2. */
export function failWith(errors: readonly ConfigError[]): never {
  for (const err of errors) process.stderr.write(`kube-crl-proxy: ${err.message}\n`);
  process.exit(EXIT_CONFIG);
}
