/** The Debian tools the suite runs; a missing one stops the run with the line that installs it. */
import { execFileSync } from 'node:child_process';

export const INSTALL_LINE =
  'apt-get update && apt-get install -y haproxy nginx-light openssl util-linux procps';

const TOOLS = ['haproxy', 'nginx', 'openssl', 'taskset'] as const;

export function checkTools(): void {
  const missing = TOOLS.filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(`missing: ${missing.join(', ')}. Install them with:\n  ${INSTALL_LINE}`);
  }
}
