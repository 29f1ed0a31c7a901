/**
 * deploy/systemd/kube-crl-proxy.service: `systemd-analyze verify` accepts it without a word,
 * and it agrees with the proxy's flags and the example configuration.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { RUN_OPTIONS } from '../../src/config/options.js';
import { binNodeFlags } from '../support/proxy-process.js';
import { EXAMPLE_CONFIG, flagNames, REPO_BIN, UNIT } from './deploy-files.js';

const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const INSTALLED_BIN = '/opt/kube-crl-proxy/bin/kube-crl-proxy';

/** Values of `Key=` lines of the unit (a key may repeat). */
function directives(key: string): string[] {
  return readFileSync(UNIT, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));
}

function execStartArgs(): string[] {
  const [execStart] = directives('ExecStart');
  assert.ok(execStart !== undefined, 'ExecStart');
  return execStart.split(/\s+/);
}

function verify(unitPath: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      SYSTEMD_ANALYZE,
      ['verify', '--man=no', '--generators=no', unitPath],
      { timeout: 60_000 },
      (err, _stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stderr });
      },
    );
  });
}

describe('systemd unit', () => {
  test('systemd-analyze verify: no error, no warning', async (t) => {
    if (!existsSync(SYSTEMD_ANALYZE)) {
      // Debian's systemd package brings it; verify works without systemd as PID 1.
      t.skip(`${SYSTEMD_ANALYZE} is not installed (apt-get install systemd)`);
      return;
    }
    // verify insists that ExecStart's program exists: point it at this checkout's binary.
    const dir = mkdtempSync(join(tmpdir(), 'kcp-unit-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const unit = join(dir, 'kube-crl-proxy.service');
    const text = readFileSync(UNIT, 'utf8');
    assert.ok(text.includes(`ExecStart=${INSTALLED_BIN} `));
    writeFileSync(unit, text.replace(`ExecStart=${INSTALLED_BIN} `, `ExecStart=${REPO_BIN} `));
    const clean = await verify(unit);
    assert.equal(clean.stderr, '');
    assert.equal(clean.code, 0);

    // The check is not vacuous: a misspelt directive is reported.
    writeFileSync(unit, text.replace('ProtectHome=yes', 'ProtectHom=yes'));
    assert.match((await verify(unit)).stderr, /Unknown key 'ProtectHom'/);
  });

  test('hardening: own user, read-only PKI, no capabilities, restart on failure', () => {
    const one = (key: string) => directives(key).join(' ');
    assert.equal(one('DynamicUser'), 'yes');
    assert.equal(one('User'), 'kube-crl-proxy');
    assert.equal(one('ProtectSystem'), 'strict');
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('PrivateTmp'), 'yes');
    assert.equal(one('CapabilityBoundingSet'), '');
    assert.equal(one('Restart'), 'on-failure');
    assert.match(one('ReadOnlyPaths'), /\/etc\/kubernetes\/pki/);
  });

  test('the binary runs on the node installed beside it, with its own runtime flags', () => {
    const path = directives('Environment').find((e) => e.startsWith('PATH='));
    assert.equal(path?.split('=')[1]?.split(':')[0], dirname(INSTALLED_BIN));
    assert.equal(execStartArgs()[0], INSTALLED_BIN);
    assert.ok(!directives('Environment').some((e) => e.startsWith('NODE_OPTIONS=')));
    assert.deepEqual(binNodeFlags(), ['--v8-pool-size=1', '--max-semi-space-size=2']);
  });

  test('every flag exists; keys come from the credentials it loads; readiness polls metrics-listen', () => {
    const args = execStartArgs();
    assert.equal(args[0], INSTALLED_BIN);
    const known = new Set([...Object.keys(RUN_OPTIONS), 'config']);
    for (const name of flagNames(args)) assert.ok(known.has(name), `--${name} is a flag`);
    const credentials = new Set(directives('LoadCredential').map((c) => c.split(':')[0]));
    for (const arg of args.filter((a) => a.includes('=%d/'))) {
      assert.ok(credentials.has(arg.split('=%d/')[1]), `${arg} is a loaded credential`);
    }
    const config = parseYaml(readFileSync(EXAMPLE_CONFIG, 'utf8')) as Record<string, string>;
    const readiness = directives('ExecStartPost').join(' ');
    assert.ok(
      readiness.includes(`http://${config['metrics-listen']}/readyz`),
      'ExecStartPost polls /readyz on metrics-listen',
    );
  });
});
