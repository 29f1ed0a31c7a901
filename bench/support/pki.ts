/**
 * The suite's PKI: the test PKI (cluster CA, front-proxy CA and client, serving certs, CRL)
 * plus the files HAProxy and nginx want and the client certificates the load presents.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { crlPem, type IssuedCert, randomSerials } from '../../src/demo/pki-factory.js';
import { makePki, type TestPki } from '../../test/support/pki.js';
import { trackDir } from './processes.js';

export interface ClientCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly serial: string;
}

export interface BenchPki {
  readonly test: TestPki;
  /** CA that signs the serving certificates of the proxies and of the upstreams. */
  readonly servingCaFile: string;
  readonly upstreamCertFile: string;
  readonly upstreamKeyFile: string;
  readonly frontProxyCaFile: string;
  /** Serving cert + key in one PEM (HAProxy's `crt`). */
  readonly haproxyServingPem: string;
  /** front-proxy-client cert + key in one PEM (HAProxy's server `crt`). */
  readonly frontProxyClientPem: string;
  /** A good user of the cluster CA (CN=bench-user, O=bench-group): the load through proxies. */
  readonly user: ClientCert;
  /** front-proxy-client: what the direct path presents to an upstream that trusts only it. */
  readonly frontProxyClient: ClientCert;
  /** A fresh user certificate of the cluster CA (to be revoked by a scenario). */
  newUser(name: string): Promise<ClientCert>;
  /** The cluster CA's CRL (PEM, next CRL number): `count` random 16-byte serials (as CAs issue them) plus `extra`. */
  buildCrl(count: number, extra?: readonly string[]): string;
  /** Replaces the CRL file the proxies read (write then rename: never half a file). */
  installCrl(pem: string): void;
  /** Writes the new CRL beside the file; the returned function renames it into place. */
  stageCrl(pem: string): () => void;
  cleanup(): void;
}

export async function makeBenchPki(): Promise<BenchPki> {
  const test = await makePki();
  trackDir(test.dir);
  const clientCert = (name: string, issued: IssuedCert): ClientCert => ({
    certFile: test.write(`${name}.crt`, issued.certPem),
    keyFile: test.write(`${name}.key`, issued.keyPem),
    certPem: issued.certPem,
    keyPem: issued.keyPem,
    serial: issued.serial,
  });
  const user = clientCert('bench-user', await test.user('bench-user', ['bench-group']));
  let crlNumber = 1;
  const stageCrl = (pem: string) => {
    const staged = `${test.files.crl}.staged`;
    writeFileSync(staged, pem);
    return () => renameSync(staged, test.files.crl);
  };
  return {
    test,
    servingCaFile: test.files.clientCa,
    upstreamCertFile: test.write('upstream.crt', test.apiserver.certPem),
    upstreamKeyFile: test.write('upstream.key', test.apiserver.keyPem),
    frontProxyCaFile: test.write('front-proxy-ca.crt', test.frontProxyCa.certPem),
    haproxyServingPem: test.write(
      'haproxy-serving.pem',
      test.serving.certPem + test.serving.keyPem,
    ),
    frontProxyClientPem: test.write(
      'front-proxy-client.pem',
      test.frontProxyClient.certPem + test.frontProxyClient.keyPem,
    ),
    user,
    frontProxyClient: clientCert('front-proxy-client-load', test.frontProxyClient),
    newUser: async (name) => clientCert(name, await test.user(name, ['bench-group'])),
    buildCrl(count, extra = []) {
      crlNumber++;
      const revoked = [...randomSerials(count), ...extra.map((serial) => ({ serial }))];
      return crlPem(test.clusterCa.crl({ revoked, crlNumber }));
    },
    installCrl(pem) {
      stageCrl(pem)();
    },
    stageCrl,
    cleanup: () => test.cleanup(),
  };
}
