/**
 * --crl-url with the real binary and a real local CRL server: fetched at start and on its
 * interval (a new revocation cuts open connections; an unchanged CRL costs a 304), ahead of its
 * nextUpdate, and from the cache when the server is down at a restart. Whatever the URL gives
 * that is not a good CRL — no answer, too large, too slow, garbage, forged, older, a server
 * certificate not signed by --crl-url-ca-file — leaves the CRL in force and the cached copy as
 * they were, and an unreachable URL fails closed when its CRL expires.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CheckCertReport } from '../../src/cli/check-cert-command.js';
import {
  Authority,
  type CrlOptions,
  type IssuedCert,
  sequentialSerials,
} from '../../src/demo/pki-factory.js';
import { requestH1 } from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import { allClosed, openH1AndH2 } from '../support/connections.js';
import { CrlServer } from '../support/crl-server.js';
import { proxyArgs } from '../support/pki.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { runBin, scrapeMetric, startProxyProcess } from '../support/proxy-process.js';
import { eventually } from '../support/wait.js';

const cluster = new TestCluster({ anyProxyClientName: true });
let bob: IssuedCert;
let mallory: IssuedCert;
/** Signs the https CRL server's certificate. */
let serverCa: Authority;
let serverCert: IssuedCert;
const servers: CrlServer[] = [];
const cutTimes: string[] = [];

before(async () => {
  await cluster.start();
  bob = await cluster.pki.user('bob', ['ops']);
  mallory = await cluster.pki.user('mallory');
  serverCa = await Authority.create({ commonName: 'crl-server-ca' });
  serverCert = await serverCa.issue({
    commonName: 'crl-server',
    usage: 'server',
    ipAddresses: ['127.0.0.1'],
  });
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  if (cutTimes.length > 0) process.stdout.write(`# crl-url cuts: ${cutTimes.join('; ')}\n`);
  await cluster.stop();
});

async function crlServer(tls?: { cert: string; key: string }): Promise<CrlServer> {
  const server = await CrlServer.start(tls);
  servers.push(server);
  return server;
}

let dirs = 0;
function cacheDir(): string {
  return join(cluster.pki.dir, `cache-${++dirs}`);
}

/** The proxy's flags with `url` as its only CRL source. */
function urlArgs(url: string, cache: string, extra: string[] = []): string[] {
  return proxyArgs(cluster.pki, cluster.fake.url, [
    `--crl-url=${url}`,
    `--crl-cache-dir=${cache}`,
    '--upstream-pool-size=0',
    // Refusals are read here as the 401 Status; test/e2e/tls-alert.test.ts has the TLS alert.
    '--reject-mode=status',
    ...extra,
  ]).filter((a) => !a.startsWith('--crl-file='));
}

async function startProxy(
  url: string,
  cache: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<ProxyProcess> {
  return cluster.stopAfterwards(await startProxyProcess(urlArgs(url, cache, extra), 30_000, env));
}

function crl(options: CrlOptions): Buffer {
  return cluster.pki.clusterCa.crl(options);
}

function revoking(users: IssuedCert[], crlNumber: number, options: CrlOptions = {}): Buffer {
  return crl({ revoked: users.map((u) => ({ serial: u.serial })), crlNumber, ...options });
}

/** The cached copy of `url` in `dir`. */
function cached(dir: string, url: string): Buffer {
  return readFileSync(join(dir, `${createHash('sha256').update(url).digest('hex')}.crl`));
}

async function ask(
  proxy: ProxyProcess,
  cert: IssuedCert,
): Promise<{ code: number; message: string }> {
  try {
    const response = await requestH1(`${proxy.url}/api`, {
      ca: cluster.pki.clusterCa.certPem,
      cert,
    });
    const message =
      response.status === 401 ? (JSON.parse(response.body) as { message: string }).message : '';
    return { code: response.status, message };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') return { code: 0, message: '' };
    throw err;
  }
}

async function code(proxy: ProxyProcess, cert: IssuedCert): Promise<number> {
  return (await ask(proxy, cert)).code;
}

function fetches(proxy: ProxyProcess, result: string): Promise<number> {
  return scrapeMetric(proxy, `kube_crl_proxy_crl_url_fetches_total{result="${result}"}`);
}

function lastFetchOk(proxy: ProxyProcess, url: string): Promise<number> {
  return scrapeMetric(proxy, `kube_crl_proxy_crl_url_last_fetch_success{url="${url}"}`, -1);
}

function crlInputOk(proxy: ProxyProcess): Promise<number> {
  return scrapeMetric(proxy, 'kube_crl_proxy_input_last_reload_success{input="crl"}');
}

describe('--crl-url', () => {
  test('fetched at start and on its interval: a new revocation cuts open connections; an unchanged CRL costs a 304', async () => {
    const server = await crlServer();
    const url = server.url();
    const first = revoking([mallory], 1);
    server.serve(first);
    const cache = cacheDir();
    const proxy = await startProxy(url, cache, ['--crl-url-interval=1s']);
    assert.equal(server.requests[0]?.ifNoneMatch, null, 'the first fetch is not conditional');
    const refused = await ask(proxy, mallory);
    assert.equal(refused.code, 401);
    assert.match(
      refused.message,
      /^client certificate revoked \(serial [0-9A-F]+, issuer CN=kubernetes, revoked /,
    );
    assert.equal(await code(proxy, cluster.alice), 200);
    assert.deepEqual(cached(cache, url), first);
    assert.equal(await fetches(proxy, 'success'), 1);
    assert.equal(await lastFetchOk(proxy, url), 1);

    await eventually(async () => server.count(304) >= 2, 10_000, 'two 304s');
    assert.ok(server.requests.filter((r) => r.status === 304).every((r) => r.ifNoneMatch !== null));
    assert.ok((await fetches(proxy, 'not_modified')) >= 2);
    assert.equal(await fetches(proxy, 'success'), 1, 'a 304 is no new CRL');

    const closed = await openH1AndH2(proxy.url, cluster.pki.clusterCa.certPem, bob);
    const thisUpdate = Math.floor(Date.now() / 1000) * 1000 - 30_000;
    const second = revoking([mallory, bob], 2, { thisUpdate: new Date(thisUpdate) });
    const started = Date.now();
    server.serve(second);
    cutTimes.push(`interval 1s → ${await allClosed(closed, started, 'bob', 10_000)} ms`);
    assert.equal(await code(proxy, bob), 401);
    assert.equal(await code(proxy, cluster.alice), 200);
    assert.deepEqual(cached(cache, url), second);
    assert.equal(await fetches(proxy, 'success'), 2);
    assert.equal(
      await scrapeMetric(
        proxy,
        'kube_crl_proxy_crl_this_update_timestamp_seconds{issuer="CN=kubernetes"}',
      ),
      thisUpdate / 1000,
    );
    await proxy.waitForLog((l) => l.msg === `the CRL fetched from ${url} is in force and cached`);

    // check-cert reads the proxy's cached copy (nothing is fetched) and gives its verdict.
    const served = await ask(proxy, bob);
    await server.close();
    const check = await runBin([
      'check-cert',
      cluster.pki.write('bob-url.crt', bob.certPem),
      `--client-ca-file=${cluster.pki.files.clientCa}`,
      `--crl-url=${url}`,
      `--crl-cache-dir=${cache}`,
      '-o',
      'json',
    ]);
    assert.equal(check.code, 1, check.stderr);
    const report = JSON.parse(check.stdout) as CheckCertReport;
    assert.equal(report.reason, 'revoked');
    assert.equal(report.message, served.message);
    assert.deepEqual(
      report.crls.map((c) => [c.file, c.crlNumber]),
      [[url, '2']],
    );
  });

  test('server down: the CRL in force stays; a restart starts from the cache; no cache is a configuration error', async () => {
    const server = await crlServer();
    const url = server.url();
    server.serve(revoking([mallory], 1));
    const cache = cacheDir();
    const proxy = await startProxy(url, cache, ['--crl-url-interval=1s']);
    const fetchedAt = await scrapeMetric(
      proxy,
      `kube_crl_proxy_crl_url_last_success_timestamp_seconds{url="${url}"}`,
    );
    assert.ok(fetchedAt > 0);
    await server.close();
    await eventually(async () => (await lastFetchOk(proxy, url)) === 0, 10_000, 'fetch fails');
    assert.ok((await fetches(proxy, 'failure')) >= 1);
    await proxy.waitForLog((l) =>
      l.msg.startsWith(`CRL fetch failed, the CRL in force stays: ${url}: `),
    );
    assert.equal(await code(proxy, mallory), 401);
    assert.equal(await code(proxy, cluster.alice), 200);
    await proxy.stop();

    const restarted = await startProxy(url, cache);
    const line = await restarted.waitForLog((l) =>
      l.msg.startsWith(`starting with the cached CRL of ${url}`),
    );
    assert.equal(line.level === 'raw' ? '' : typeof line.fetchedAt, 'string');
    assert.match((await ask(restarted, mallory)).message, /^client certificate revoked/);
    assert.equal(await code(restarted, cluster.alice), 200);
    assert.equal(await fetches(restarted, 'failure'), 1);
    assert.equal(await lastFetchOk(restarted, url), 0);
    assert.equal(
      await scrapeMetric(
        restarted,
        `kube_crl_proxy_crl_url_last_success_timestamp_seconds{url="${url}"}`,
      ),
      fetchedAt,
      'the age of the copy in force survives the restart',
    );

    const empty = cacheDir();
    const result = await runBin(urlArgs(url, empty));
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      new RegExp(`--crl-url: ${url}: .*, and ${empty} holds no copy of it`),
    );
  });

  test('too large or too slow: refused, the copy in force stays', async () => {
    const server = await crlServer();
    const url = server.url();
    const small = revoking([mallory], 1);
    server.serve(small);
    const cache = cacheDir();
    const proxy = await startProxy(url, cache, [
      '--crl-url-interval=1s',
      '--crl-url-max-bytes=4096',
      '--crl-url-timeout=1s',
    ]);
    const big = crl({ revoked: [{ serial: bob.serial }, ...sequentialSerials(300)], crlNumber: 2 });
    assert.ok(big.length > 4096);
    server.serve(big);
    await proxy.waitForLog((l) => /larger than --crl-url-max-bytes=4096/.test(l.msg), 10_000);
    server.serve(revoking([mallory, bob], 2));
    server.behaviour = { kind: 'hang' };
    await proxy.waitForLog(
      (l) => /no complete answer within 1000 ms \(--crl-url-timeout\)/.test(l.msg),
      10_000,
    );
    assert.equal(await code(proxy, bob), 200);
    assert.equal(await code(proxy, mallory), 401);
    assert.deepEqual(cached(cache, url), small);
    assert.equal(await fetches(proxy, 'success'), 1);
  });

  test('garbage, a forged and an older CRL are refused; the cache keeps the last good one, across a restart', async () => {
    const server = await crlServer();
    const url = server.url();
    const good = revoking([mallory], 5);
    server.serve(good);
    const cache = cacheDir();
    const proxy = await startProxy(url, cache, ['--crl-url-interval=1s']);
    const forger = await Authority.create({ commonName: 'kubernetes' });
    const bad: Array<[string, Uint8Array | string, RegExp]> = [
      ['garbage', 'not a CRL\n', new RegExp(`--crl-url: ${url}: contains no CRL`)],
      [
        'forged',
        revoking([bob], 6, { signingKey: forger.cert.privateKey }),
        /CRL signature of "CN=kubernetes" does not verify/,
      ],
      [
        'older',
        revoking([], 3),
        /CRL number 3 of "CN=kubernetes" is lower than the one in force \(5\): refusing a rollback/,
      ],
    ];
    for (const [name, body, problem] of bad) {
      server.serve(body);
      const line = await proxy.waitForLog(
        (l) => l.msg.startsWith('input refused') && l.input === 'crl' && problem.test(l.msg),
        10_000,
      );
      assert.match(line.msg, new RegExp(`--crl-url: ${url}: `), name);
      assert.equal(await crlInputOk(proxy), 0, `${name}: reported`);
      assert.equal(await code(proxy, mallory), 401, `${name}: the CRL in force stays`);
      assert.equal(await code(proxy, bob), 200, `${name}: nothing of it applies`);
      assert.deepEqual(cached(cache, url), good, `${name}: the cache keeps the good CRL`);
      // Still reported on the next fetches (full ones: the validators are the cached copy's).
      const seen = server.count(200);
      await eventually(async () => server.count(200) > seen + 1, 10_000, `${name} fetched again`);
      assert.equal(await crlInputOk(proxy), 0, `${name}: still reported`);
    }
    await proxy.stop();

    // Restarted while the server still offers the older CRL: the cached one is the baseline.
    const restarted = await startProxy(url, cache, ['--crl-url-interval=1s']);
    await restarted.waitForLog(
      (l) => l.msg.startsWith('input refused') && /refusing a rollback/.test(l.msg),
    );
    assert.equal(await code(restarted, mallory), 401);
    assert.deepEqual(cached(cache, url), good);

    const newer = revoking([mallory, bob], 7);
    server.serve(newer);
    await eventually(async () => (await crlInputOk(restarted)) === 1, 10_000, 'accepted again');
    assert.equal(await code(restarted, bob), 401);
    assert.deepEqual(cached(cache, url), newer);
  });

  test('https: verified against --crl-url-ca-file, hostname included; SIGHUP fetches at once; workers enforce', async () => {
    const server = await crlServer({ cert: serverCert.certPem, key: serverCert.keyPem });
    const url = server.url();
    server.serve(revoking([mallory], 1));
    const caFile = cluster.pki.write('crl-server-ca.crt', serverCa.certPem);
    const cache = cacheDir();
    // Two workers: the primary fetches, both enforce.
    const proxy = await startProxy(url, cache, [`--crl-url-ca-file=${caFile}`, '--workers=2']);
    for (let i = 0; i < 4; i++) assert.equal(await code(proxy, mallory), 401);
    server.serve(revoking([mallory, bob], 2));
    proxy.child.kill('SIGHUP');
    await eventually(
      async () => (await code(proxy, bob)) === 401,
      10_000,
      'bob revoked after SIGHUP',
    );
    for (let i = 0; i < 4; i++) assert.equal(await code(proxy, bob), 401);

    const wrongCa = cluster.pki.write('wrong-ca.crt', cluster.pki.clusterCa.certPem);
    const refused = await runBin(urlArgs(url, cacheDir(), [`--crl-url-ca-file=${wrongCa}`]));
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, new RegExp(`--crl-url: ${url}: .*certificate`));

    const named = await serverCa.issue({
      commonName: 'x',
      usage: 'server',
      dnsNames: ['crl.example'],
    });
    const misnamed = await crlServer({ cert: named.certPem, key: named.keyPem });
    misnamed.serve(revoking([], 1));
    const mismatch = await runBin(
      urlArgs(misnamed.url(), cacheDir(), [`--crl-url-ca-file=${caFile}`]),
    );
    assert.equal(mismatch.code, 2);
    assert.match(mismatch.stderr, /IP: 127\.0\.0\.1 is not in the cert's list/);

    const noCa = await runBin(urlArgs(url, cacheDir()));
    assert.equal(noCa.code, 2);
    assert.match(noCa.stderr, /--crl-url-ca-file: is required with an https:\/\/ --crl-url/);
    const noCache = await runBin(
      urlArgs(url, cacheDir(), [`--crl-url-ca-file=${caFile}`]).filter(
        (a) => !a.startsWith('--crl-cache-dir='),
      ),
    );
    assert.equal(noCache.code, 2);
    assert.match(noCache.stderr, /--crl-cache-dir: is required with --crl-url/);
  });

  test('no proxy is taken from the environment', async () => {
    const server = await crlServer();
    server.serve(revoking([mallory], 1));
    const proxy = await startProxy(server.url(), cacheDir(), [], {
      HTTP_PROXY: 'http://127.0.0.1:9',
      HTTPS_PROXY: 'http://127.0.0.1:9',
      http_proxy: 'http://127.0.0.1:9',
      NODE_USE_ENV_PROXY: '1',
    });
    assert.equal(server.count(200), 1);
    assert.equal(await code(proxy, mallory), 401);
  });

  test('fetched ahead of nextUpdate, not only on the interval', async () => {
    const server = await crlServer();
    const url = server.url();
    const now = Date.now();
    // 110 s of life, 20 s left: the last tenth starts in 9 s; the interval is 5 minutes.
    server.serve(
      revoking([mallory], 1, {
        thisUpdate: new Date(now - 90_000),
        nextUpdate: new Date(now + 20_000),
      }),
    );
    const proxy = await startProxy(url, cacheDir(), ['--crl-url-interval=5m']);
    server.serve(revoking([mallory, bob], 2));
    await eventually(
      async () => (await code(proxy, bob)) === 401,
      18_000,
      'fetched before nextUpdate',
    );
    assert.ok(Date.now() < now + 20_000, 'before nextUpdate');
  });

  test('an unreachable URL fails closed when its CRL passes nextUpdate', async () => {
    const server = await crlServer();
    const url = server.url();
    // Whole seconds: CRL times have no fractions.
    const nextUpdate = Math.ceil((Date.now() + 5000) / 1000) * 1000;
    server.serve(
      revoking([], 1, {
        thisUpdate: new Date(Date.now() - 60_000),
        nextUpdate: new Date(nextUpdate),
      }),
    );
    const proxy = await startProxy(url, cacheDir(), ['--crl-url-interval=1s']);
    assert.equal(await code(proxy, cluster.alice), 200);
    await server.close();
    await eventually(
      async () => (await code(proxy, cluster.alice)) === 401,
      15_000,
      'refused after nextUpdate',
    );
    assert.ok(Date.now() >= nextUpdate);
    assert.match(
      (await ask(proxy, cluster.alice)).message,
      /^the CRL of CN=kubernetes, the issuer of the client certificate, expired at /,
    );
  });
});
