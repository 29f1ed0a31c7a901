/**
 * Every flag of the proxy, declared once. yargs, `--help`, the config file's key check and the
 * flag reference in docs/cli.md all come from this table.
 */
import type { Options } from 'yargs';
import { DEFAULT_TLS_CIPHER_SUITES } from './tls-policy.js';

export const GROUPS = {
  listen: 'Listeners:',
  tls: 'Client TLS and certificates:',
  revocation: 'Revocation:',
  upstream: 'Upstream (kube-apiserver):',
  identity: 'Identity headers (must match kube-apiserver --requestheader-*):',
  limits: 'Limits and timeouts:',
  process: 'Process:',
} as const;

export const RUN_OPTIONS = {
  listen: {
    group: GROUPS.listen,
    type: 'string',
    default: '0.0.0.0:6443',
    describe: 'address:port for clients (TLS, ALPN h2 and http/1.1)',
  },
  'metrics-listen': {
    group: GROUPS.listen,
    type: 'string',
    default: '127.0.0.1:9443',
    describe: 'admin address:port for /metrics, /healthz, /readyz (plain HTTP)',
  },
  'tls-cert-file': {
    group: GROUPS.tls,
    type: 'string',
    describe: 'serving certificate (PEM, may include intermediates) [required]',
  },
  'tls-private-key-file': {
    group: GROUPS.tls,
    type: 'string',
    describe: 'private key of the serving certificate (PEM) [required]',
  },
  'client-ca-file': {
    group: GROUPS.tls,
    type: 'string',
    describe: 'PEM bundle of the CAs that sign client certificates [required]',
  },
  'require-client-cert': {
    group: GROUPS.tls,
    type: 'boolean',
    default: false,
    describe:
      'reject requests without a client certificate (default: pass them on anonymously, so bearer tokens work)',
  },
  'reject-mode': {
    group: GROUPS.tls,
    choices: ['alert', 'status', 'close', 'http'] as const,
    default: 'alert',
    describe:
      'alert: a refused TLS 1.3 client gets a TLS alert naming the reason right after the handshake (TLS 1.2: as status); status: its first request gets 401 and a Status naming the reason, then close; close: drop it after the handshake; http: the former name of status',
  },
  'tls-min-version': {
    group: GROUPS.tls,
    type: 'string',
    default: 'VersionTLS12',
    describe:
      'lowest TLS version offered to clients: VersionTLS12 or VersionTLS13 (VersionTLS10 and VersionTLS11 are refused as insecure)',
  },
  'tls-cipher-suites': {
    group: GROUPS.tls,
    type: 'string',
    default: DEFAULT_TLS_CIPHER_SUITES,
    describe:
      "comma-separated TLS 1.2 cipher suites, IANA names as kube-apiserver takes them, preferred in Go's order whatever the order given; insecure ones (RC4, 3DES, CBC-SHA256, RSA key exchange) are refused. The default is Go's default list, kube-apiserver's own. TLS 1.3 suites are always on, as in Go",
  },
  'crl-file': {
    group: GROUPS.revocation,
    type: 'string',
    array: true,
    default: [] as string[],
    describe: 'CRL file (PEM or DER, one or more CRLs) or directory of CRL files; repeatable',
  },
  'crl-url': {
    group: GROUPS.revocation,
    type: 'string',
    array: true,
    default: [] as string[],
    describe:
      'URL of a CRL (http://, or https:// verified against --crl-url-ca-file), fetched at start, every --crl-url-interval and ahead of its nextUpdate; checked as a --crl-file is; repeatable',
  },
  'crl-url-ca-file': {
    group: GROUPS.revocation,
    type: 'string',
    describe:
      'PEM bundle of the CAs that sign the https:// CRL servers (hostname verified; no system CAs); required with an https:// --crl-url',
  },
  'crl-url-interval': {
    group: GROUPS.revocation,
    type: 'string',
    default: '5m',
    describe:
      'how often each --crl-url is fetched (conditional requests: a 304 keeps the copy in force)',
  },
  'crl-url-timeout': {
    group: GROUPS.revocation,
    type: 'string',
    default: '30s',
    describe: 'a fetch (connect, redirects, headers and body) must finish within this',
  },
  'crl-url-max-bytes': {
    group: GROUPS.revocation,
    type: 'number',
    default: 64 * 1024 * 1024,
    describe: 'largest CRL accepted from a --crl-url (the default fits 1M entries)',
  },
  'crl-cache-dir': {
    group: GROUPS.revocation,
    type: 'string',
    describe:
      'directory where the last good CRL of each --crl-url is kept, so a restart while its server is down still enforces it; required with --crl-url',
  },
  'crl-missing-policy': {
    group: GROUPS.revocation,
    choices: ['reject', 'allow'] as const,
    default: 'reject',
    describe:
      'a CA of --client-ca-file without a CRL: reject its certificates (and refuse to start) or allow them',
  },
  'crl-expired-policy': {
    group: GROUPS.revocation,
    choices: ['reject', 'allow'] as const,
    default: 'reject',
    describe:
      'a CRL past its nextUpdate: reject the certificates of its issuer or keep using the stale CRL',
  },
  'deny-file': {
    group: GROUPS.revocation,
    type: 'string',
    describe:
      'YAML list of emergency locks (users, groups, certificates, keys), hot-reloaded: clients it names are refused (reason denied) and their open connections closed (docs/revocation-inputs.md)',
  },
  upstream: {
    group: GROUPS.upstream,
    type: 'string',
    describe: 'kube-apiserver URL, e.g. https://127.0.0.1:16443 [required]',
  },
  'upstream-ca-file': {
    group: GROUPS.upstream,
    type: 'string',
    describe:
      "CA bundle that signs the apiserver's serving certificate (hostname/IP is verified) [required]",
  },
  'proxy-client-cert-file': {
    group: GROUPS.upstream,
    type: 'string',
    describe: 'front-proxy-client certificate presented to the apiserver [required]',
  },
  'proxy-client-key-file': {
    group: GROUPS.upstream,
    type: 'string',
    describe: 'private key of the front-proxy-client certificate [required]',
  },
  'upstream-pool-size': {
    group: GROUPS.upstream,
    type: 'number',
    default: 2,
    describe: 'pre-handshaken upstream TLS connections kept warm per protocol (0 disables)',
  },
  'upstream-timeout': {
    group: GROUPS.upstream,
    type: 'string',
    default: '5s',
    describe: 'time allowed to connect and handshake with the apiserver before answering 503',
  },
  'requestheader-username-headers': {
    group: GROUPS.identity,
    type: 'string',
    default: 'X-Remote-User',
    describe:
      'comma-separated; the first is set to the certificate CN, all are stripped from client requests',
  },
  'requestheader-group-headers': {
    group: GROUPS.identity,
    type: 'string',
    default: 'X-Remote-Group',
    describe:
      'comma-separated; the first is set once per certificate O, all are stripped from client requests',
  },
  'requestheader-extra-headers-prefix': {
    group: GROUPS.identity,
    type: 'string',
    default: 'X-Remote-Extra-',
    describe: 'comma-separated; headers with these prefixes are stripped from client requests',
  },
  'requestheader-uid-headers': {
    group: GROUPS.identity,
    type: 'string',
    default: 'X-Remote-Uid',
    describe: 'comma-separated; stripped from client requests (certificates carry no UID)',
  },
  'shutdown-grace': {
    group: GROUPS.limits,
    type: 'string',
    default: '30s',
    describe:
      'on SIGTERM: stop accepting, end watches cleanly, and give in-flight requests and tunnels this long before closing them',
  },
  'tls-handshake-timeout': {
    group: GROUPS.limits,
    type: 'string',
    default: '10s',
    describe: 'a client must complete its TLS handshake within this',
  },
  'http-header-timeout': {
    group: GROUPS.limits,
    type: 'string',
    default: '60s',
    describe:
      'an HTTP/1.1 client must send a complete request head within this (slowloris); never applies to watches or tunnels',
  },
  'http-idle-timeout': {
    group: GROUPS.limits,
    type: 'string',
    default: '90s',
    describe: 'an idle HTTP/1.1 keep-alive connection (no request in flight) is closed after this',
  },
  'h2-ping-interval': {
    group: GROUPS.limits,
    type: 'string',
    default: '30s',
    describe:
      'HTTP/2 client sessions are pinged this often; one that does not answer within the next interval is closed',
  },
  'max-connections': {
    group: GROUPS.limits,
    type: 'number',
    default: 20000,
    describe:
      'client connections served at once per process; further ones are closed at once (logged)',
  },
  'max-header-bytes': {
    group: GROUPS.limits,
    type: 'number',
    default: 65536,
    describe: 'largest request head (HTTP/1.1) or header list (HTTP/2) accepted from a client',
  },
  'max-header-count': {
    group: GROUPS.limits,
    type: 'number',
    default: 256,
    describe:
      'most header lines (HTTP/1.1) or header fields (HTTP/2) a request may carry; more is refused with 431',
  },
  'h2-max-concurrent-streams': {
    group: GROUPS.limits,
    type: 'number',
    default: 1000,
    describe:
      "streams per HTTP/2 client session (never more than the apiserver's own limit, which is mirrored)",
  },
  workers: {
    group: GROUPS.process,
    type: 'string',
    default: '1',
    describe: 'processes serving clients: a number, or "auto" for one per CPU core',
  },
  'log-level': {
    group: GROUPS.process,
    choices: ['debug', 'info', 'warn', 'error'] as const,
    default: 'info',
    describe: 'log level (JSON lines on stdout)',
  },
} satisfies Record<string, Options>;

export type RunOptionName = keyof typeof RUN_OPTIONS;

export const REQUIRED_RUN_OPTIONS: readonly RunOptionName[] = [
  'tls-cert-file',
  'tls-private-key-file',
  'client-ca-file',
  'upstream',
  'upstream-ca-file',
  'proxy-client-cert-file',
  'proxy-client-key-file',
];
