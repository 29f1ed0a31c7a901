/**
 * deploy/kube-crl-proxy.example.yaml sets every flag, each with a comment, and the proxy reads
 * it: `--print-config` shows the effective configuration and exits without listening.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { RUN_OPTIONS } from '../../src/config/options.js';
import { makePki, proxyArgs, type TestPki } from '../support/pki.js';
import { runBin } from '../support/proxy-process.js';
import { EXAMPLE_CONFIG } from './deploy-files.js';

const example = () => parseYaml(readFileSync(EXAMPLE_CONFIG, 'utf8')) as Record<string, unknown>;

let pki: TestPki;
before(async () => {
  pki = await makePki();
});
after(() => pki?.cleanup());

describe('example configuration and --print-config', () => {
  test('sets every flag, each under a comment', () => {
    assert.deepEqual(Object.keys(example()).sort(), Object.keys(RUN_OPTIONS).sort());
    const lines = readFileSync(EXAMPLE_CONFIG, 'utf8').split('\n');
    for (const key of Object.keys(RUN_OPTIONS)) {
      // Closely related keys (a certificate and its key) may share the comment above them.
      let above = lines.findIndex((l) => l.startsWith(`${key}:`)) - 1;
      while (/^([a-z0-9-]+:| {2}- )/.test(lines[above] ?? '')) above--;
      assert.match(lines[above] ?? '', /^# \S/, `a comment above ${key}`);
    }
  });

  test('--print-config: the file as the proxy reads it, exit 0, nothing listens', async () => {
    const result = await runBin(['--config', EXAMPLE_CONFIG, '--print-config']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.deepEqual(parseYaml(result.stdout), example());
    assert.doesNotMatch(result.stdout, /kube-crl-proxy serving/);
  });

  test('flags override the file; the output is itself a --config file', async () => {
    const first = await runBin([
      '--config',
      EXAMPLE_CONFIG,
      '--listen=127.0.0.1:7443',
      '--crl-file=/a.crl',
      '--crl-file=/b.crl',
      '--print-config',
    ]);
    assert.equal(first.code, 0, first.stderr);
    const printed = parseYaml(first.stdout) as Record<string, unknown>;
    assert.equal(printed.listen, '127.0.0.1:7443');
    assert.deepEqual(printed['crl-file'], ['/a.crl', '/b.crl']);
    const again = await runBin([
      '--config',
      pki.write('printed.yaml', first.stdout),
      '--print-config',
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(parseYaml(again.stdout), printed);
  });

  test('paths only, never key material; defaults filled in', async () => {
    const result = await runBin([...proxyArgs(pki, 'https://127.0.0.1:16443'), '--print-config']);
    assert.equal(result.code, 0, result.stderr);
    const printed = parseYaml(result.stdout) as Record<string, unknown>;
    assert.equal(printed['proxy-client-key-file'], pki.files.proxyClientKey);
    assert.equal(printed['tls-private-key-file'], pki.files.servingKey);
    assert.equal(printed['upstream-timeout'], RUN_OPTIONS['upstream-timeout'].default);
    assert.doesNotMatch(result.stdout, /BEGIN|PRIVATE KEY/);
  });

  test('an invalid configuration is refused as when running: exit 2, one line', async () => {
    const text = readFileSync(EXAMPLE_CONFIG, 'utf8');
    const bad = pki.write('bad.yaml', text.replace(/^listen: .*$/m, 'listen: nowhere'));
    const result = await runBin(['--config', bad, '--print-config']);
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr,
      `kube-crl-proxy: --listen (set in ${bad}): "nowhere" is not host:port (e.g. 0.0.0.0:6443 or [::1]:6443)\n`,
    );
    assert.equal(result.stdout, '');
  });
});
