/**
 * The config layer in process: where each setting came from, what is not a setting, and every
 * problem of a configuration at once (test/config/cli.test.ts runs the same through the binary).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveConfig } from '../../src/config/config.js';
import {
  type CommandLine,
  gatherSettings,
  loadConfig,
  readConfigFile,
  suggestion,
} from '../../src/config/sources.js';
import { ConfigErrors } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'kcp-sources-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function line(argv: string[], parsed: Record<string, unknown> = {}): CommandLine {
  return {
    argv,
    parsed,
    positionals: [],
    ownFlags: { config: 'string', help: 'boolean', version: 'boolean' },
    commands: ['check-config', 'demo'],
  };
}

function messages(run: () => unknown): string[] {
  try {
    run();
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    throw err;
  }
  assert.fail('no ConfigErrors thrown');
}

test('suggestions: kebab-case of a camelCase name, a unique prefix, a few letters apart', () => {
  const names = ['client-ca-file', 'crl-file', 'crl-url', 'listen', 'metrics-listen'];
  assert.equal(suggestion('clientCaFile', names, '--'), '; did you mean --client-ca-file?');
  assert.equal(suggestion('client-ca', names, '--'), '; did you mean --client-ca-file?');
  assert.equal(suggestion('lisen', names, '--'), '; did you mean --listen?');
  assert.equal(suggestion('crl', names, '--'), '');
  assert.equal(suggestion('upstream-timeout', names, '--'), '');
});

test('resolveConfig lists every problem, each once, in declaration order', () => {
  assert.deepEqual(
    messages(() =>
      resolveConfig({
        listen: 'nowhere',
        'reject-mode': 'shout',
        'crl-url': ['ftp://x/ca.crl', 'not a url'],
        'crl-url-interval': '10ms',
        'max-connections': 0,
      }),
    ).filter((m) => !m.endsWith('is required')),
    [
      '--listen: "nowhere" is not host:port (e.g. 0.0.0.0:6443 or [::1]:6443)',
      '--reject-mode: must be one of alert, status, close, http, got "shout"',
      '--crl-url: ftp://x/ca.crl: must be http:// or https://, got ftp:',
      '--crl-url: "not a url" is not a URL (e.g. http://pki.example/ca.crl)',
      '--crl-url-interval: must be 1s or more',
      '--max-connections: must be an integer from 1 to 10000000, got 0',
      '--crl-file: no CRL given (--crl-file or --crl-url); every CA of --client-ca-file needs one under --crl-missing-policy=reject (the default)',
    ],
  );
});

test('a --config file: unknown keys named as the file spells them, the others kept', () => {
  const path = join(dir, 'config.yaml');
  writeFileSync(path, 'listen: 127.0.0.1:1\nclientCaFile: /x\nlog_level: debug\n');
  const file = readConfigFile(path);
  assert.deepEqual(file.values, { listen: '127.0.0.1:1' });
  assert.deepEqual(
    file.problems.map((p) => p.message),
    [
      `--config: ${path}: unknown key "clientCaFile"; did you mean client-ca-file?`,
      `--config: ${path}: unknown key "log_level"; did you mean log-level?`,
    ],
  );
  const list = join(dir, 'list.yaml');
  writeFileSync(list, '- listen\n');
  assert.deepEqual(
    readConfigFile(list).problems.map((p) => p.message),
    [`--config: ${list}: must hold a mapping of flag names to values`],
  );
  assert.deepEqual(
    readConfigFile(join(dir, 'absent.yaml')).problems.map((p) => p.message),
    [`--config: ${join(dir, 'absent.yaml')}: cannot read: no such file`],
  );
});

test('flags over the file over the defaults; a problem names where its value came from', () => {
  const path = join(dir, 'values.yaml');
  writeFileSync(path, 'listen: nowhere\nmetrics-listen: nowhere-too\nworkers: many\n');
  const settings = gatherSettings(
    line(['--config', path, '--metrics-listen=bad', '--workrs=2', '--shutdown-grace'], {
      config: path,
      'metrics-listen': 'bad',
      workrs: 2,
      'shutdown-grace': '30s',
    }),
  );
  assert.equal(settings.args['metrics-listen'], 'bad');
  assert.equal(settings.args.listen, 'nowhere');
  assert.equal(settings.args['upstream-timeout'], '5s');
  assert.deepEqual(
    messages(() => loadConfig(settings)).filter((m) => !m.endsWith('is required')),
    [
      '--workrs: unknown flag; did you mean --workers?',
      '--shutdown-grace: needs a value',
      `--listen (set in ${path}): "nowhere" is not host:port (e.g. 0.0.0.0:6443 or [::1]:6443)`,
      '--metrics-listen: "bad" is not host:port (e.g. 0.0.0.0:6443 or [::1]:6443)',
      `--workers (set in ${path}): must be an integer from 1 to 256, got "many"`,
      '--crl-file: no CRL given (--crl-file or --crl-url); every CA of --client-ca-file needs one under --crl-missing-policy=reject (the default)',
    ],
  );
});
