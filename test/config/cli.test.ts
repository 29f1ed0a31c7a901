/**
 * Bad configuration: every problem at once, one line each naming the flag as the user typed it
 * (or the --config file its value came from), exit code 2, and nothing listens. The cases run
 * the real binary.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveConfig } from '../../src/config/config.js';
import { RUN_OPTIONS } from '../../src/config/options.js';
import { Authority, crlPem } from '../../src/demo/pki-factory.js';
import { makePki, proxyArgs, type TestPki } from '../support/pki.js';
import { runBin } from '../support/proxy-process.js';

let pki: TestPki;
const UPSTREAM = 'https://127.0.0.1:1';

before(async () => {
  pki = await makePki();
});
after(() => pki.cleanup());

/** Replaces (or adds) one flag in the good argument list. */
function withFlag(flag: string, value: string | null): string[] {
  const args = proxyArgs(pki, UPSTREAM).filter((a) => !a.startsWith(`--${flag}=`));
  return value === null ? args : [...args, `--${flag}=${value}`];
}

/** The lines of stderr, without the program's name. */
function problemLines(result: { stderr: string }): string[] {
  return result.stderr
    .trimEnd()
    .split('\n')
    .map((line) => line.replace(/^kube-crl-proxy: /, ''));
}

async function expectConfigError(args: string[], flag: string, problem: RegExp): Promise<void> {
  const result = await runBin(args);
  assert.equal(result.code, 2, `exit code for ${flag}: ${result.stderr}`);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${result.stderr}`);
  assert.match(lines[0] as string, new RegExp(`^kube-crl-proxy: --${flag}: `));
  assert.match(lines[0] as string, problem);
  assert.doesNotMatch(result.stdout, /kube-crl-proxy serving/, 'nothing listened');
}

describe('--help', () => {
  test('lists every flag of the CLI contract with its default', async () => {
    const result = await runBin(['--help']);
    assert.equal(result.code, 0);
    // yargs wraps a default longer than a line (--tls-cipher-suites) wherever it must.
    const squeezed = result.stdout.replace(/\s+/g, '');
    for (const [name, option] of Object.entries(RUN_OPTIONS)) {
      assert.match(result.stdout, new RegExp(`--${name}\\b`), name);
      const fallback = (option as { default?: unknown }).default;
      if (typeof fallback === 'string' && fallback !== '') {
        const expected = `[default:"${fallback.replace(/\s+/g, '')}"]`;
        assert.ok(squeezed.includes(expected), `default of --${name}`);
      }
    }
    assert.match(result.stdout, /--config\b/);
  });
});

describe('configuration errors exit 2 with one line naming the flag', () => {
  test('missing file', async () => {
    await expectConfigError(
      withFlag('client-ca-file', join(pki.dir, 'nope.crt')),
      'client-ca-file',
      /nope\.crt: cannot read: no such file/,
    );
  });

  test('unreadable file (a directory where a file is expected)', async () => {
    const directory = join(pki.dir, 'a-directory');
    mkdirSync(directory, { recursive: true });
    await expectConfigError(
      withFlag('tls-cert-file', directory),
      'tls-cert-file',
      /cannot read: is a directory/,
    );
  });

  test('key that does not match its certificate', async () => {
    await expectConfigError(
      withFlag('tls-private-key-file', pki.files.proxyClientKey),
      'tls-private-key-file',
      /key does not match the certificate in --tls-cert-file/,
    );
    await expectConfigError(
      withFlag('proxy-client-key-file', pki.files.servingKey),
      'proxy-client-key-file',
      /key does not match/,
    );
  });

  test('--client-ca-file with no CA in it', async () => {
    const leafOnly = pki.write('leaf-only.crt', pki.serving.certPem);
    await expectConfigError(
      withFlag('client-ca-file', leafOnly),
      'client-ca-file',
      /contains no CA certificate/,
    );
    const notPem = pki.write('garbage.crt', 'hello, not a certificate\n');
    await expectConfigError(
      withFlag('client-ca-file', notPem),
      'client-ca-file',
      /contains no certificate/,
    );
  });

  test('a CRL whose signature does not verify against any CA of --client-ca-file', async () => {
    const impostor = await Authority.create({ commonName: 'impostor' });
    const forged = pki.write(
      'forged.crl',
      crlPem(pki.clusterCa.crl({ signingKey: impostor.cert.privateKey })),
    );
    const result = await runBin(withFlag('crl-file', forged));
    assert.equal(result.code, 2);
    assert.deepEqual(problemLines(result), [
      `--crl-file: ${forged}: CRL signature of "CN=kubernetes" does not verify against any CA of --client-ca-file`,
      '--crl-file: no CRL for CA "CN=kubernetes" of --client-ca-file, so its certificates are refused (--crl-missing-policy=reject); add its CRL or set --crl-missing-policy=allow',
    ]);
  });

  test('an issuer without a CRL under the fail-closed default', async () => {
    const second = await Authority.create({ commonName: 'second-ca' });
    const bundle = pki.write('two-cas.crt', pki.clusterCa.certPem + second.certPem);
    await expectConfigError(
      withFlag('client-ca-file', bundle),
      'crl-file',
      /no CRL for CA "CN=second-ca" of --client-ca-file, so its certificates are refused \(--crl-missing-policy=reject\)/,
    );
    const noCrl = proxyArgs(pki, UPSTREAM).filter((a) => !a.startsWith('--crl-file='));
    await expectConfigError(noCrl, 'crl-file', /no CRL given/);
  });

  test('malformed --listen and --upstream', async () => {
    for (const bad of ['6443', 'localhost', '1.2.3.4:99999', '[::1:6443', 'a b:1']) {
      await expectConfigError(withFlag('listen', bad), 'listen', /is not host:port/);
    }
    await expectConfigError(
      withFlag('upstream', 'http://127.0.0.1:6443'),
      'upstream',
      /must be an https:\/\/ URL/,
    );
    await expectConfigError(withFlag('upstream', 'not a url'), 'upstream', /is not a URL/);
    await expectConfigError(
      withFlag('upstream', 'https://127.0.0.1:6443/api'),
      'upstream',
      /without path/,
    );
  });

  test('missing required flag, bad enum, bad duration, unknown flag', async () => {
    await expectConfigError(withFlag('upstream', null), 'upstream', /is required/);
    await expectConfigError(
      withFlag('upstream-timeout', 'soon'),
      'upstream-timeout',
      /is not a duration/,
    );
    const badEnum = await runBin(withFlag('reject-mode', 'shout'));
    assert.equal(badEnum.code, 2);
    assert.match(badEnum.stderr, /reject-mode/);
    const unknown = await runBin([...proxyArgs(pki, UPSTREAM), '--no-such-flag=1']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no-such-flag/);
  });

  test('--reject-mode: alert by default; http, the former name of status, is still status', () => {
    const args = Object.fromEntries(
      proxyArgs(pki, UPSTREAM).map((flag) => {
        const [name = '', value = ''] = flag.slice(2).split(/=(.*)/s);
        return [name, value];
      }),
    );
    assert.equal(resolveConfig(args).rejectMode, 'alert');
    for (const mode of ['alert', 'status', 'close'])
      assert.equal(resolveConfig({ ...args, 'reject-mode': mode }).rejectMode, mode);
    assert.equal(resolveConfig({ ...args, 'reject-mode': 'http' }).rejectMode, 'status');
  });

  test('--crl-url: a URL without credentials, over http(s), once; its settings', async () => {
    const cache = `--crl-cache-dir=${join(pki.dir, 'url-cache')}`;
    const url = (value: string, ...more: string[]) => [
      ...withFlag('crl-url', value),
      cache,
      ...more,
    ];
    await expectConfigError(
      url('ftp://pki.example/ca.crl'),
      'crl-url',
      /must be http:\/\/ or https:\/\//,
    );
    await expectConfigError(url('not a url'), 'crl-url', /is not a URL/);
    await expectConfigError(
      url('http://user:secret@pki.example/ca.crl'),
      'crl-url',
      /^kube-crl-proxy: --crl-url: http:\/\/…@pki\.example: credentials in the URL would be shown in logs and metrics$/,
    );
    await expectConfigError(
      url('http://pki.example/ca.crl', '--crl-url=http://PKI.example/ca.crl#x'),
      'crl-url',
      /http:\/\/pki\.example\/ca\.crl is given twice/,
    );
    await expectConfigError(
      url('http://pki.example/ca.crl', '--crl-url-interval=500ms'),
      'crl-url-interval',
      /must be 1s or more/,
    );
    const crlDir = join(pki.dir, 'crl-dir');
    mkdirSync(crlDir, { recursive: true });
    await expectConfigError(
      [
        ...withFlag('crl-url', 'http://pki.example/ca.crl'),
        `--crl-file=${crlDir}/`,
        `--crl-cache-dir=${crlDir}`,
      ],
      'crl-cache-dir',
      /is also a --crl-file directory/,
    );
    await expectConfigError(
      url('http://pki.example/ca.crl', '--crl-url-max-bytes=10'),
      'crl-url-max-bytes',
      /must be an integer from 1024/,
    );
  });

  test('config file: flags win, unknown keys are errors', async () => {
    const config = pki.write('config.yaml', `listen: "not-valid"\nupstream: ${UPSTREAM}\n`);
    const flagsWin = await runBin(['--config', config, ...withFlag('listen', 'bad-too')]);
    assert.equal(flagsWin.code, 2);
    assert.match(flagsWin.stderr, /--listen: "bad-too" is not host:port/);
  });
});

const REQUIRED_LINES = [
  '--tls-cert-file: is required',
  '--tls-private-key-file: is required',
  '--client-ca-file: is required',
  '--upstream: is required',
  '--upstream-ca-file: is required',
  '--proxy-client-cert-file: is required',
  '--proxy-client-key-file: is required',
];
const NO_CRL_LINE =
  '--crl-file: no CRL given (--crl-file or --crl-url); every CA of --client-ca-file needs one under --crl-missing-policy=reject (the default)';

/** Runs the binary; it must refuse to start, print nothing on stdout, and exit 2. */
async function refused(args: string[]): Promise<string[]> {
  const result = await runBin(args);
  assert.equal(result.code, 2, result.stderr);
  assert.doesNotMatch(result.stdout, /kube-crl-proxy serving/, 'nothing listened');
  return problemLines(result);
}

describe('every configuration problem is listed at once, one line each, exit 2', () => {
  test('no arguments at all: every required flag', async () => {
    assert.deepEqual(await refused([]), [...REQUIRED_LINES, NO_CRL_LINE]);
  });

  test('three missing files: each named with its flag', async () => {
    const gone = (name: string) => join(pki.dir, 'gone', name);
    const lines = await refused(
      proxyArgs(pki, UPSTREAM, [
        `--tls-cert-file=${gone('apiserver.crt')}`,
        `--client-ca-file=${gone('ca.crt')}`,
        `--proxy-client-key-file=${gone('front-proxy-client.key')}`,
      ]),
    );
    assert.deepEqual(lines.toSorted(), [
      `--client-ca-file: ${gone('ca.crt')}: cannot read: no such file`,
      `--proxy-client-key-file: ${gone('front-proxy-client.key')}: cannot read: no such file`,
      `--tls-cert-file: ${gone('apiserver.crt')}: cannot read: no such file`,
    ]);
  });

  test('a mistyped flag is named as typed, with the flag it is close to', async () => {
    const good = proxyArgs(pki, UPSTREAM).filter((a) => !a.startsWith('--client-ca-file='));
    assert.deepEqual(await refused([...good, `--client-ca=${pki.files.clientCa}`]), [
      '--client-ca: unknown flag; did you mean --client-ca-file?',
      '--client-ca-file: is required',
    ]);
    assert.deepEqual(await refused([...proxyArgs(pki, UPSTREAM), '--listn', '127.0.0.1:0']), [
      '--listn: unknown flag; did you mean --listen?',
    ]);
    assert.deepEqual(await refused([...proxyArgs(pki, UPSTREAM), '--no-such-flag=1']), [
      '--no-such-flag: unknown flag',
    ]);
    assert.deepEqual(await refused([...proxyArgs(pki, UPSTREAM), 'chek-config']), [
      'chek-config: unexpected argument (the proxy takes flags only); did you mean check-config?',
    ]);
  });

  test('a camelCase flag is refused as typed, as kube-apiserver refuses it', async () => {
    const good = proxyArgs(pki, UPSTREAM).filter((a) => !a.startsWith('--client-ca-file='));
    assert.deepEqual(await refused([...good, `--clientCaFile=${pki.files.clientCa}`]), [
      '--clientCaFile: unknown flag; did you mean --client-ca-file?',
      '--client-ca-file: is required',
    ]);
  });

  test('a bad value in the --config file names the key and the file', async () => {
    const config = pki.write(
      'bad-value.yaml',
      ['listen: nowhere', 'max-connections: lots', 'reject-mode: shout', ''].join('\n'),
    );
    assert.deepEqual(await refused([...proxyArgs(pki, UPSTREAM), '--config', config]), [
      `--reject-mode (set in ${config}): must be one of alert, status, close, http, got "shout"`,
      `--max-connections (set in ${config}): must be an integer from 1 to 10000000, got "lots"`,
    ]);
    // The same key typed as a flag wins over the file and is named as typed.
    const withoutListen = proxyArgs(pki, UPSTREAM).filter((a) => !a.startsWith('--listen='));
    assert.deepEqual(await refused([...withoutListen, '--config', config]), [
      `--listen (set in ${config}): "nowhere" is not host:port (e.g. 0.0.0.0:6443 or [::1]:6443)`,
      `--reject-mode (set in ${config}): must be one of alert, status, close, http, got "shout"`,
      `--max-connections (set in ${config}): must be an integer from 1 to 10000000, got "lots"`,
    ]);
  });

  test('flag and file problems together, each once', async () => {
    const missingKey = join(pki.dir, 'gone', 'apiserver.key');
    const config = pki.write(
      'mixed.yaml',
      [
        `tls-cert-file: ${pki.files.servingCert}`,
        `tls-private-key-file: ${missingKey}`,
        `client-ca-file: ${pki.files.clientCa}`,
        `crl-file: [${pki.files.crl}]`,
        `upstream-ca-file: ${pki.files.upstreamCa}`,
        `proxy-client-cert-file: ${pki.files.proxyClientCert}`,
        `proxy-client-key-file: ${pki.files.proxyClientKey}`,
        'client-ca: /etc/kubernetes/pki/ca.crt',
        'shutdown-grace: forever',
        '',
      ].join('\n'),
    );
    const args = [
      '--config',
      config,
      '--upstream=http://127.0.0.1:16443',
      '--listen=127.0.0.1:0',
      '--metrics-listen=127.0.0.1:0',
      '--upstreamTimeout=5s',
      '--log-level=loud',
    ];
    const lines = await refused(args);
    assert.deepEqual(lines, [
      '--upstreamTimeout: unknown flag; did you mean --upstream-timeout?',
      `--config: ${config}: unknown key "client-ca"; did you mean client-ca-file?`,
      '--upstream: must be an https:// URL (the apiserver is reached over mTLS), got http:',
      `--shutdown-grace (set in ${config}): "forever" is not a duration (e.g. 500ms, 30s, 5m)`,
      '--log-level: must be one of debug, info, warn, error, got "loud"',
      `--tls-private-key-file (set in ${config}): ${missingKey}: cannot read: no such file`,
    ]);
    // check-config lists the same problems, then their count.
    const checked = await runBin(['check-config', ...args]);
    assert.equal(checked.code, 2);
    assert.deepEqual(problemLines(checked), [...lines, '6 problems; the proxy would not start']);
  });
});
