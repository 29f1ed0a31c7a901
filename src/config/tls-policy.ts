/**
 * The client-facing TLS policy: `--tls-min-version` and `--tls-cipher-suites`, spelled as
 * kube-apiserver takes them (k8s.io/component-base/cli/flag/ciphersuites_flag.go: Go's
 * `VersionTLS1x` constants and the IANA names of crypto/tls), validated into what OpenSSL
 * takes. kube-apiserver's own defaults are Go's: Kubernetes 1.32 is built with Go 1.23.
 */
import { ConfigError } from '../errors.js';

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

export interface TlsPolicy {
  readonly minVersion: TlsMinVersion;
  /** The TLS 1.2 suites in force (IANA names), in the order the server prefers them. */
  readonly cipherSuites: readonly string[];
  /** Node's `ciphers` option: those suites by their OpenSSL names, then the TLS 1.3 suites. */
  readonly ciphers: string;
}

interface Suite {
  readonly iana: string;
  readonly openssl: string;
}

/**
 * The TLS 1.2 suites accepted, each with its OpenSSL name, in Go 1.23's
 * `cipherSuitesPreferenceOrder` (crypto/tls/cipher_suites.go): ECDHE before anything else,
 * AEADs before CBC, AES-128 before AES-256, ECDSA before RSA. This is exactly Go 1.23's
 * default list (crypto/tls/defaults.go `defaultCipherSuites`: the preference order minus
 * `disabledCipherSuites`, `rsaKexCiphers` and `tdesCiphers`), so it is also the default here.
 * IANA names and code points: RFC 5289 (ECDHE with AES-GCM), RFC 7905 (ChaCha20-Poly1305),
 * RFC 8422 (ECDHE with AES-CBC-SHA); the OpenSSL names are those `openssl ciphers -stdname`
 * prints for them (the tests check it).
 */
const SECURE_TLS12_SUITES: readonly Suite[] = [
  { iana: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', openssl: 'ECDHE-ECDSA-AES128-GCM-SHA256' },
  { iana: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', openssl: 'ECDHE-RSA-AES128-GCM-SHA256' },
  { iana: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', openssl: 'ECDHE-ECDSA-AES256-GCM-SHA384' },
  { iana: 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', openssl: 'ECDHE-RSA-AES256-GCM-SHA384' },
  {
    iana: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
    openssl: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  },
  { iana: 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256', openssl: 'ECDHE-RSA-CHACHA20-POLY1305' },
  { iana: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA', openssl: 'ECDHE-ECDSA-AES128-SHA' },
  { iana: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA', openssl: 'ECDHE-RSA-AES128-SHA' },
  { iana: 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA', openssl: 'ECDHE-ECDSA-AES256-SHA' },
  { iana: 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA', openssl: 'ECDHE-RSA-AES256-SHA' },
];

/** The names component-base keeps for the ChaCha20 suites, from before Go added `_SHA256`. */
const LEGACY_NAMES: Readonly<Record<string, string>> = {
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
};

/**
 * The TLS 1.3 suites (RFC 8446 B.4; OpenSSL uses the IANA names), in Go 1.23's
 * `defaultCipherSuitesTLS13` order. Go offers no way to configure them, so neither does this.
 */
const TLS13_SUITES: readonly string[] = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
];

/**
 * The names kube-apiserver accepts that Go 1.23 leaves out of its default list: RC4, 3DES,
 * CBC with SHA-256 (no Lucky13 countermeasures) and RSA key exchange (no forward secrecy).
 * kube-apiserver takes them with a warning; here they are refused.
 */
const INSECURE_SUITES: ReadonlySet<string> = new Set([
  'TLS_RSA_WITH_RC4_128_SHA',
  'TLS_RSA_WITH_3DES_EDE_CBC_SHA',
  'TLS_RSA_WITH_AES_128_CBC_SHA',
  'TLS_RSA_WITH_AES_256_CBC_SHA',
  'TLS_RSA_WITH_AES_128_CBC_SHA256',
  'TLS_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_RC4_128_SHA',
  'TLS_ECDHE_RSA_WITH_RC4_128_SHA',
  'TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA',
  'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256',
]);

/** The `--tls-cipher-suites` default: Go 1.23's default list. */
export const DEFAULT_TLS_CIPHER_SUITES = SECURE_TLS12_SUITES.map((s) => s.iana).join(',');

const MIN_VERSIONS: Readonly<Record<string, TlsMinVersion>> = {
  VersionTLS12: 'TLSv1.2',
  VersionTLS13: 'TLSv1.3',
};

export function parseTlsMinVersion(value: string): TlsMinVersion {
  const version = MIN_VERSIONS[value];
  if (version !== undefined) return version;
  if (value === 'VersionTLS10' || value === 'VersionTLS11') {
    throw new ConfigError(
      'tls-min-version',
      `${value} is insecure and refused (kube-apiserver still accepts it); use VersionTLS12 or VersionTLS13`,
    );
  }
  throw new ConfigError(
    'tls-min-version',
    `unknown TLS version ${JSON.stringify(value)} (VersionTLS12 or VersionTLS13)`,
  );
}

/**
 * The TLS 1.2 suites of a comma-separated list, in the server's preference order: like Go,
 * the order of the list is not the order of preference. Names of TLS 1.3 suites are accepted,
 * as kube-apiserver accepts them, and change nothing: the TLS 1.3 suites are always on.
 */
export function parseTlsCipherSuites(value: string): string[] {
  const named = new Set<string>();
  for (const item of value.split(',')) {
    const name = item.trim();
    if (name === '') continue;
    const canonical = LEGACY_NAMES[name] ?? name;
    if (INSECURE_SUITES.has(canonical)) {
      throw new ConfigError(
        'tls-cipher-suites',
        `${name} is insecure and refused (RC4, 3DES, CBC-SHA256 and RSA key exchange are outside Go's default list)`,
      );
    }
    if (TLS13_SUITES.includes(canonical)) continue;
    if (!OPENSSL_NAME.has(canonical)) {
      throw new ConfigError(
        'tls-cipher-suites',
        `unknown cipher suite ${JSON.stringify(name)} (IANA names as kube-apiserver takes them, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)`,
      );
    }
    named.add(canonical);
  }
  return SECURE_TLS12_SUITES.filter((s) => named.has(s.iana)).map((s) => s.iana);
}

const OPENSSL_NAME: ReadonlyMap<string, string> = new Map(
  SECURE_TLS12_SUITES.map((s) => [s.iana, s.openssl]),
);

export function resolveTlsPolicy(minVersionFlag: string, cipherSuitesFlag: string): TlsPolicy {
  const minVersion = parseTlsMinVersion(minVersionFlag);
  const cipherSuites = parseTlsCipherSuites(cipherSuitesFlag);
  if (cipherSuites.length === 0 && minVersion === 'TLSv1.2') {
    throw new ConfigError(
      'tls-cipher-suites',
      'names no TLS 1.2 cipher suite, so no TLS 1.2 client could connect (use --tls-min-version=VersionTLS13 for TLS 1.3 only)',
    );
  }
  const tls12 = cipherSuites.map((name) => OPENSSL_NAME.get(name) as string);
  return { minVersion, cipherSuites, ciphers: [...tls12, ...TLS13_SUITES].join(':') };
}
