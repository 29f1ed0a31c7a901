/** Exit codes and the one-line failure every command uses. */

export const EXIT_OK = 0;
/** The answer is "no" (check-cert: the certificate would be refused). */
export const EXIT_NO = 1;
/** Bad configuration or arguments. */
export const EXIT_CONFIG = 2;

export function fail(message: string, code = EXIT_CONFIG): never {
  process.stderr.write(`kube-crl-proxy: ${message.trim().replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(code);
}
