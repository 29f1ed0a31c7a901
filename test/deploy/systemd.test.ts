/**
 * deploy/systemd/kube-crl-proxy.service: `systemd-analyze verify` accepts it without a word
 * (CI installs Debian's systemd for it), it agrees with the proxy's flags and the example
 * configuration, its ExecStartPre is the configuration check, and the root-without-capabilities
 * it runs as reads kubeadm's root-owned 0600 keys and nothing owned by another user. The same
 * for the daily CRL renewal (kube-crl-proxy-crl-renew.service and .timer), whose command also
 * runs here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { CRL_SIGNING_OPTIONS } from '../../src/cli/crl-command.js';
import { parseDuration } from '../../src/config/config.js';
import { makePki, type TestPki } from '../support/pki.js';
import { BIN, binLauncher, type ExitResult, runBin } from '../support/proxy-process.js';
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
const SETPRIV = '/usr/bin/setpriv';
const INSTALLED_BIN = '/opt/kube-crl-proxy/bin/kube-crl-proxy';
const CONFIG_PATH = '/etc/kube-crl-proxy/config.yaml';
/** Files of the example configuration a systemd unit must be able to read. */
const FILE_KEYS = [
  'tls-cert-file',
  'tls-private-key-file',
  'client-ca-file',
  'upstream-ca-file',
  'proxy-client-cert-file',
  'proxy-client-key-file',
];

/** Values of `Key=` lines of a unit file (a key may repeat). */
function directives(key: string, file = UNIT): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));
}

function commandArgs(key: 'ExecStart' | 'ExecStartPre', file = UNIT): string[] {
  const [line] = directives(key, file);
  assert.ok(line !== undefined, key);
  return line.split(/\s+/);
}

const example = () => parseYaml(readFileSync(EXAMPLE_CONFIG, 'utf8')) as Record<string, unknown>;

/** Runs the binary with the given arguments under `setpriv` (capabilities dropped). */
function runWithoutCapabilities(args: string[]): Promise<ExitResult> {
  return new Promise((resolve) => {
    execFile(
      SETPRIV,
      [
        '--bounding-set=-all',
        '--inh-caps=-all',
        '--ambient-caps=-all',
        '--no-new-privs',
        BIN,
        ...args,
      ],
      { timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
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
    if (!existsSync(SYSTEMD_ANALYZE)) {
      // .ci/run installs Debian's systemd; verify works without systemd as PID 1.
      assert.ok(!process.env.CI, `${SYSTEMD_ANALYZE} is missing in CI`);
      t.skip(`${SYSTEMD_ANALYZE} is not installed (apt-get install systemd)`);
      return;
    }
    // verify insists that the programs it starts exist: point them at this checkout's binary.
    const dir = mkdtempSync(join(tmpdir(), 'kcp-unit-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const unit = join(dir, 'kube-crl-proxy.service');
    const text = readFileSync(UNIT, 'utf8');
    assert.ok(text.includes(`ExecStart=${INSTALLED_BIN} `));
    assert.ok(text.includes(`ExecStartPre=${INSTALLED_BIN} `));
    const staged = text.replaceAll(`=${INSTALLED_BIN} `, `=${REPO_BIN} `);
    writeFileSync(unit, staged);
    const clean = await verify(unit);
    assert.equal(clean.stderr, '');
    assert.equal(clean.code, 0);

    // The check is not vacuous: a misspelt directive is reported.
    writeFileSync(unit, staged.replace('ProtectHome=yes', 'ProtectHom=yes'));
    assert.match((await verify(unit)).stderr, /Unknown key 'ProtectHom'/);
  });

  test("root without a capability, kubeadm's other files hidden, nothing writable", () => {
    const one = (key: string) => directives(key).join(' ');
    for (const key of ['DynamicUser', 'User', 'Group', 'LoadCredential', 'ReadWritePaths']) {
      assert.deepEqual(directives(key), [], `no ${key}=`);
    }
    assert.equal(one('CapabilityBoundingSet'), '');
    assert.equal(one('AmbientCapabilities'), '');
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('ProtectSystem'), 'strict');
    assert.equal(one('PrivateTmp'), 'yes');
    assert.equal(one('Restart'), 'on-failure');
    assert.deepEqual(one('TemporaryFileSystem').split(' ').sort(), [
      '/etc/kubernetes:ro',
      '/var/lib:ro',
    ]);
  });

  test('it reads in place exactly the files of the example configuration, the CRL directory whole', () => {
    const config = example();
    const bound = directives('BindReadOnlyPaths').flatMap((d) => d.split(' '));
    const wanted = new Set([
      ...FILE_KEYS.map((key) => config[key] as string),
      ...(config['crl-file'] as string[]).map((dir) => dir.replace(/\/$/, '')),
    ]);
    assert.deepEqual([...bound].sort(), [...wanted].sort());
    for (const path of bound)
      assert.ok(path.startsWith('/etc/kubernetes/'), `${path} is under the hidden tree`);
  });

  test('TimeoutStopSec leaves the example --shutdown-grace room', () => {
    const stopSec = Number(/^(\d+)s$/.exec(directives('TimeoutStopSec').join(''))?.[1]);
    const grace = parseDuration('shutdown-grace', String(example()['shutdown-grace']));
    assert.ok(stopSec * 1000 > grace, `TimeoutStopSec=${stopSec}s > --shutdown-grace ${grace} ms`);
  });

  test('the binary runs on the node installed beside it, with its own runtime flags', () => {
    const path = directives('Environment').find((e) => e.startsWith('PATH='));
    assert.equal(path?.split('=')[1]?.split(':')[0], dirname(INSTALLED_BIN));
    assert.equal(commandArgs('ExecStart')[0], INSTALLED_BIN);
    assert.ok(!directives('Environment').some((e) => e.startsWith('NODE_OPTIONS=')));
    assert.deepEqual(binLauncher(), {
      env: { MALLOC_MMAP_THRESHOLD_: '1048576' },
      nodeFlags: ['--v8-pool-size=1', '--max-semi-space-size=2', '--expose-gc'],
    });
  });

  test('ExecStart takes the config file alone; readiness polls metrics-listen', () => {
    assert.deepEqual(commandArgs('ExecStart'), [INSTALLED_BIN, `--config=${CONFIG_PATH}`]);
    const readiness = directives('ExecStartPost').join(' ');
    assert.ok(
      readiness.includes(`http://${example()['metrics-listen']}/readyz`),
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
    const args = commandArgs('ExecStart', RENEW_UNIT);
    const crl = args.find((a) => a.startsWith('--crl='))?.slice('--crl='.length) ?? '';
    assert.equal(one('ReadWritePaths', RENEW_UNIT), dirname(crl));
    const config = parseYaml(readFileSync(EXAMPLE_CONFIG, 'utf8')) as Record<string, string[]>;
    assert.ok(
      config['crl-file']?.some((path) => crl.startsWith(path)),
      'the proxy of the example configuration reads that CRL',
    );
  });

  test('its command: real flags, 7 days of validity, and it creates then renews a CRL the proxy loads', async () => {
    const args = commandArgs('ExecStart', RENEW_UNIT);
    assert.deepEqual(args.slice(0, 3), [INSTALLED_BIN, 'crl', 'renew']);
    const known = new Set(Object.keys(CRL_SIGNING_OPTIONS));
    for (const name of flagNames(args)) assert.ok(known.has(name), `--${name} is a crl renew flag`);
    assert.ok(args.includes('--next-update=7d'));
    await runRenewAsDeployed(args.slice(1));
  });
});

describe('systemd unit: ExecStartPre and the privileges it runs with, on a test PKI', () => {
  let pki: TestPki;
  let config: string;
  /** ExecStartPre's own arguments, with the config path pointed at a test configuration. */
  const preArgs = () =>
    commandArgs('ExecStartPre')
      .slice(1)
      .map((a) => a.replace(CONFIG_PATH, config));

  before(async () => {
    pki = await makePki();
    const paths: Record<string, string> = {
      'tls-cert-file': pki.files.servingCert,
      'tls-private-key-file': pki.files.servingKey,
      'client-ca-file': pki.files.clientCa,
      'upstream-ca-file': pki.files.upstreamCa,
      'proxy-client-cert-file': pki.files.proxyClientCert,
      'proxy-client-key-file': pki.files.proxyClientKey,
    };
    config = pki.write(
      'config.yaml',
      toYaml({ ...example(), ...paths, 'crl-file': [pki.files.crl] }),
    );
  });
  after(() => pki?.cleanup());

  test('ExecStartPre is check-config on the same --config: exit 0, then 2 for a key that does not match', async () => {
    assert.deepEqual(commandArgs('ExecStartPre'), [
      INSTALLED_BIN,
      'check-config',
      `--config=${CONFIG_PATH}`,
    ]);
    const good = await runBin(preArgs());
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /configuration valid\n$/);
    writeFileSync(pki.files.servingKey, pki.frontProxyClient.keyPem);
    try {
      const bad = await runBin(preArgs());
      assert.equal(bad.code, 2);
      assert.match(
        bad.stderr,
        /--tls-private-key-file \(set in .*config\.yaml\): .*serving\.key: key does not match/,
      );
    } finally {
      writeFileSync(pki.files.servingKey, pki.serving.keyPem);
    }
  });

  test('root without capabilities reads root-owned 0600 keys, and not a key another user owns', async (t) => {
    if (process.getuid?.() !== 0 || !existsSync(SETPRIV)) {
      t.skip('needs root and setpriv (util-linux), as CI has');
      return;
    }
    // makePki writes every file 0600, owned by the user running the test: root here, as kubeadm.
    const asKubeadm = await runWithoutCapabilities(preArgs());
    assert.equal(asKubeadm.code, 0, asKubeadm.stderr);
    const nobody = 65534;
    chownSync(pki.files.servingKey, nobody, nobody);
    chownSync(pki.files.proxyClientKey, nobody, nobody);
    try {
      const foreign = await runWithoutCapabilities(preArgs());
      assert.equal(foreign.code, 2);
      const denied = foreign.stderr
        .split('\n')
        .filter((l) => l.endsWith('cannot read: permission denied'));
      assert.deepEqual(
        denied.map((l) => /--([a-z-]+)/.exec(l)?.[1]),
        ['tls-private-key-file', 'proxy-client-key-file'],
      );
      // The same files, read by root with its capabilities: the denial above is the capabilities'.
      assert.equal((await runBin(preArgs())).code, 0);
    } finally {
      chownSync(pki.files.servingKey, 0, 0);
      chownSync(pki.files.proxyClientKey, 0, 0);
    }
  });
});
