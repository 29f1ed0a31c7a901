/**
 * docs/cli.md is generated from the yargs definitions (npm run docs:cli); this fails when the
 * definitions change and the file was not regenerated. Also: --version, and a --help grouped
 * by topic with examples.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { CLI_DOCS, renderCliDocs } from '../../scripts/gen-cli-docs.js';
import { GROUPS } from '../../src/config/options.js';
import { runBin } from '../support/proxy-process.js';

describe('CLI documentation and help', () => {
  test('docs/cli.md matches the definitions (run `npm run docs:cli` after changing a flag)', async () => {
    const expected = await renderCliDocs();
    const actual = readFileSync(CLI_DOCS, 'utf8');
    if (actual !== expected) {
      const a = actual.split('\n');
      const e = expected.split('\n');
      const line = e.findIndex((text, i) => text !== a[i]);
      assert.fail(
        `docs/cli.md is stale from line ${line + 1}: run \`npm run docs:cli\`\n  file:     ${a[line]}\n  expected: ${e[line]}`,
      );
    }
  });

  test('--version prints the package version', async () => {
    const pkg = JSON.parse(
      readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
    ) as {
      version: string;
    };
    const result = await runBin(['--version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), pkg.version);
  });

  test('--help: grouped by topic, with examples and exit codes', async () => {
    // Example lines, not the "Examples:" heading: yargs translates its own headings by LANG.
    const result = await runBin(['--help']);
    assert.equal(result.code, 0);
    const headings = result.stdout.split('\n').filter((l) => /^\S.*:$/.test(l));
    for (const group of Object.values(GROUPS)) assert.ok(headings.includes(group), group);
    assert.match(result.stdout, /kube-crl-proxy check-cert alice\.crt/);
    assert.match(result.stdout, /Exit codes: 0 success/);
    const checkCert = await runBin(['check-cert', '--help']);
    assert.match(checkCert.stdout, /^Inspection:$/m);
    assert.match(checkCert.stdout, /kube-crl-proxy check-cert alice\.crt/);
  });
});
