/**
 * `kube-crl-proxy demo`: a first run with nothing to prepare. Makes a throwaway PKI (cluster
 * CA, a good user with two groups, a revoked user, front-proxy CA and client), starts the
 * embedded fake apiserver and the real proxy in front of it, writes one kubeconfig per user
 * and prints the kubectl commands to try. Ctrl-C stops everything and removes the files.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../config/config.js';
import { createLogger } from '../log.js';
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
  const alice = await clusterCa.issue({
    commonName: 'alice',
    organizations: ['developers', 'oncall'],
  });
  const mallory = await clusterCa.issue({ commonName: 'mallory', organizations: ['developers'] });
  const crl = clusterCa.crl({ revoked: [{ serial: mallory.serial, reason: 1 }], crlNumber: 1 });

  const fake = await startFakeApiserver({
    tls: { cert: apiserverCert.certPem, key: apiserverCert.keyPem },
    clientCA: clusterCa.certPem,
    requestheader: { clientCA: frontProxyCa.certPem, allowedNames: ['front-proxy-client'] },
  });
  fake.addNode('worker-1', { roles: [] });
  fake.addPod('web-1');

  const logFile = join(dir, 'proxy.log');
  const config = resolveConfig({
    listen: `127.0.0.1:${options.port}`,
    'metrics-listen': '127.0.0.1:0',
    'tls-cert-file': file('proxy.crt', proxyServing.certPem),
    'tls-private-key-file': file('proxy.key', proxyServing.keyPem),
    'client-ca-file': file('ca.crt', clusterCa.certPem),
    'crl-file': [file('ca.crl', crlPem(crl))],
    upstream: fake.url,
    'upstream-ca-file': file('apiserver-ca.crt', clusterCa.certPem),
    'proxy-client-cert-file': file('front-proxy-client.crt', frontProxyClient.certPem),
    'proxy-client-key-file': file('front-proxy-client.key', frontProxyClient.keyPem),
    'log-level': 'info',
    'shutdown-grace': '1s',
  });
  const proxy = await startSingle(config, createLogger('info', logFile));
  const server = `https://127.0.0.1:${proxy.address.port}`;
  const users: DemoUser[] = [
    {
      name: 'alice',
      cert: alice,
      kubeconfig: file(
        'alice.kubeconfig',
        kubeconfigFor(server, clusterCa.certPem, 'alice', { cert: alice }),
      ),
    },
    {
      name: 'mallory',
      cert: mallory,
      kubeconfig: file(
        'mallory.kubeconfig',
        kubeconfigFor(server, clusterCa.certPem, 'mallory', { cert: mallory }),
      ),
    },
  ];
  const cache = join(dir, 'kube-cache');
  const [good, revoked] = users as [DemoUser, DemoUser];
  process.stdout.write(
    [
      '',
      `kube-crl-proxy demo: proxy on ${server} in front of a fake kube-apiserver on ${fake.url}`,
      `  files in ${dir} (proxy log: ${logFile})`,
      `  alice   (O=developers, O=oncall)  serial ${good.cert.serial}  — good`,
      `  mallory (O=developers)            serial ${revoked.cert.serial}  — revoked in ca.crl`,
      '',
      'Try, in another terminal:',
      `  export KUBECACHEDIR=${cache}`,
      `  kubectl --kubeconfig ${good.kubeconfig} get nodes`,
      `  kubectl --kubeconfig ${good.kubeconfig} auth whoami`,
      `  kubectl --kubeconfig ${good.kubeconfig} get pods -w      # Ctrl-C to stop`,
      `  kubectl --kubeconfig ${revoked.kubeconfig} get --raw /api   # refused: revoked`,
      `  kubectl --kubeconfig ${revoked.kubeconfig} get nodes`,
      `  curl -s http://127.0.0.1:${proxy.adminAddress.port}/metrics | grep kube_crl_proxy_handshakes_total`,
      '',
      'Ctrl-C stops the demo and removes its files.',
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
