/** The deployment files under deploy/ and what their tests read from them. */
import { fileURLToPath } from 'node:url';

const repoFile = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));

export const MANIFEST = repoFile('deploy/kubernetes/kube-crl-proxy.yaml');
export const UNIT = repoFile('deploy/systemd/kube-crl-proxy.service');
export const RENEW_UNIT = repoFile('deploy/systemd/kube-crl-proxy-crl-renew.service');
export const RENEW_TIMER = repoFile('deploy/systemd/kube-crl-proxy-crl-renew.timer');
export const RENEW_CRONJOB = repoFile('deploy/kubernetes/crl-renew-cronjob.yaml');
export const EXAMPLE_CONFIG = repoFile('deploy/kube-crl-proxy.example.yaml');
export const GUIDE = repoFile('docs/kubeadm.md');
export const KUBEADM_PATCHES = repoFile('deploy/kubeadm/patches');
export const FIXTURES = repoFile('test/deploy/fixtures');
export const REPO_BIN = repoFile('bin/kube-crl-proxy');

/** `--name=value` or `--name` → name: the flags a piece of deployment uses. */
export function flagNames(args: readonly string[]): string[] {
  return args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0] as string);
}
