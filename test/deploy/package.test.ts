/**
 * The npm package as a user gets it: `npm pack` holds what a user runs (no tests, no bench, no
 * source maps, a LICENSE), and `--version` is this package's version in every install mode —
 * global, local into a project of its own, and `npm exec` — never the host project's.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const VERSION = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: 300_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the npm package', () => {
  let dir: string;
  let tarball: string;
  let files: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcp-pack-'));
    // --ignore-scripts: dist/ is already built by `npm test`; prepack would build it again.
    const packed = await run(
      'npm',
      ['pack', '--json', '--ignore-scripts', '--pack-destination', dir],
      ROOT,
    );
    assert.equal(packed.code, 0, packed.stderr);
    const [report] = JSON.parse(packed.stdout) as {
      filename: string;
      files: { path: string }[];
    }[];
    assert.ok(report !== undefined);
    tarball = join(dir, report.filename);
    files = report.files.map((f) => f.path);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('holds what a user runs: no tests, no bench, no source maps; a LICENSE', () => {
    assert.ok(files.includes('LICENSE'));
    assert.ok(files.includes('bin/kube-crl-proxy'));
    assert.ok(files.includes('dist/src/main.js'));
    assert.ok(files.includes('deploy/systemd/kube-crl-proxy.service'));
    const stray = files.filter(
      (f) => f.endsWith('.map') || f.endsWith('.test.js') || f.startsWith('dist/bench/'),
    );
    assert.deepEqual(stray, []);
    assert.ok(!files.some((f) => f.endsWith('.ts')), 'no TypeScript sources');
  });

  test('--version is this package version when installed globally, locally and run by npm exec', async () => {
    // A host project with a version of its own: what yargs' default would print.
    const host = join(dir, 'host');
    mkdirSync(host);
    writeFileSync(join(host, 'package.json'), '{ "name": "host", "version": "9.9.9" }\n');
    const local = await run('npm', ['install', '--no-audit', '--no-fund', tarball], host);
    assert.equal(local.code, 0, local.stderr);
    const localRun = await run(join(host, 'node_modules/.bin/kube-crl-proxy'), ['--version'], host);
    assert.equal(localRun.stdout.trim(), VERSION, localRun.stderr);

    const exec = await run('npm', ['exec', '--', 'kube-crl-proxy', '--version'], host);
    assert.equal(exec.stdout.trim(), VERSION, exec.stderr);

    const prefix = join(dir, 'global');
    const global = await run(
      'npm',
      ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', tarball],
      host,
    );
    assert.equal(global.code, 0, global.stderr);
    const globalRun = await run(join(prefix, 'bin/kube-crl-proxy'), ['--version'], host);
    assert.equal(globalRun.stdout.trim(), VERSION, globalRun.stderr);
  });
});
