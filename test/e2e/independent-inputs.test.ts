/**
 * No single bad input freezes revocation (issue 17): each input — client CA bundle, CRLs,
 * serving pair, front-proxy-client pair, upstream CA, deny file — is loaded and kept on its
 * own. For each
 * fault, a CRL change made while the fault is in place must still revoke a user with open
 * connections: new handshakes refused, open HTTP/1.1 and HTTP/2 connections cut, in the usual
 * time; the faulty input keeps its last good value (new connections and upstream connections
 * still work) and is reported by its own metric until it is fixed.
 */
import assert from 'node:assert/strict';
import { unlinkSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Authority, crlPem, type IssuedCert } from '../../src/demo/pki-factory.js';
import { requestH1 } from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import { allClosed, openH1AndH2 } from '../support/connections.js';
import { atomicWrite, proxyArgs, type TestPki } from '../support/pki.js';
import { type ProxyProcess, scrapeMetric, startProxyProcess } from '../support/proxy-process.js';
import { eventually } from '../support/wait.js';

const cluster = new TestCluster({ anyProxyClientName: true });
let bob: IssuedCert;
/** Denied by every setup's deny file: the list in force must hold through every fault. */
let mallory: IssuedCert;
/** Time from the CRL write to bob's open connections being cut, per fault (reported). */
const cutTimes: string[] = [];

before(async () => {
  await cluster.start();
  bob = await cluster.pki.user('bob', ['ops']);
  mallory = await cluster.pki.user('mallory', ['ops']);
});

after(async () => {
  if (cutTimes.length > 0) process.stdout.write(`# fault matrix: ${cutTimes.join('; ')}\n`);
  await cluster.stop();
});

/** Each fault gets its own proxy and its own copy of every input file. */
interface Setup {
  readonly proxy: ProxyProcess;
  readonly otherCa: Authority;
  readonly files: TestPki['files'] & { readonly otherCrl: string; readonly deny: string };
  crlNumber: number;
}

let setups = 0;
const DENY_MALLORY = '- {user: mallory, reason: locked}\n';

async function setUp(): Promise<Setup> {
  const n = ++setups;
  // A second CA with its own CRL file, so a fault in one CRL file can be set beside a change of
  // another.
  const otherCa = await Authority.create({ commonName: `other-ca-${n}` });
  const files = {
    clientCa: cluster.pki.write(`ind-${n}-ca.crt`, cluster.pki.clusterCa.certPem + otherCa.certPem),
    crl: cluster.pki.write(`ind-${n}-ca.crl`, crlPem(cluster.pki.clusterCa.crl({ crlNumber: 1 }))),
    otherCrl: cluster.pki.write(`ind-${n}-other.crl`, crlPem(otherCa.crl({ crlNumber: 1 }))),
    servingCert: cluster.pki.write(`ind-${n}-serving.crt`, cluster.pki.serving.certPem),
    servingKey: cluster.pki.write(`ind-${n}-serving.key`, cluster.pki.serving.keyPem),
    upstreamCa: cluster.pki.write(`ind-${n}-upstream-ca.crt`, cluster.pki.clusterCa.certPem),
    proxyClientCert: cluster.pki.write(`ind-${n}-fpc.crt`, cluster.pki.frontProxyClient.certPem),
    proxyClientKey: cluster.pki.write(`ind-${n}-fpc.key`, cluster.pki.frontProxyClient.keyPem),
    deny: cluster.pki.write(`ind-${n}-deny.yaml`, DENY_MALLORY),
  };
  const own: Record<string, string> = {
    'client-ca-file': files.clientCa,
    'tls-cert-file': files.servingCert,
    'tls-private-key-file': files.servingKey,
    'upstream-ca-file': files.upstreamCa,
    'proxy-client-cert-file': files.proxyClientCert,
    'proxy-client-key-file': files.proxyClientKey,
  };
  const args = proxyArgs(cluster.pki, cluster.fake.url, [
    '--upstream-pool-size=0',
    `--deny-file=${files.deny}`,
    // Refusals are read here as the 401 Status; test/e2e/tls-alert.test.ts has the TLS alert.
    '--reject-mode=status',
  ]).flatMap((a) => {
    const name = a.slice(2, a.indexOf('='));
    if (name === 'crl-file') return [`--crl-file=${files.crl}`, `--crl-file=${files.otherCrl}`];
    return own[name] === undefined ? [a] : [`--${name}=${own[name]}`];
  });
  const proxy = cluster.stopAfterwards(await startProxyProcess(args));
  return { proxy, otherCa, files, crlNumber: 1 };
}

async function status(proxy: ProxyProcess, cert: IssuedCert): Promise<number> {
  try {
    return (await requestH1(`${proxy.url}/api`, { ca: cluster.pki.clusterCa.certPem, cert }))
      .status;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') return 0;
    throw err;
  }
}

function inputOk(proxy: ProxyProcess, input: string): Promise<number> {
  return scrapeMetric(proxy, `kube_crl_proxy_input_last_reload_success{input="${input}"}`);
}

/**
 * Breaks one input, then revokes bob while it is broken; checks that the revocation applied
 * to new and open connections, that the broken input is reported and keeps its last good
 * value, and that it recovers when fixed.
 */
async function revokeWhileBroken(
  label: string,
  input: string,
  breakIt: (s: Setup) => void | Promise<void>,
  fixIt: (s: Setup) => void,
): Promise<void> {
  const s = await setUp();
  const { proxy } = s;
  assert.equal(await status(proxy, bob), 200);
  const closed = await openH1AndH2(proxy.url, cluster.pki.clusterCa.certPem, bob);
  await breakIt(s);
  await eventually(async () => (await inputOk(proxy, input)) === 0, 5000, `${input} refused`);
  // The last good value of the broken input still serves: a new connection (and, with no
  // upstream pool, a new upstream connection) for alice.
  assert.equal(await status(proxy, cluster.alice), 200, `${label}: alice still served`);
  assert.equal(await status(proxy, mallory), 401, `${label}: the deny list in force holds`);

  const started = Date.now();
  atomicWrite(
    s.files.crl,
    crlPem(
      cluster.pki.clusterCa.crl({ revoked: [{ serial: bob.serial }], crlNumber: ++s.crlNumber }),
    ),
  );
  const cutMs = await allClosed(closed, started, `${label}: bob's`);
  cutTimes.push(`${label} → cut in ${cutMs} ms`);
  assert.equal(await status(proxy, bob), 401, `${label}: bob refused on a new connection`);
  assert.equal(await status(proxy, cluster.alice), 200, `${label}: alice still served`);
  assert.equal(await status(proxy, mallory), 401, `${label}: mallory still denied`);
  if (input !== 'crl') {
    assert.equal(await inputOk(proxy, 'crl'), 1, `${label}: the CRL input was accepted`);
  }
  assert.equal(await inputOk(proxy, input), 0, `${label}: ${input} still reported refused`);
  const line = proxy.logs.find((l) => l.msg.startsWith('input refused') && l.input === input);
  assert.ok(line !== undefined, `${label}: the refusal is logged with its input`);

  fixIt(s);
  await eventually(async () => (await inputOk(proxy, input)) === 1, 5000, `${input} recovers`);
  assert.equal(await status(proxy, cluster.alice), 200);
  assert.equal(await status(proxy, bob), 401);
}

describe('a CRL change applies while another input is refused', () => {
  test('the front-proxy-client certificate renewed, its key not (kubeadm certs renew + a stale key copy)', async () => {
    const renewed = await cluster.pki.frontProxyCa.issue({
      commonName: 'front-proxy-client',
      usage: 'client',
    });
    await revokeWhileBroken(
      'proxy-client key mismatch',
      'proxy-client',
      (s) => atomicWrite(s.files.proxyClientCert, renewed.certPem),
      (s) => atomicWrite(s.files.proxyClientKey, renewed.keyPem),
    );
  });

  test('the serving certificate deleted', async () => {
    await revokeWhileBroken(
      'serving certificate deleted',
      'serving',
      (s) => unlinkSync(s.files.servingCert),
      (s) => atomicWrite(s.files.servingCert, cluster.pki.serving.certPem),
    );
  });

  test('the serving key replaced by another key', async () => {
    const stranger = await cluster.pki.user('key-donor');
    await revokeWhileBroken(
      'serving key replaced',
      'serving',
      (s) => atomicWrite(s.files.servingKey, stranger.keyPem),
      (s) => atomicWrite(s.files.servingKey, cluster.pki.serving.keyPem),
    );
  });

  test('the upstream CA bundle turned to garbage', async () => {
    await revokeWhileBroken(
      'upstream CA garbage',
      'upstream-ca',
      (s) => atomicWrite(s.files.upstreamCa, 'not a certificate\n'),
      (s) => atomicWrite(s.files.upstreamCa, cluster.pki.clusterCa.certPem),
    );
  });

  test('the client CA bundle truncated', async () => {
    const pem = cluster.pki.clusterCa.certPem;
    await revokeWhileBroken(
      'client CA truncated',
      'client-ca',
      (s) => atomicWrite(s.files.clientCa, pem.slice(0, pem.length / 2)),
      (s) => atomicWrite(s.files.clientCa, pem),
    );
  });

  test('the deny file turned to garbage', async () => {
    await revokeWhileBroken(
      'deny file garbage',
      'deny',
      (s) => atomicWrite(s.files.deny, '- {user: mallory\n'),
      (s) => atomicWrite(s.files.deny, DENY_MALLORY),
    );
  });

  test("another CA's CRL file turned to garbage", async () => {
    await revokeWhileBroken(
      'other CRL garbage',
      'crl',
      (s) => atomicWrite(s.files.otherCrl, 'garbage\n'),
      (s) => atomicWrite(s.files.otherCrl, crlPem(s.otherCa.crl({ crlNumber: 2 }))),
    );
  });
});
