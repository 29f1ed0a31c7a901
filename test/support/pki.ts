/**
 * A complete test PKI written to a temp dir: the cluster CA (client certs and serving certs),
 * the front-proxy CA and client, serving certs for the proxy and the fake apiserver, a CRL.
 * Made in code with the product's own factory; removed by cleanup().
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Authority,
  type CertOptions,
  type CrlOptions,
  crlPem,
  type IssuedCert,
} from '../../src/demo/pki-factory.js';

export interface TestPki {
  readonly dir: string;
  readonly clusterCa: Authority;
  readonly frontProxyCa: Authority;
  readonly apiserver: IssuedCert;
  readonly serving: IssuedCert;
  readonly frontProxyClient: IssuedCert;
  /** Paths of the proxy's input files. */
  readonly files: {
    readonly clientCa: string;
    readonly crl: string;
    readonly servingCert: string;
    readonly servingKey: string;
    readonly upstreamCa: string;
    readonly proxyClientCert: string;
    readonly proxyClientKey: string;
  };
  /** Writes `content` to `name` in the PKI dir and returns the path. */
  write(name: string, content: string | Uint8Array): string;
  /** Issues a client certificate of the cluster CA. */
  user(commonName: string, organizations?: string[], options?: CertOptions): Promise<IssuedCert>;
  /** Rewrites the CRL file of the cluster CA. */
  writeCrl(options: CrlOptions): void;
  cleanup(): void;
}

export async function makePki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'kcp-pki-'));
  const write = (name: string, content: string | Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  const clusterCa = await Authority.create({ commonName: 'kubernetes' });
  const frontProxyCa = await Authority.create({ commonName: 'front-proxy-ca' });
  const server = {
    usage: 'server' as const,
    ipAddresses: ['127.0.0.1', '::1'],
    dnsNames: ['localhost'],
  };
  const apiserver = await clusterCa.issue({ commonName: 'kube-apiserver', ...server });
  const serving = await clusterCa.issue({ commonName: 'kube-crl-proxy', ...server });
  const frontProxyClient = await frontProxyCa.issue({ commonName: 'front-proxy-client' });
  const crlFile = join(dir, 'ca.crl');
  const writeCrl = (options: CrlOptions) => writeFileSync(crlFile, crlPem(clusterCa.crl(options)));
  writeCrl({ revoked: [], crlNumber: 1 });
  return {
    dir,
    clusterCa,
    frontProxyCa,
    apiserver,
    serving,
    frontProxyClient,
    files: {
      clientCa: write('ca.crt', clusterCa.certPem),
      crl: crlFile,
      servingCert: write('serving.crt', serving.certPem),
      servingKey: write('serving.key', serving.keyPem),
      upstreamCa: write('apiserver-ca.crt', clusterCa.certPem),
      proxyClientCert: write('front-proxy-client.crt', frontProxyClient.certPem),
      proxyClientKey: write('front-proxy-client.key', frontProxyClient.keyPem),
    },
    write,
    user: (commonName, organizations = [], options = {}) =>
      clusterCa.issue({ commonName, organizations, ...options }),
    writeCrl,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A test PKI and alice (O=dev, O=ops): a file's before() makes them, its after() cleans up. */
export async function makePkiWithAlice(): Promise<{ pki: TestPki; alice: IssuedCert }> {
  const pki = await makePki();
  return { pki, alice: await pki.user('alice', ['dev', 'ops']) };
}

/** The proxy's flags for this PKI and an upstream URL; `extra` flags win over these. */
export function proxyArgs(pki: TestPki, upstream: string, extra: string[] = []): string[] {
  const base = [
    '--listen=127.0.0.1:0',
    '--metrics-listen=127.0.0.1:0',
    `--tls-cert-file=${pki.files.servingCert}`,
    `--tls-private-key-file=${pki.files.servingKey}`,
    `--client-ca-file=${pki.files.clientCa}`,
    `--crl-file=${pki.files.crl}`,
    `--upstream=${upstream}`,
    `--upstream-ca-file=${pki.files.upstreamCa}`,
    `--proxy-client-cert-file=${pki.files.proxyClientCert}`,
    `--proxy-client-key-file=${pki.files.proxyClientKey}`,
    // Tests stop proxies with open connections; a long drain would only slow them down.
    '--shutdown-grace=1s',
  ];
  const named = (flag: string) =>
    flag.slice(0, flag.indexOf('=') >= 0 ? flag.indexOf('=') : undefined);
  const overridden = new Set(extra.map(named));
  return [...base.filter((flag) => !overridden.has(named(flag))), ...extra];
}

let atomicWrites = 0;

/** Write-then-rename, as CRL publishing tools should: no reader ever sees a half-written file. */
export function atomicWrite(path: string, content: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${++atomicWrites}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}
