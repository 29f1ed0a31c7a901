/**
 * `check-config` runs the real binary: every input loaded once through the proxy's loaders, one
 * line per input with its expiry, exit 0; or every problem, one line each naming the flag and
 * the file, exit 2. It never listens.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { crlPem } from '../../src/demo/pki-factory.js';
import { cachedCopyPath } from '../../src/watcher/crl-url-poller.js';
import { CrlServer } from '../support/crl-server.js';
import { makePki, proxyArgs, type TestPki } from '../support/pki.js';
import { runBin } from '../support/proxy-process.js';

const DAY = 86_400_000;

let pki: TestPki;
let occupied: Server;
let occupiedPort: number;

before(async () => {
  pki = await makePki();
  occupied = createServer();
  await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
  occupiedPort = (occupied.address() as { port: number }).port;
});
after(async () => {
  await new Promise((resolve) => occupied?.close(resolve));
  pki?.cleanup();
});

const args = (extra: string[] = []) => [
  'check-config',
  ...proxyArgs(pki, 'https://127.0.0.1:16443', extra),
];

/** The problem lines of stderr (warnings and the closing count left out). */
function problemLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('kube-crl-proxy: --'))
    .map((l) => l.slice('kube-crl-proxy: '.length));
}

describe('check-config', () => {
  test('a valid configuration: one line per input with its expiry, exit 0, nothing bound', async () => {
    // Both listen addresses are a port this test holds: a check that tried to bind would fail.
    const result = await runBin(
      args([`--listen=127.0.0.1:${occupiedPort}`, `--metrics-listen=127.0.0.1:${occupiedPort}`]),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines.at(-1), 'configuration valid');
    const expires = (date: string) => new Date(date).toISOString().replace('.000Z', 'Z');
    assert.deepEqual(lines.slice(0, -1), [
      `serving: ${pki.files.servingCert} + ${pki.files.servingKey}: CN=kube-crl-proxy, expires ${expires(pki.serving.x509.validTo)}`,
      `front-proxy client: ${pki.files.proxyClientCert} + ${pki.files.proxyClientKey}: CN=front-proxy-client, expires ${expires(pki.frontProxyClient.x509.validTo)}`,
      `upstream CA: ${pki.files.upstreamCa}: CN=kubernetes, expires ${expires(pki.clusterCa.cert.x509.validTo)}`,
      `client CA: ${pki.files.clientCa}: CN=kubernetes, expires ${expires(pki.clusterCa.cert.x509.validTo)}`,
      lines.find((l) =>
        l.startsWith(
          `CRL: ${pki.files.crl}: issuer CN=kubernetes, number 1, 0 revoked, next update `,
        ),
      ),
    ]);
  });

  test('every problem is listed, one line each, naming the flag and the file; exit 2', async () => {
    const dir = join(pki.dir, 'bad');
    mkdirSync(dir, { recursive: true });
    const garbage = join(dir, 'garbage.crt');
    writeFileSync(garbage, 'not a certificate\n');
    const missing = join(dir, 'missing.crl');
    const result = await runBin(
      args([
        '--listen=nowhere',
        '--upstream-timeout=soon',
        // The serving certificate with the front-proxy-client's key, as a renewal half done.
        `--tls-private-key-file=${pki.files.proxyClientKey}`,
        `--client-ca-file=${garbage}`,
        `--crl-file=${missing}`,
      ]),
    );
    assert.equal(result.code, 2, result.stdout);
    assert.deepEqual(problemLines(result.stderr), [
      '--listen: "nowhere" is not host:port (e.g. 0.0.0.0:6443 or [::1]:6443)',
      '--upstream-timeout: "soon" is not a duration (e.g. 500ms, 30s, 5m)',
      `--tls-private-key-file: ${pki.files.proxyClientKey}: key does not match the certificate in --tls-cert-file (${pki.files.servingCert})`,
      `--crl-file: ${missing}: cannot read: no such file`,
      `--client-ca-file: ${garbage}: contains no certificate`,
    ]);
    assert.match(result.stderr, /kube-crl-proxy: 5 problems; the proxy would not start\n$/);
    assert.doesNotMatch(result.stdout, /configuration valid/);
  });

  test('every unreadable credential file is named, not only the first', async () => {
    const gone = (name: string) => join(pki.dir, 'gone', name);
    const result = await runBin(
      args([
        `--tls-cert-file=${gone('apiserver.crt')}`,
        `--proxy-client-key-file=${gone('front-proxy-client.key')}`,
      ]),
    );
    assert.equal(result.code, 2);
    assert.deepEqual(problemLines(result.stderr), [
      `--tls-cert-file: ${gone('apiserver.crt')}: cannot read: no such file`,
      `--proxy-client-key-file: ${gone('front-proxy-client.key')}: cannot read: no such file`,
    ]);
  });

  test('each CRL file is checked on its own, then all of them under --crl-missing-policy', async () => {
    const other = await pki.clusterCa.issue({ commonName: 'not-a-ca' });
    const dir = join(pki.dir, 'crls');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'a-cert-not-a-crl.crl'), other.certPem);
    writeFileSync(join(dir, 'b-empty.crl'), '');
    const result = await runBin(args([`--crl-file=${dir}`]));
    assert.equal(result.code, 2);
    assert.deepEqual(problemLines(result.stderr), [
      `--crl-file: ${join(dir, 'a-cert-not-a-crl.crl')}: contains no CRL (PEM "X509 CRL" block or DER)`,
      `--crl-file: ${join(dir, 'b-empty.crl')}: is empty`,
      '--crl-file: no CRL for CA "CN=kubernetes" of --client-ca-file, so its certificates are refused (--crl-missing-policy=reject); add its CRL or set --crl-missing-policy=allow',
    ]);

    const noCrl = join(pki.dir, 'empty-dir');
    mkdirSync(noCrl, { recursive: true });
    const missing = await runBin(args([`--crl-file=${noCrl}`]));
    assert.equal(missing.code, 2);
    assert.deepEqual(problemLines(missing.stderr), [
      '--crl-file: no CRL for CA "CN=kubernetes" of --client-ca-file, so its certificates are refused (--crl-missing-policy=reject); add its CRL or set --crl-missing-policy=allow',
    ]);
    const allowed = await runBin(args([`--crl-file=${noCrl}`, '--crl-missing-policy=allow']));
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stderr, /warning: no CRL for CA "CN=kubernetes"/);
  });

  test('a stale CRL starts the proxy, with a warning saying what the policy does', async () => {
    const now = Date.now();
    const stale = pki.write(
      'stale.crl',
      crlPem(
        pki.clusterCa.crl({
          revoked: [],
          crlNumber: 2,
          thisUpdate: new Date(now - 8 * DAY),
          nextUpdate: new Date(now - DAY),
        }),
      ),
    );
    const result = await runBin(args([`--crl-file=${stale}`]));
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /warning: .*stale\.crl: CRL of "CN=kubernetes" expired at .* \(--crl-expired-policy=reject: its CA's certificates are refused until a fresh CRL is loaded\)/,
    );
  });

  test('an unreadable key is named; a value from --config says so', async () => {
    if (process.getuid?.() === 0) {
      // Root reads any file (CAP_DAC_OVERRIDE): test/deploy/systemd.test.ts checks the unit's
      // capability-less root instead.
    } else {
      const key = pki.write('unreadable.key', pki.serving.keyPem);
      chmodSync(key, 0);
      const result = await runBin(args([`--tls-private-key-file=${key}`]));
      assert.deepEqual(problemLines(result.stderr), [
        `--tls-private-key-file: ${key}: cannot read: permission denied`,
      ]);
    }
    const config = pki.write(
      'check.yaml',
      [
        `tls-cert-file: ${pki.files.servingCert}`,
        `tls-private-key-file: ${join(pki.dir, 'nope.key')}`,
        `client-ca-file: ${pki.files.clientCa}`,
        `crl-file: [${pki.files.crl}]`,
        'upstream: https://127.0.0.1:16443',
        `upstream-ca-file: ${pki.files.upstreamCa}`,
        `proxy-client-cert-file: ${pki.files.proxyClientCert}`,
        `proxy-client-key-file: ${pki.files.proxyClientKey}`,
        '',
      ].join('\n'),
    );
    const fromFile = await runBin(['check-config', '--config', config]);
    assert.equal(fromFile.code, 2);
    assert.deepEqual(problemLines(fromFile.stderr), [
      `--tls-private-key-file (set in ${config}): ${join(pki.dir, 'nope.key')}: cannot read: no such file`,
    ]);
    const typed = await runBin([
      'check-config',
      '--config',
      config,
      `--tls-private-key-file=${join(pki.dir, 'typed.key')}`,
    ]);
    assert.deepEqual(problemLines(typed.stderr), [
      `--tls-private-key-file: ${join(pki.dir, 'typed.key')}: cannot read: no such file`,
    ]);
  });

  test('the deny file, through the proxy reader', async () => {
    const deny = pki.write('check-deny.yaml', '- {user: alice}\n- {group: contractors}\n');
    const good = await runBin(args([`--deny-file=${deny}`]));
    assert.equal(good.code, 0, good.stderr);
    assert.ok(good.stdout.split('\n').includes(`deny file: ${deny}: 2 entries`));
    const bad = pki.write('check-deny-bad.yaml', '- {user: alice, colour: red}\n');
    const refused = await runBin(args([`--deny-file=${bad}`]));
    assert.equal(refused.code, 2);
    assert.deepEqual(problemLines(refused.stderr), [
      `--deny-file: ${bad}: entry 1: unknown key "colour" (keys: user, group, serial (with issuer), fingerprint, spki, reason, until)`,
    ]);
  });

  test('each --crl-url fetched once (its cache untouched), or its cached copy when the fetch fails', async () => {
    const server = await CrlServer.start();
    const url = server.url();
    const cache = join(pki.dir, 'check-cache');
    const urlArgs = (extra: string[] = []) =>
      args([
        `--crl-url=${url}`,
        `--crl-cache-dir=${cache}`,
        '--crl-url-timeout=2s',
        ...extra,
      ]).filter((a) => !a.startsWith('--crl-file='));
    try {
      server.serve(pki.clusterCa.crl({ crlNumber: 4 }));
      const fetched = await runBin(urlArgs());
      assert.equal(fetched.code, 0, fetched.stderr);
      assert.ok(
        fetched.stdout
          .split('\n')
          .some((l) => l.startsWith(`CRL: ${url}: issuer CN=kubernetes, number 4, 0 revoked`)),
        fetched.stdout,
      );
      assert.equal(server.count(200), 1);
      assert.ok(!existsSync(cache), 'the cache is the proxy’s: not created');

      server.behaviour = { kind: 'status', status: 503 };
      const down = await runBin(urlArgs());
      assert.equal(down.code, 2);
      assert.deepEqual(problemLines(down.stderr), [
        `--crl-url: ${url}: HTTP 503, and ${cache} holds no copy of it`,
        '--crl-file: no CRL for CA "CN=kubernetes" of --client-ca-file, so its certificates are refused (--crl-missing-policy=reject); add its CRL or set --crl-missing-policy=allow',
      ]);

      mkdirSync(cache, { recursive: true });
      writeFileSync(cachedCopyPath(cache, url), pki.clusterCa.crl({ crlNumber: 3 }));
      const fromCopy = await runBin(urlArgs());
      assert.equal(fromCopy.code, 0, fromCopy.stderr);
      assert.match(
        fromCopy.stderr,
        new RegExp(
          `warning: --crl-url: ${url}: HTTP 503; the proxy would start from its cached copy`,
        ),
      );
      assert.ok(fromCopy.stdout.includes(`CRL: ${url}: issuer CN=kubernetes, number 3`));
    } finally {
      await server.close();
    }
  });

  test('a misspelt subcommand is refused, never run as the proxy', async () => {
    const result = await runBin(['check-confg', ...proxyArgs(pki, 'https://127.0.0.1:16443')]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
  });
});
