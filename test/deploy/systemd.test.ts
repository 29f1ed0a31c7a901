/**
 * deploy/systemd/kube-crl-proxy.service: `systemd-analyze verify` accepts it without a word,
 * and it agrees with the proxy's flags and the example configuration. The same for the daily
 * CRL renewal (kube-crl-proxy-crl-renew.service and .timer), whose command also runs here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { CRL_SIGNING_OPTIONS } from '../../src/cli/crl-command.js';
import { RUN_OPTIONS } from '../../src/config/options.js';
import { binLauncher } from '../support/proxy-process.js';
import {
  EXAMPLE_CONFIG,
  flagNames,
  RENEW_TIMER,
  RENEW_UNIT,
  REPO_BIN,
  UNIT,
} from './deploy-files.js';
import { runRenewAsDeployed } from './renew-run.js';

const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const INSTALLED_BIN = '/opt/kube-crl-proxy/bin/kube-crl-proxy';

/** Values of `Key=` lines of a unit file (a key may repeat). */
function directives(key: string, file = UNIT): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));
}

function execStartArgs(file = UNIT): string[] {
  const [execStart] = directives('ExecStart', file);
  assert.ok(execStart !== undefined, 'ExecStart');
  return execStart.split(/\s+/);
}

function verify(...unitPaths: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      SYSTEMD_ANALYZE,
      ['verify', '--man=no', '--generators=no', ...unitPaths],
      { timeout: 60_000 },
      (err, _stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stderr });
      },
    );
  });
}

/**
 * Copies of unit files in a temporary directory, for `systemd-analyze verify`, which insists
 * that ExecStart's program exists: it points at this checkout's binary there. Null (the test
 * skipped) when systemd-analyze is not installed.
 */
function stageUnits(t: TestContext, files: readonly string[]): string[] | null {
  if (!existsSync(SYSTEMD_ANALYZE)) {
    // Debian's systemd package brings it; verify works without systemd as PID 1.
    t.skip(`${SYSTEMD_ANALYZE} is not installed (apt-get install systemd)`);
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'kcp-unit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return files.map((file) => {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.service')) assert.ok(text.includes(`ExecStart=${INSTALLED_BIN} `));
    const copy = join(dir, basename(file));
    writeFileSync(copy, text.replace(`ExecStart=${INSTALLED_BIN} `, `ExecStart=${REPO_BIN} `));
    return copy;
  });
}

describe('systemd unit', () => {
  test('systemd-analyze verify: no error, no warning', async (t) => {
    const staged = stageUnits(t, [UNIT]);
    if (staged === null) return;
    const [unit] = staged as [string];
    const text = readFileSync(unit, 'utf8');
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
    assert.deepEqual(binLauncher(), {
      env: { MALLOC_MMAP_THRESHOLD_: '1048576' },
      nodeFlags: ['--v8-pool-size=1', '--max-semi-space-size=2', '--expose-gc'],
    });
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

describe('daily CRL renewal: kube-crl-proxy-crl-renew.service and .timer', () => {
  test('systemd-analyze verify: no error, no warning', async (t) => {
    const staged = stageUnits(t, [RENEW_UNIT, RENEW_TIMER]);
    if (staged === null) return;
    const [unit, timer] = staged as [string, string];
    const timerText = readFileSync(timer, 'utf8');
    const clean = await verify(unit, timer);
    assert.equal(clean.stderr, '');
    assert.equal(clean.code, 0);

    writeFileSync(timer, timerText.replace('Persistent=true', 'Persistant=true'));
    assert.match((await verify(unit, timer)).stderr, /Unknown key 'Persistant'/);
  });

  test('the timer: daily, persistent, spread; the service: one shot, only the CRL directory writable', () => {
    const one = (key: string, file: string) => directives(key, file).join(' ');
    assert.equal(one('OnCalendar', RENEW_TIMER), 'daily');
    assert.equal(one('Persistent', RENEW_TIMER), 'true');
    assert.match(one('RandomizedDelaySec', RENEW_TIMER), /^\d+(h|min|s)?$/);
    assert.equal(one('WantedBy', RENEW_TIMER), 'timers.target');
    assert.equal(one('Type', RENEW_UNIT), 'oneshot');
    assert.equal(one('ProtectSystem', RENEW_UNIT), 'strict');
    assert.equal(one('PrivateNetwork', RENEW_UNIT), 'yes');
    assert.equal(one('CapabilityBoundingSet', RENEW_UNIT), '');
    const args = execStartArgs(RENEW_UNIT);
    const crl = args.find((a) => a.startsWith('--crl='))?.slice('--crl='.length) ?? '';
    assert.equal(one('ReadWritePaths', RENEW_UNIT), dirname(crl));
    const config = parseYaml(readFileSync(EXAMPLE_CONFIG, 'utf8')) as Record<string, string[]>;
    assert.ok(
      config['crl-file']?.some((path) => crl.startsWith(path)),
      'the proxy of the example configuration reads that CRL',
    );
  });

  test('its command: real flags, 7 days of validity, and it creates then renews a CRL the proxy loads', async () => {
    const args = execStartArgs(RENEW_UNIT);
    assert.deepEqual(args.slice(0, 3), [INSTALLED_BIN, 'crl', 'renew']);
    const known = new Set(Object.keys(CRL_SIGNING_OPTIONS));
    for (const name of flagNames(args)) assert.ok(known.has(name), `--${name} is a crl renew flag`);
    assert.ok(args.includes('--next-update=7d'));
    await runRenewAsDeployed(args.slice(1));
  });
});
