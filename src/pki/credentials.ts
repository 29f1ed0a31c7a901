/**
 * The proxy's own key material: the serving certificate, the front-proxy-client certificate
 * and the CA bundle that signs the apiserver. Small files, read and checked on the main thread.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import type { InputFiles } from '../config/config.js';
import { errorMessage, InputError } from '../errors.js';
import { extendedKeyUsages } from './certificate.js';
import { readBlocksOf } from './files.js';
import { type PemBlock, toPem } from './pem.js';

export interface Credentials {
  /** Serving chain (leaf first) and key, PEM. */
  readonly servingCertPem: string;
  readonly servingKeyPem: string;
  readonly proxyClientCertPem: string;
  readonly proxyClientKeyPem: string;
  readonly upstreamCaPem: string;
  readonly servingNotAfter: number;
  readonly proxyClientNotAfter: number;
  /** The earliest notAfter of the --upstream-ca-file bundle. */
  readonly upstreamCaNotAfter: number;
  readonly warnings: readonly string[];
}

const KEY_LABELS = ['PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY'];
const ENCRYPTED_KEY_LABEL = 'ENCRYPTED PRIVATE KEY';
const CERT_LABELS = ['CERTIFICATE'];
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const EKU_ANY = '2.5.29.37.0';

interface KeyPair {
  readonly certPem: string;
  readonly keyPem: string;
  readonly leaf: X509Certificate;
}

/** The three credential inputs, each loaded, checked and kept (or refused) on its own. */
type Serving = Pick<
  Credentials,
  'servingCertPem' | 'servingKeyPem' | 'servingNotAfter' | 'warnings'
>;
type ProxyClient = Pick<
  Credentials,
  'proxyClientCertPem' | 'proxyClientKeyPem' | 'proxyClientNotAfter'
>;
type UpstreamCa = Pick<Credentials, 'upstreamCaPem' | 'upstreamCaNotAfter'>;

/** Whether two credentials serve clients with the same certificate chain and key. */
export function sameServing(a: Credentials, b: Credentials): boolean {
  return a.servingCertPem === b.servingCertPem && a.servingKeyPem === b.servingKeyPem;
}

/** Whether two credentials reach the apiserver the same way (front-proxy pair, upstream CA). */
export function sameUpstreamSide(a: Credentials, b: Credentials): boolean {
  return (
    a.proxyClientCertPem === b.proxyClientCertPem &&
    a.proxyClientKeyPem === b.proxyClientKeyPem &&
    a.upstreamCaPem === b.upstreamCaPem
  );
}

/** Loads every credential input; throws the first problem (the first load: nothing to keep). */
export function loadCredentials(files: InputFiles): Credentials {
  const { credentials, problems } = reloadCredentials(files, null);
  const [problem] = problems;
  if (problem !== undefined || credentials === null) throw problem;
  return credentials;
}

/**
 * Loads the serving pair, the front-proxy-client pair and the upstream CA bundle, each on its
 * own: one that is refused keeps its value in `previous` (and is listed in `problems`), so a
 * renewed certificate whose key is not there yet holds back nothing else. `credentials` is null
 * only when an input is refused and nothing is in force to keep.
 */
export function reloadCredentials(
  files: InputFiles,
  previous: Credentials | null,
): { readonly credentials: Credentials | null; readonly problems: readonly InputError[] } {
  const problems: InputError[] = [];
  const attempt = <T>(load: () => T): T | null => {
    try {
      return load();
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      problems.push(err);
      return null;
    }
  };
  const serving = attempt(() => loadServing(files)) ?? previous;
  const proxyClient = attempt(() => loadProxyClient(files)) ?? previous;
  const upstreamCa = attempt(() => loadUpstreamCa(files)) ?? previous;
  if (serving === null || proxyClient === null || upstreamCa === null) {
    return { credentials: null, problems };
  }
  return {
    credentials: {
      servingCertPem: serving.servingCertPem,
      servingKeyPem: serving.servingKeyPem,
      servingNotAfter: serving.servingNotAfter,
      warnings: serving.warnings,
      proxyClientCertPem: proxyClient.proxyClientCertPem,
      proxyClientKeyPem: proxyClient.proxyClientKeyPem,
      proxyClientNotAfter: proxyClient.proxyClientNotAfter,
      upstreamCaPem: upstreamCa.upstreamCaPem,
      upstreamCaNotAfter: upstreamCa.upstreamCaNotAfter,
    },
    problems,
  };
}

function loadServing(files: InputFiles): Serving {
  const warnings: string[] = [];
  const pair = loadKeyPair(
    'tls-cert-file',
    files.tlsCertFile,
    'tls-private-key-file',
    files.tlsPrivateKeyFile,
  );
  checkUsage(
    pair.leaf,
    EKU_SERVER_AUTH,
    'tls-cert-file',
    files.tlsCertFile,
    'serverAuth',
    warnings,
  );
  return {
    servingCertPem: pair.certPem,
    servingKeyPem: pair.keyPem,
    servingNotAfter: Date.parse(pair.leaf.validTo),
    warnings,
  };
}

function loadProxyClient(files: InputFiles): ProxyClient {
  const pair = loadKeyPair(
    'proxy-client-cert-file',
    files.proxyClientCertFile,
    'proxy-client-key-file',
    files.proxyClientKeyFile,
  );
  checkUsage(
    pair.leaf,
    EKU_CLIENT_AUTH,
    'proxy-client-cert-file',
    files.proxyClientCertFile,
    'clientAuth',
    null,
  );
  return {
    proxyClientCertPem: pair.certPem,
    proxyClientKeyPem: pair.keyPem,
    proxyClientNotAfter: Date.parse(pair.leaf.validTo),
  };
}

function loadUpstreamCa(files: InputFiles): UpstreamCa {
  const cas = readCertificates('upstream-ca-file', files.upstreamCaFile);
  return {
    upstreamCaPem: cas.map((c) => c.toString()).join(''),
    upstreamCaNotAfter: Math.min(...cas.map((c) => Date.parse(c.validTo))),
  };
}

function readCertificates(flag: string, file: string): X509Certificate[] {
  return readBlocksOf(flag, file, CERT_LABELS, 'certificate').map((block) => {
    try {
      return new X509Certificate(block.der);
    } catch (err) {
      throw new InputError(flag, file, `unreadable certificate: ${errorMessage(err)}`);
    }
  });
}

function loadKeyPair(
  certFlag: string,
  certFile: string,
  keyFlag: string,
  keyFile: string,
): KeyPair {
  const chain = readCertificates(certFlag, certFile);
  const leaf = chain[0] as X509Certificate;
  const key = readPrivateKey(keyFlag, keyFile);
  if (!leaf.checkPrivateKey(key)) {
    throw new InputError(
      keyFlag,
      keyFile,
      `key does not match the certificate in --${certFlag} (${certFile})`,
    );
  }
  return {
    certPem: chain.map((c) => c.toString()).join(''),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    leaf,
  };
}

/**
 * The first private key of `file`: PKCS#8 (`PRIVATE KEY`), SEC 1 (`EC PRIVATE KEY`) or PKCS#1
 * (`RSA PRIVATE KEY`, as kubeadm writes its keys) in PEM, or PKCS#8 DER. An encrypted key is
 * refused by name rather than reported as missing.
 */
export function readPrivateKey(flag: string, file: string): KeyObject {
  const [block] = readBlocksOf(flag, file, [...KEY_LABELS, ENCRYPTED_KEY_LABEL], 'private key');
  if (block?.label === ENCRYPTED_KEY_LABEL) {
    throw new InputError(flag, file, 'the private key is encrypted; give it unencrypted');
  }
  try {
    // readBlocksOf returns at least one block; DER key files come labelled as PKCS#8.
    return createPrivateKey(toPem((block as PemBlock).label, (block as PemBlock).der));
  } catch (err) {
    throw new InputError(flag, file, `unreadable private key: ${errorMessage(err)}`);
  }
}

/**
 * A certificate with an extendedKeyUsage that lacks the purpose it is used for: fatal for the
 * front-proxy-client (kube-apiserver refuses it), a warning for the serving certificate.
 */
function checkUsage(
  cert: X509Certificate,
  oid: string,
  flag: string,
  file: string,
  name: string,
  warnings: string[] | null,
): void {
  const usages = extendedKeyUsages(cert.raw);
  if (usages === null || usages.includes(oid) || usages.includes(EKU_ANY)) return;
  const problem = `certificate lacks the ${name} extended key usage`;
  if (warnings === null) {
    throw new InputError(
      flag,
      file,
      `${problem}; kube-apiserver's requestheader authentication refuses it`,
    );
  }
  warnings.push(`--${flag}: ${file}: ${problem}; clients may refuse it`);
}
