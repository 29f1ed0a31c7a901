/**
 * `kube-crl-proxy demo`: a first run with nothing to prepare. Makes a throwaway PKI (cluster
 * CA with its key, users, front-proxy CA and client), starts the embedded fake apiserver and
 * the real proxy in front of it (its configuration, CRL and deny file in the demo directory),
 * writes one kubeconfig per user and prints the commands to try, including the revocation of
 * alice with `crl revoke` and the denial of bob with the deny file (docs/revocation.md).
 * Ctrl-C stops everything and removes the files.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { loadConfigFile } from '../config/sources.js';
import { createLogger } from '../log.js';
import { readCertificateFields } from '../pki/certificate.js';
import { startSingle } from '../run/single.js';
import { startFakeApiserver } from './fake-apiserver/index.js';
import { kubeconfigFor } from './kubeconfig.js';
import { Authority, crlPem, type IssuedCert } from './pki-factory.js';

export interface DemoOptions {
  readonly port: number;
}

export interface DemoUser {
  readonly name: string;
  readonly cert: IssuedCert;
  readonly kubeconfig: string;
}

/** The binary of this package, as a user runs it from a shell. */
const BIN = fileURLToPath(new URL('../../../bin/kube-crl-proxy', import.meta.url));

/** What kubectl prints for a certificate the proxy refuses with a TLS alert (README). */
const REVOKED = 'Unable to connect to the server: remote error: tls: revoked certificate';
const DENIED = 'Unable to connect to the server: remote error: tls: access denied';

/** `word` as one shell word: printed lines are pasted into a shell as they are. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

function commandLine(...words: string[]): string {
  return words.map(shellWord).join(' ');
}

function spkiSha256(cert: IssuedCert): string {
  return createHash('sha256')
    .update(readCertificateFields(cert.der).subjectPublicKeyInfo)
    .digest('hex');
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kube-crl-proxy-demo-'));
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };

  const clusterCa = await Authority.create({ commonName: 'kubernetes' });
  const frontProxyCa = await Authority.create({ commonName: 'front-proxy-ca' });
  const apiserverCert = await clusterCa.issue({
    commonName: 'kube-apiserver',
    usage: 'server',
    ipAddresses: ['127.0.0.1'],
    dnsNames: ['localhost'],
  });
  const proxyServing = await clusterCa.issue({
    commonName: 'kube-crl-proxy',
    usage: 'server',
    ipAddresses: ['127.0.0.1'],
    dnsNames: ['localhost'],
  });
  const frontProxyClient = await frontProxyCa.issue({
    commonName: 'front-proxy-client',
    usage: 'client',
  });
  const people = [
    { name: 'alice', commonName: 'alice', organizations: ['developers', 'oncall'] },
    { name: 'bob', commonName: 'bob', organizations: ['developers'] },
    { name: 'admin', commonName: 'kubernetes-admin', organizations: ['system:masters'] },
    { name: 'mallory', commonName: 'mallory', organizations: ['developers'] },
  ];
  const certs = await Promise.all(people.map((p) => clusterCa.issue(p)));
  const mallory = certs[3] as IssuedCert;
  const crl = clusterCa.crl({ revoked: [{ serial: mallory.serial, reason: 1 }], crlNumber: 1 });

  const fake = await startFakeApiserver({
    tls: { cert: apiserverCert.certPem, key: apiserverCert.keyPem },
    clientCA: clusterCa.certPem,
    requestheader: { clientCA: frontProxyCa.certPem, allowedNames: ['front-proxy-client'] },
  });
  fake.addNode('worker-1', { roles: [] });
  fake.addPod('web-1');

  const caCert = file('ca.crt', clusterCa.certPem);
  const caKey = file('ca.key', clusterCa.cert.keyPem);
  const crlFile = file('ca.crl', crlPem(crl));
  const denyFile = file('deny.yaml', '[]\n');
  const configFile = file(
    'config.yaml',
    toYaml({
      listen: `127.0.0.1:${options.port}`,
      'metrics-listen': '127.0.0.1:0',
      'tls-cert-file': file('proxy.crt', proxyServing.certPem),
      'tls-private-key-file': file('proxy.key', proxyServing.keyPem),
      'client-ca-file': caCert,
      'crl-file': [crlFile],
      'deny-file': denyFile,
      upstream: fake.url,
      'upstream-ca-file': file('apiserver-ca.crt', clusterCa.certPem),
      'proxy-client-cert-file': file('front-proxy-client.crt', frontProxyClient.certPem),
      'proxy-client-key-file': file('front-proxy-client.key', frontProxyClient.keyPem),
      'log-level': 'info',
      'shutdown-grace': '1s',
    }),
  );
  const logFile = join(dir, 'proxy.log');
  // The proxy reads the file the demo's check-cert line names, as an operator's would.
  const proxy = await startSingle(loadConfigFile(configFile), createLogger('info', logFile));
  const server = `https://127.0.0.1:${proxy.address.port}`;
  const users = people.map((p, i): DemoUser => {
    const cert = certs[i] as IssuedCert;
    file(`${p.name}.crt`, cert.certPem);
    const kubeconfig = kubeconfigFor(server, clusterCa.certPem, p.commonName, { cert });
    return { name: p.name, cert, kubeconfig: file(`${p.name}.kubeconfig`, kubeconfig) };
  });
  const [alice, bob, admin, revoked] = users as [DemoUser, DemoUser, DemoUser, DemoUser];
  const kubectl = (user: DemoUser, ...args: string[]) =>
    commandLine('kubectl', '--kubeconfig', user.kubeconfig, ...args);
  const subjects = people.map((p) =>
    [
      ...(p.commonName === p.name ? [] : [`CN=${p.commonName}`]),
      ...p.organizations.map((o) => `O=${o}`),
    ].join(', '),
  );
  const width = Math.max(...subjects.map((s) => s.length)) + 4;
  const who = (user: DemoUser, index: number) =>
    `  ${user.name.padEnd(8)}${`(${subjects[index]})`.padEnd(width)}serial ${user.cert.serial}`;
  const denyLine = `- { spki: "${spkiSha256(bob.cert)}", reason: "demo: laptop stolen" }`;
  process.stdout.write(
    [
      '',
      `kube-crl-proxy demo: proxy on ${server} in front of a fake kube-apiserver on ${fake.url}`,
      `  files in ${dir}: ca.crt, ca.key, ca.crl, deny.yaml, config.yaml, proxy.log, <user>.kubeconfig`,
      `${who(alice, 0)}`,
      `${who(bob, 1)}`,
      `${who(admin, 2)}`,
      `${who(revoked, 3)}  revoked in ca.crl`,
      '',
      'Try, in another terminal:',
      `  export KUBECACHEDIR=${shellWord(join(dir, 'kube-cache'))}`,
      `  ${kubectl(alice, 'auth', 'whoami')}`,
      `  ${kubectl(revoked, 'get', 'pods')}`,
      `  curl -s http://127.0.0.1:${proxy.adminAddress.port}/metrics | grep kube_crl_proxy_handshakes_total`,
      '',
      'Revoke alice while she watches. In a second terminal, leave her watch running:',
      `  ${kubectl(alice, 'get', 'pods', '-w')}`,
      'Here, sign a CRL that lists her certificate, with the CA key:',
      `  ${commandLine(BIN, 'crl', 'revoke', join(dir, 'alice.crt'), '--reason', 'keyCompromise', '--ca-cert', caCert, '--ca-key', caKey, '--crl', crlFile)}`,
      'Her watch ends with',
      `    Failure   Unauthorized   client certificate revoked (serial ${alice.cert.serial}, issuer CN=kubernetes, revoked …)`,
      'her next command (auth whoami above) with',
      `    ${REVOKED}`,
      'and the proxy\'s verdict on her certificate is "refused (revoked)":',
      `  ${commandLine(BIN, 'check-cert', join(dir, 'alice.crt'), '--config', configFile)}`,
      '',
      "Deny bob at once, without the CA key: his key's SHA-256 into the deny file, written then renamed:",
      `  echo ${shellWord(denyLine)} > ${shellWord(`${denyFile}.new`)} && mv ${shellWord(`${denyFile}.new`)} ${shellWord(denyFile)}`,
      "bob's next command",
      `  ${kubectl(bob, 'get', 'pods')}`,
      'fails with',
      `    ${DENIED}`,
      'while the admin still gets in:',
      `  ${kubectl(admin, 'get', 'pods')}`,
      '',
      'docs/revocation.md tells the whole story. Ctrl-C stops the demo and removes its files.',
      '',
    ].join('\n'),
  );

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stdout.write('\nstopping the demo...\n');
  await proxy.close();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`removed ${dir}\n`);
  process.exit(0);
}
