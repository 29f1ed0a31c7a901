/**
 * Which kube-crl-proxy is measured: the working tree's build (bin/kube-crl-proxy, after
 * `npm run build`), or — with --proxy-rev — a git revision built into a temp dir, so a
 * before/after comparison (issue 7) or a run during someone else's half-done refactor
 * measures exactly the code it names.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trackDir } from './processes.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface ProxyBuild {
  /** The script to run with node. */
  readonly bin: string;
  /** "working tree" or the revision and its commit, and the node it runs on. */
  readonly label: string;
  /** The node binary kube-crl-proxy and node-tls-pipe run on (--proxy-node; default this one). */
  readonly node: string;
}

/** `node` and its version, e.g. "node v26.10.0". */
export function nodeLabel(node: string): string {
  return `node ${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()}`;
}

export function workingTreeBuild(node = process.execPath): ProxyBuild {
  const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  }).trim();
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  }).trim();
  return {
    bin: join(REPO_ROOT, 'bin', 'kube-crl-proxy'),
    label: `working tree at ${head}${dirty === '' ? '' : ' + uncommitted changes in src/'}, ${nodeLabel(node)}`,
    node,
  };
}

export function buildRevision(rev: string, node = process.execPath): ProxyBuild {
  const commit = execFileSync('git', ['rev-parse', '--short', `${rev}^{commit}`], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  }).trim();
  const dir = trackDir(mkdtempSync(join(tmpdir(), `kcp-bench-build-${commit}-`)));
  // Everything tsconfig.json compiles that the revision has (older ones lack scripts/); test/bench
  // imports bench/.
  const paths = ['src', 'test', 'bench', 'bin', 'scripts', 'tsconfig.json', 'package.json'].filter(
    (path) => existsAt(commit, path),
  );
  execFileSync('sh', ['-c', `git archive ${commit} ${paths.join(' ')} | tar -x -C ${dir}`], {
    cwd: REPO_ROOT,
  });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(dir, 'tsconfig.json')], {
    cwd: dir,
    stdio: 'inherit',
  });
  return {
    bin: join(dir, 'bin', 'kube-crl-proxy'),
    label: `${rev} (${commit}), ${nodeLabel(node)}`,
    node,
  };
}

function existsAt(commit: string, path: string): boolean {
  try {
    execFileSync('git', ['cat-file', '-e', `${commit}:${path}`], {
      cwd: REPO_ROOT,
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}
