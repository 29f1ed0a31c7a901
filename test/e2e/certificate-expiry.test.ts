/**
 * Certificate expiry, as the runbooks of the expiry alerts (docs/operating.md) describe it:
 * kube_crl_proxy_certificate_expiry_timestamp_seconds gives each input's notAfter, and when a
 * certificate in force has expired, what a user sees — kubectl refusing an expired serving
 * certificate, the apiserver answering 401 to everything forwarded with an expired
 * front-proxy-client certificate, the certificates of an expired client CA refused, and 503s
 * with /readyz failing when the CA that signs the apiserver has expired. The proxy loads an
 * expired certificate like any other: these are states a running proxy reaches by itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFakeApiserver } from '../../src/demo/fake-apiserver/index.js';
import { Authority, crlPem, type IssuedCert } from '../../src/demo/pki-factory.js';
import {
  type KubectlEnv,
  requestH1,
  runKubectl,
  TempDir,
  writeKubeconfig,
} from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import { type ProxyProcess, scrapeMetric } from '../support/proxy-process.js';
import { eventually } from '../support/wait.js';

const DAY_MS = 86_400_000;
const SERVER = { usage: 'server', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] } as const;

const cluster = new TestCluster();
let tmp: TempDir;
const now = Date.now();
/** Valid from 30 days ago until yesterday. */
const EXPIRED = { notBefore: new Date(now - 30 * DAY_MS), notAfter: new Date(now - DAY_MS) };
/** Valid from 300 days ago for 60 more days. */
const VALID_NOW = {
  notBefore: new Date(now - 300 * DAY_MS),
  notAfter: new Date(now + 60 * DAY_MS),
};

/** A CA valid from 400 days ago until yesterday. */
function expiredCa(commonName: string): Promise<Authority> {
  return Authority.create({
    commonName,
    notBefore: new Date(now - 400 * DAY_MS),
    notAfter: EXPIRED.notAfter,
  });
}

before(async () => {
  await cluster.start();
  tmp = await TempDir.create('kcp-expiry-');
});

after(async () => {
  await tmp?.remove();
  await cluster.stop();
});

let files = 0;
/** Writes a pair into the PKI dir; returns the flags that name it. */
function pairFlags(certFlag: string, keyFlag: string, pair: IssuedCert): string[] {
  const n = ++files;
  return [
    `--${certFlag}=${cluster.pki.write(`expiry-${n}.crt`, pair.certPem)}`,
    `--${keyFlag}=${cluster.pki.write(`expiry-${n}.key`, pair.keyPem)}`,
  ];
}

function start(extra: string[], upstream?: string): Promise<ProxyProcess> {
  // Refusals are read here as the 401 Status; test/e2e/tls-alert.test.ts has the TLS alert.
  return cluster.proxy(['--reject-mode=status', ...extra], upstream);
}

function expiry(proxy: ProxyProcess, input: string): Promise<number> {
  return scrapeMetric(
    proxy,
    `kube_crl_proxy_certificate_expiry_timestamp_seconds{input="${input}"}`,
    Number.NaN,
  );
}

/** notAfter as the metric has it: X.509 times have whole seconds. */
const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

let envs = 0;
async function kubectl(proxy: ProxyProcess, user: IssuedCert, args: string[]) {
  const n = ++envs;
  const env: KubectlEnv = {
    kubeconfig: await writeKubeconfig(
      tmp,
      proxy.url,
      cluster.pki.clusterCa.certPem,
      { cert: user },
      `kc-${n}`,
    ),
    cacheDir: tmp.file(`cache-${n}`),
    home: tmp.path,
  };
  return runKubectl(env, args);
}

async function get(proxy: ProxyProcess, cert: IssuedCert) {
  return requestH1(`${proxy.url}/api/v1/namespaces/default/pods`, {
    ca: cluster.pki.clusterCa.certPem,
    cert,
  });
}

describe('certificate expiry', () => {
  test('the metric has the notAfter of each input (the earliest CA of each bundle)', async () => {
    const servingNotAfter = new Date(now + 20 * DAY_MS);
    const proxyClientNotAfter = new Date(now + 45 * DAY_MS);
    const opsNotAfter = new Date(now + 100 * DAY_MS);
    const serving = await cluster.pki.clusterCa.issue({
      commonName: 'kube-crl-proxy',
      ...SERVER,
      notAfter: servingNotAfter,
    });
    const proxyClient = await cluster.pki.frontProxyCa.issue({
      commonName: 'front-proxy-client',
      notAfter: proxyClientNotAfter,
    });
    const opsCa = await Authority.create({ commonName: 'ops-ca', notAfter: opsNotAfter });
    const proxy = await start([
      ...pairFlags('tls-cert-file', 'tls-private-key-file', serving),
      ...pairFlags('proxy-client-cert-file', 'proxy-client-key-file', proxyClient),
      `--client-ca-file=${cluster.pki.write('expiry-bundle.crt', cluster.pki.clusterCa.certPem + opsCa.certPem)}`,
      `--crl-file=${cluster.pki.files.crl}`,
      `--crl-file=${cluster.pki.write('expiry-ops.crl', crlPem(opsCa.crl({})))}`,
    ]);
    assert.equal(await expiry(proxy, 'serving'), seconds(servingNotAfter));
    assert.equal(await expiry(proxy, 'proxy-client'), seconds(proxyClientNotAfter));
    assert.equal(await expiry(proxy, 'client-ca'), seconds(opsNotAfter));
    const clusterCaNotAfter = new Date(cluster.pki.clusterCa.cert.x509.validTo);
    assert.equal(await expiry(proxy, 'upstream-ca'), seconds(clusterCaNotAfter));
  });

  test('an expired serving certificate: kubectl refuses to connect', async () => {
    const serving = await cluster.pki.clusterCa.issue({
      commonName: 'kube-crl-proxy',
      ...SERVER,
      ...EXPIRED,
    });
    const proxy = await start(pairFlags('tls-cert-file', 'tls-private-key-file', serving));
    assert.ok((await expiry(proxy, 'serving')) < Date.now() / 1000);
    const result = await kubectl(proxy, cluster.alice, ['get', 'pods']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /x509: certificate has expired or is not yet valid/);
  });

  test('an expired front-proxy-client certificate: the apiserver answers 401 to everything forwarded; /readyz stays 200', async () => {
    const proxyClient = await cluster.pki.frontProxyCa.issue({
      commonName: 'front-proxy-client',
      ...EXPIRED,
    });
    const proxy = await start(
      pairFlags('proxy-client-cert-file', 'proxy-client-key-file', proxyClient),
    );
    assert.ok((await expiry(proxy, 'proxy-client')) < Date.now() / 1000);
    const result = await kubectl(proxy, cluster.alice, ['get', 'pods']);
    assert.equal(result.code, 1);
    // With a cold discovery cache kubectl prints client-go's generic text for a 401.
    assert.match(result.stderr, /the server has asked for the client to provide credentials/);
    assert.equal((await get(proxy, cluster.alice)).status, 401);
    assert.equal((await fetch(`${proxy.adminUrl}/readyz`)).status, 200);
  });

  test('an expired CA in --client-ca-file: its certificates are refused as cert_expired, the others served', async () => {
    const oldCa = await expiredCa('old-ca');
    const bob = await oldCa.issue({
      commonName: 'bob',
      ...VALID_NOW,
    });
    const proxy = await start([
      `--client-ca-file=${cluster.pki.write('expiry-old-bundle.crt', cluster.pki.clusterCa.certPem + oldCa.certPem)}`,
      `--crl-file=${cluster.pki.files.crl}`,
      `--crl-file=${cluster.pki.write('expiry-old.crl', crlPem(oldCa.crl({})))}`,
    ]);
    assert.equal(await expiry(proxy, 'client-ca'), seconds(EXPIRED.notAfter));
    assert.equal((await get(proxy, bob)).status, 401);
    const line = await proxy.waitForLog((l) => l.subject === 'CN=bob');
    assert.equal(line.reason, 'cert_expired');
    // bob's own certificate is valid: the message names the CA, not bob's expiry date.
    assert.equal(
      line.msg,
      "a CA certificate of the client certificate's chain has expired (subject CN=bob, issuer CN=old-ca)",
    );
    assert.equal((await get(proxy, cluster.alice)).status, 200);
  });

  test('an expired CA of --upstream-ca-file that signs the apiserver: 503, tls errors, /readyz 503', async () => {
    const upstreamCa = await expiredCa('apiserver-ca');
    const apiserver = await upstreamCa.issue({
      commonName: 'kube-apiserver',
      ...SERVER,
      ...VALID_NOW,
    });
    const other = await startFakeApiserver({
      tls: { cert: apiserver.certPem, key: apiserver.keyPem },
      clientCA: cluster.pki.clusterCa.certPem,
      requestheader: { clientCA: cluster.pki.frontProxyCa.certPem },
    });
    try {
      const proxy = await start(
        [`--upstream-ca-file=${cluster.pki.write('expiry-upstream-ca.crt', upstreamCa.certPem)}`],
        other.url,
      );
      assert.equal(await expiry(proxy, 'upstream-ca'), seconds(EXPIRED.notAfter));
      const res = await get(proxy, cluster.alice);
      assert.equal(res.status, 503);
      assert.match(res.body, /certificate has expired/);
      assert.ok(
        (await scrapeMetric(proxy, 'kube_crl_proxy_upstream_errors_total{kind="tls"}')) > 0,
      );
      const readyz = await fetch(`${proxy.adminUrl}/readyz`);
      assert.equal(readyz.status, 503);
      assert.match(await readyz.text(), /certificate has expired/);
      await eventually(
        async () => (await scrapeMetric(proxy, 'kube_crl_proxy_ready')) === 0,
        10_000,
        'kube_crl_proxy_ready 0',
      );
    } finally {
      await other.close();
    }
  });
});
