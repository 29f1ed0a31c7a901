/**
 * docs/revocation.md, run as written: two "control-plane nodes" (two proxies, each with its
 * configuration file, its deny file and its CRL directory) and alice, whose certificate leaked.
 * Deny at once, revoke on one node, copy the CRL to the other, check, renew — with the real
 * binary for every command and the real kubectl as alice.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify as toYaml } from 'yaml';
import { newKubectlEnv, runKubectl, TempDir } from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import {
  BIN,
  type ExitResult,
  type ProxyProcess,
  scrapeMetric,
  startProxyProcess,
} from '../support/proxy-process.js';

const cluster = new TestCluster({ anyProxyClientName: true });
let tmp: TempDir;

/** One control-plane node: its proxy, configuration, deny file and CRL directory. */
interface Node {
  readonly proxy: ProxyProcess;
  readonly config: string;
  readonly denyFile: string;
  readonly crlDir: string;
}

/** The binary, as the doc's commands run it (the test's node first on PATH). */
function kubeCrlProxy(args: string[]): Promise<ExitResult> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : Number(err.code ?? 1), stdout, stderr });
    });
  });
}

async function startNode(name: string): Promise<Node> {
  const denyFile = cluster.pki.write(`${name}-deny.yaml`, '[]\n');
  const crlDir = join(cluster.pki.dir, `${name}-crl`);
  mkdirSync(crlDir);
  writeFileSync(join(crlDir, 'ca.crl'), readFileSync(cluster.pki.files.crl));
  const config = cluster.pki.write(
    `${name}-config.yaml`,
    toYaml({
      listen: '127.0.0.1:0',
      'metrics-listen': '127.0.0.1:0',
      'tls-cert-file': cluster.pki.files.servingCert,
      'tls-private-key-file': cluster.pki.files.servingKey,
      'client-ca-file': cluster.pki.files.clientCa,
      'crl-file': [crlDir],
      'deny-file': denyFile,
      upstream: cluster.fake.url,
      'upstream-ca-file': cluster.pki.files.upstreamCa,
      'proxy-client-cert-file': cluster.pki.files.proxyClientCert,
      'proxy-client-key-file': cluster.pki.files.proxyClientKey,
      'shutdown-grace': '1s',
    }),
  );
  const proxy = cluster.stopAfterwards(await startProxyProcess([`--config=${config}`]));
  return { proxy, config, denyFile, crlDir };
}

/** alice's HTTP/2 connection, open until the proxy closes it; `closed` resolves with when. */
async function openSession(node: Node): Promise<{ closed: Promise<number> }> {
  const session = await new Promise<ClientHttp2Session>((resolve, reject) => {
    const s = h2connect(node.proxy.url, {
      ca: cluster.pki.clusterCa.certPem,
      cert: cluster.alice.certPem,
      key: cluster.alice.keyPem,
    });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  session.on('error', () => {});
  // Wrapped: an async function returning a promise would wait for it.
  return { closed: new Promise((resolve) => session.once('close', () => resolve(Date.now()))) };
}

/** The line kubectl ends with for alice (a cold cache each time, as on her stolen laptop). */
async function kubectlAsAlice(node: Node): Promise<string> {
  const env = await newKubectlEnv(tmp, node.proxy.url, cluster.pki.clusterCa.certPem, {
    cert: cluster.alice,
  });
  const result = await runKubectl(env, ['get', 'pods']);
  assert.notEqual(result.code, 0);
  return result.stderr.trim().split('\n').at(-1) ?? '';
}

before(async () => {
  await cluster.start();
  tmp = await TempDir.create('kcp-walkthrough-');
});

after(async () => {
  await tmp?.remove();
  await cluster.stop();
});

describe('docs/revocation.md, step by step', () => {
  test('deny at once, revoke on one node, copy to the other, check, renew', async () => {
    const node1 = await startNode('node1');
    const node2 = await startNode('node2');
    const aliceFile = cluster.pki.write('alice.crt', cluster.alice.certPem);

    // 1. Deny at once: the spki that check-cert prints, written as a copy and renamed.
    const checked = await kubeCrlProxy(['check-cert', aliceFile, `--config=${node1.config}`]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /^accepted: forwarded as user "alice" with groups "dev"/);
    const spki = /spkiSha256: ([0-9a-f]{64})/.exec(checked.stdout)?.[1];
    assert.ok(spki !== undefined, checked.stdout);
    for (const node of [node1, node2]) {
      const { closed } = await openSession(node);
      const written = Date.now();
      writeFileSync(
        `${node.denyFile}.new`,
        `- { spki: "${spki}", reason: "laptop stolen 2026-12-07, ticket 4711" }\n`,
      );
      renameSync(`${node.denyFile}.new`, node.denyFile);
      const cutAfter = (await closed) - written;
      assert.ok(cutAfter < 1000, `open connection closed ${cutAfter} ms after the deny entry`);
      assert.equal(
        await kubectlAsAlice(node),
        'Unable to connect to the server: remote error: tls: access denied',
      );
    }

    // 2. Revoke on node1, with the CA key.
    const crl1 = join(node1.crlDir, 'ca.crl');
    const signWith = [
      '--ca-cert',
      cluster.pki.files.clientCa,
      '--ca-key',
      cluster.pki.write('ca.key', cluster.pki.clusterCa.cert.keyPem),
      '--crl',
      crl1,
    ];
    const revoked = await kubeCrlProxy([
      'crl',
      'revoke',
      aliceFile,
      '--reason',
      'keyCompromise',
      ...signWith,
    ]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`^revoked ${cluster.alice.serial} \\(`));

    // 3. Copy to node2: a name starting with "." in its CRL directory, then renamed.
    const hidden = join(node2.crlDir, '.ca.crl.new');
    writeFileSync(hidden, readFileSync(crl1));
    renameSync(hidden, join(node2.crlDir, 'ca.crl'));

    // 4. Check, on each node. The deny entry goes: revoked stays revoked.
    for (const node of [node1, node2]) {
      writeFileSync(`${node.denyFile}.new`, '[]\n');
      renameSync(`${node.denyFile}.new`, node.denyFile);
      const result = await kubeCrlProxy(['check-cert', aliceFile, `--config=${node.config}`]);
      assert.equal(result.code, 1);
      assert.match(
        result.stdout,
        new RegExp(
          `^refused \\(revoked\\): client certificate revoked \\(serial ${cluster.alice.serial}, issuer CN=kubernetes, revoked `,
        ),
      );
      let printed = '';
      for (let i = 0; i < 50 && !printed.endsWith('revoked certificate'); i++) {
        printed = await kubectlAsAlice(node);
      }
      assert.equal(
        printed,
        'Unable to connect to the server: remote error: tls: revoked certificate',
      );
      assert.equal(
        await scrapeMetric(node.proxy, 'kube_crl_proxy_crl_entries{issuer="CN=kubernetes"}'),
        1,
      );
      assert.equal(
        await scrapeMetric(node.proxy, 'kube_crl_proxy_input_last_reload_success{input="crl"}'),
        1,
      );
    }
    const listed = await kubeCrlProxy(['crl', 'list', crl1]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.includes(cluster.alice.serial), listed.stdout);

    // 5. Renew: the same entry, a later nextUpdate, a higher number.
    const before = await kubeCrlProxy(['crl', 'list', crl1, '-o', 'json']);
    const renewed = await kubeCrlProxy(['crl', 'renew', ...signWith]);
    assert.equal(renewed.code, 0, renewed.stderr);
    const after = await kubeCrlProxy(['crl', 'list', crl1, '-o', 'json']);
    type Listed = { crlNumber: string; nextUpdate: string; entries: { serial: string }[] };
    const [was, is] = [before, after].map(
      (r) => (JSON.parse(r.stdout) as { crls: Listed[] }).crls[0],
    );
    assert.ok(was !== undefined && is !== undefined);
    assert.ok(BigInt(is.crlNumber) > BigInt(was.crlNumber));
    assert.ok(Date.parse(is.nextUpdate) >= Date.parse(was.nextUpdate));
    assert.deepEqual(
      is.entries.map((e) => e.serial),
      was.entries.map((e) => e.serial),
    );
  });
});
