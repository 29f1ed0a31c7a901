/**
 * --deny-file with the real binary: each selector refuses its clients with a 401 Status naming
 * the entry and its reason; a change cuts the open HTTP/1.1 and HTTP/2 connections it now
 * refuses; `[]`, removing the entry and `until` give access back; a file that cannot be used
 * keeps the list in force; cluster workers enforce it too; check-cert gives the same verdict.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { CheckCertReport } from '../../src/cli/check-cert-command.js';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { readCertificateFields } from '../../src/pki/certificate.js';
import { requestH1 } from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import { allClosed, openH1AndH2 } from '../support/connections.js';
import { atomicWrite, proxyArgs } from '../support/pki.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { runBin, scrapeMetric, startProxyProcess } from '../support/proxy-process.js';
import { eventually } from '../support/wait.js';

const cluster = new TestCluster({ anyProxyClientName: true });
let bob: IssuedCert;
let carol: IssuedCert;
/** carol's key certified again (another serial). */
let carolAgain: IssuedCert;
let files = 0;
/** Time from the deny file's write to the last open connection closing (reported). */
const cutTimes: string[] = [];

before(async () => {
  await cluster.start();
  bob = await cluster.pki.user('bob', ['ops', 'contractors']);
  carol = await cluster.pki.user('carol');
  carolAgain = await cluster.pki.user('carol', [], { keyOf: carol });
});

after(async () => {
  if (cutTimes.length > 0) process.stdout.write(`# deny cuts: ${cutTimes.join('; ')}\n`);
  await cluster.stop();
});

async function startProxy(
  denyYaml: string,
  extra: string[] = [],
): Promise<{ proxy: ProxyProcess; deny: string }> {
  const deny = cluster.pki.write(`deny-${++files}.yaml`, denyYaml);
  const proxy = await startProxyProcess(
    proxyArgs(cluster.pki, cluster.fake.url, [
      `--deny-file=${deny}`,
      '--upstream-pool-size=0',
      // Refusals are read here as the 401 Status; test/e2e/tls-alert.test.ts has the TLS alert.
      '--reject-mode=status',
      ...extra,
    ]),
  );
  return { proxy: cluster.stopAfterwards(proxy), deny };
}

/** Status and Status message of one request on a fresh connection. */
async function ask(
  proxy: ProxyProcess,
  cert: IssuedCert,
): Promise<{ code: number; message: string }> {
  const response = await requestH1(`${proxy.url}/api`, { ca: cluster.pki.clusterCa.certPem, cert });
  const message =
    response.status === 401 ? (JSON.parse(response.body) as { message: string }).message : '';
  return { code: response.status, message };
}

async function code(proxy: ProxyProcess, cert: IssuedCert): Promise<number> {
  try {
    return (await ask(proxy, cert)).code;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') return 0;
    throw err;
  }
}

function denyOk(proxy: ProxyProcess): Promise<number> {
  return scrapeMetric(proxy, 'kube_crl_proxy_input_last_reload_success{input="deny"}');
}

const DENIED = 'kube_crl_proxy_handshakes_total{outcome="rejected",reason="denied"}';
const CUT = 'kube_crl_proxy_revoked_connections_closed_total';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('--deny-file', () => {
  test('each selector refuses its clients with a Status naming the entry; open h1 and h2 connections are cut', async () => {
    const { proxy, deny } = await startProxy('[]\n');
    assert.equal(
      await scrapeMetric(proxy, DENIED, -1),
      0,
      'the denied series exists from the start',
    );
    assert.equal(await denyOk(proxy), 1);
    const spki = sha256(readCertificateFields(carol.der).subjectPublicKeyInfo);
    const issuer = 'CN=kubernetes';
    const cases: Array<{ name: string; yaml: string; who: IssuedCert; message: string }> = [
      {
        name: 'user',
        yaml: '- {user: alice, reason: laptop stolen 2026-12-07}',
        who: cluster.alice,
        message:
          'client certificate denied by --deny-file entry 1 (user alice): laptop stolen 2026-12-07',
      },
      {
        name: 'group',
        yaml: '- {user: nobody}\n- {group: contractors}',
        who: bob,
        message: 'client certificate denied by --deny-file entry 2 (group contractors)',
      },
      {
        name: 'serial',
        yaml: `- {serial: "${bob.serial.toLowerCase()}", issuer: "${issuer}", reason: INC-7}`,
        who: bob,
        message: `client certificate denied by --deny-file entry 1 (serial ${bob.serial}, issuer ${issuer}): INC-7`,
      },
      {
        name: 'fingerprint',
        yaml: `- {fingerprint: ${sha256(cluster.alice.der)}}`,
        who: cluster.alice,
        message: `client certificate denied by --deny-file entry 1 (fingerprint ${sha256(cluster.alice.der)})`,
      },
      {
        name: 'spki',
        yaml: `- {spki: ${spki}, reason: key leaked}`,
        who: carol,
        message: `client certificate denied by --deny-file entry 1 (spki ${spki}): key leaked`,
      },
    ];
    for (const c of cases) {
      const closed = await openH1AndH2(proxy.url, cluster.pki.clusterCa.certPem, c.who);
      const cutBefore = await scrapeMetric(proxy, CUT);
      const deniedBefore = await scrapeMetric(proxy, DENIED);
      const started = Date.now();
      atomicWrite(deny, `${c.yaml}\n`);
      cutTimes.push(`${c.name} → ${await allClosed(closed, started, c.name)} ms`);
      assert.deepEqual(await ask(proxy, c.who), { code: 401, message: c.message }, c.name);
      assert.equal(
        await code(proxy, cluster.pki.frontProxyClient),
        401,
        'an unknown CA stays refused',
      );
      const others = [cluster.alice, bob, carol].filter((u) => u !== c.who);
      for (const other of others)
        assert.equal(await code(proxy, other), 200, `${c.name}: others pass`);
      assert.equal(await scrapeMetric(proxy, CUT), cutBefore + 2, `${c.name}: cuts counted`);
      assert.ok((await scrapeMetric(proxy, DENIED)) > deniedBefore, `${c.name}: handshake counted`);
      const logged = proxy.logs.find(
        (l) => l.msg === `closing open connections: ${c.message}` && l.reason === 'denied',
      );
      assert.ok(logged !== undefined, `${c.name}: the cut is logged with the rule`);
      atomicWrite(deny, '[]\n');
      await eventually(async () => (await code(proxy, c.who)) === 200, 5000, `${c.name} lifted`);
    }
    // The spki entry also refuses a certificate re-issued for the same key.
    atomicWrite(deny, `- {spki: ${spki}}\n`);
    await eventually(async () => (await code(proxy, carolAgain)) === 401, 5000, 'carol again');
    assert.equal(await code(proxy, carol), 401);
  });

  test('removing the entry, and an until that passes, give access back', async () => {
    const { proxy, deny } = await startProxy('- {user: alice}\n- {group: ops}\n');
    assert.equal(await code(proxy, cluster.alice), 401);
    assert.equal(await code(proxy, bob), 401);
    atomicWrite(deny, '- {group: ops}\n');
    await eventually(async () => (await code(proxy, cluster.alice)) === 200, 5000, 'alice back');
    assert.equal(await code(proxy, bob), 401);

    const until = new Date(Date.now() + 6000).toISOString();
    atomicWrite(deny, `- {group: ops, until: "${until}", reason: until the review}\n`);
    const message = `client certificate denied by --deny-file entry 1 (group ops, until ${until}): until the review`;
    await eventually(
      async () => (await ask(proxy, bob)).message === message,
      5000,
      'the until entry in force',
    );
    await eventually(async () => (await code(proxy, bob)) === 200, 10_000, 'bob back after until');
    assert.ok(Date.now() >= Date.parse(until), 'not before until');
  });

  test('a file that cannot be used keeps the list in force, reported; a fixed file applies', async () => {
    const { proxy, deny } = await startProxy('- {user: alice, reason: locked}\n');
    assert.equal(await code(proxy, cluster.alice), 401);
    const faults: Array<[string, () => void, RegExp]> = [
      ['garbage', () => atomicWrite(deny, 'not: [valid\n'), /is not valid YAML/],
      [
        'two selectors',
        () => atomicWrite(deny, '- {user: bob}\n- {user: a, group: b}\n'),
        /entry 2: has user and group/,
      ],
      ['empty', () => atomicWrite(deny, ''), /holds no list/],
      ['deleted', () => unlinkSync(deny), /cannot read: no such file/],
    ];
    for (const [name, breakIt, problem] of faults) {
      breakIt();
      await eventually(async () => (await denyOk(proxy)) === 0, 5000, `${name}: deny refused`);
      const line = await proxy.waitForLog(
        (l) => l.msg.startsWith('input refused') && l.input === 'deny' && problem.test(l.msg),
      );
      assert.match(line.msg, /^input refused, its last good value stays in force: --deny-file: /);
      assert.equal(await code(proxy, cluster.alice), 401, `${name}: the list in force stays`);
      assert.equal(await code(proxy, bob), 200, `${name}: nothing of the refused file applies`);
      atomicWrite(deny, '- {user: alice, reason: locked}\n');
      await eventually(async () => (await denyOk(proxy)) === 1, 5000, `${name}: fixed`);
    }
  });

  test('a missing deny file at start is a configuration error', async () => {
    const result = await runBin(
      proxyArgs(cluster.pki, cluster.fake.url, [`--deny-file=${cluster.pki.dir}/absent.yaml`]),
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--deny-file: .*absent\.yaml: cannot read: no such file/);
    const bad = cluster.pki.write('bad-deny.yaml', '- {user: a, colour: red}\n');
    const refused = await runBin(proxyArgs(cluster.pki, cluster.fake.url, [`--deny-file=${bad}`]));
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--deny-file: .*bad-deny\.yaml: entry 1: unknown key "colour"/);
  });

  test('cluster workers enforce the list and its changes', async () => {
    const { proxy, deny } = await startProxy('- {user: alice}\n', ['--workers=2']);
    for (let i = 0; i < 6; i++) assert.equal(await code(proxy, cluster.alice), 401);
    const closed = await openH1AndH2(proxy.url, cluster.pki.clusterCa.certPem, bob);
    atomicWrite(deny, '- {group: ops}\n');
    cutTimes.push(`workers=2 → ${await allClosed(closed, Date.now(), 'workers')} ms`);
    for (let i = 0; i < 6; i++) {
      assert.equal(await code(proxy, bob), 401);
      assert.equal(await code(proxy, cluster.alice), 200);
    }
  });

  test('check-cert --deny-file gives the proxy verdict and message', async () => {
    const yaml = `- {user: nobody}\n- {fingerprint: ${sha256(bob.der)}, reason: parity}\n`;
    const { proxy, deny } = await startProxy(yaml);
    const served = await ask(proxy, bob);
    assert.equal(served.code, 401);
    const certFile = cluster.pki.write('bob-check.crt', bob.certPem);
    const args = [
      'check-cert',
      certFile,
      `--client-ca-file=${cluster.pki.files.clientCa}`,
      `--crl-file=${cluster.pki.files.crl}`,
      `--deny-file=${deny}`,
      '-o',
      'json',
    ];
    const result = await runBin(args);
    assert.equal(result.code, 1, result.stderr);
    const report = JSON.parse(result.stdout) as CheckCertReport;
    assert.equal(report.reason, 'denied');
    assert.equal(report.message, served.message);
    assert.equal(report.denyFile, deny);
    const text = await runBin(args.slice(0, -2));
    assert.match(
      text.stdout,
      /^refused \(denied\): client certificate denied by --deny-file entry 2/,
    );
    const aliceFile = cluster.pki.write('alice-check.crt', cluster.alice.certPem);
    const accepted = await runBin([...args.slice(0, 1), aliceFile, ...args.slice(2)]);
    assert.equal(accepted.code, 0, accepted.stderr);
    const aliceReport = JSON.parse(accepted.stdout) as CheckCertReport;
    assert.equal(
      aliceReport.certificate.spkiSha256,
      sha256(readCertificateFields(cluster.alice.der).subjectPublicKeyInfo),
    );
    const bad = cluster.pki.write('bad-check.yaml', '- {user: a, until: tomorrow}\n');
    const refused = await runBin([...args.slice(0, 4), `--deny-file=${bad}`]);
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /the proxy would not start: --deny-file: .*entry 1: until "tomorrow"/,
    );
  });
});
