/**
 * The client-facing TLS listener: one port, ALPN h2 and http/1.1, a client certificate
 * requested but judged by us (verify.ts) on every connection.
 * Accepted connections go to a ConnectionHandler (the proxy). Rejected ones get a TLS alert
 * under --reject-mode=alert when their protocol allows it (refusal.ts), else the handler's
 * reject path.
 *
 * TLS sessions are never resumed. Stateless tickets are off (SSL_OP_NO_TICKET): OpenSSL builds
 * each by encoding the whole session, client certificate included, and decoding it again. Under
 * TLS 1.3 OpenSSL then sends stateful tickets instead (two, its num_tickets default): session
 * ids that only a server-side session cache could resolve, and Node keeps none
 * (SSL_SESS_CACHE_NO_INTERNAL, and no 'resumeSession' listener here), so a client offering one
 * back gets a full handshake. Sending none takes SSL_CTX_set_num_tickets, which Node does not
 * expose; its internal ticket-key callback can drop stateless tickets, but only after they are
 * built, which costs more than the stateful ones. Every connection is a full handshake whose
 * chain OpenSSL verifies, and the revocation check runs on every connection regardless.
 */
import { constants as cryptoConstants, X509Certificate } from 'node:crypto';
import { createServer, type SecureContextOptions, type Server, type TLSSocket } from 'node:tls';
import type { HostPort, Limits, RejectMode } from '../config/config.js';
import type { TlsPolicy } from '../config/tls-policy.js';
import { errorMessage } from '../errors.js';
import type { Logger, RateLimitedLog } from '../log.js';
import { connectionsDropped, handshakes, tlsErrors } from '../metrics/metrics.js';
import { type Tally, tally } from '../metrics/tally.js';
import type { Credentials } from '../pki/credentials.js';
import type { DenyList } from '../pki/deny-list.js';
import type { TrustStore } from '../pki/trust-store.js';
import { alertFor } from './alert.js';
import { AlertRefusals } from './refusal.js';
import { certificateInSession } from './ssl-session.js';
import {
  type Handshake,
  REJECT_REASONS,
  type RejectReason,
  type Verdict,
  type VerifyPolicy,
  verifyPeer,
} from './verify.js';

export type AcceptedVerdict = Exclude<Verdict, { outcome: 'rejected' }>;
export type RejectedVerdict = Extract<Verdict, { outcome: 'rejected' }>;

/** Implemented by the proxy layer. */
export interface ConnectionHandler {
  accept(socket: TLSSocket, verdict: AcceptedVerdict): void;
  reject(socket: TLSSocket, verdict: RejectedVerdict): void;
}

export interface ListenerOptions {
  readonly address: HostPort;
  readonly limits: Limits;
  readonly tls: TlsPolicy;
  readonly policy: VerifyPolicy;
  readonly rejectMode: RejectMode;
  readonly trust: () => TrustStore;
  readonly deny: () => DenyList;
  readonly handler: ConnectionHandler;
  readonly log: Logger;
  readonly rejectLog: RateLimitedLog;
}

export class ClientListener {
  private readonly server: Server;
  /** Under --reject-mode=alert: what sends the alerts. */
  private readonly alerts: AlertRefusals | null;
  /** The inputs of the secure context in force. */
  private contextInputs: ContextInputs;
  /** The handshake counters, as tallies (this is the per-connection path); every series from the start. */
  private readonly counted = {
    clientCert: tally(handshakes, { outcome: 'accepted', reason: 'client_cert' }),
    noCert: tally(handshakes, { outcome: 'accepted', reason: 'no_cert' }),
    rejected: new Map(
      REJECT_REASONS.map((reason) => [reason, tally(handshakes, { outcome: 'rejected', reason })]),
    ) as ReadonlyMap<RejectReason, Tally>,
  };

  constructor(
    private readonly options: ListenerOptions,
    credentials: Credentials,
    trust: TrustStore,
  ) {
    this.contextInputs = contextInputs(credentials, trust);
    this.server = withServedChain(this.contextInputs, trust, options.tls, (context) =>
      createServer({
        ...context,
        ALPNProtocols: ['h2', 'http/1.1'],
        requestCert: true,
        rejectUnauthorized: false,
        handshakeTimeout: options.limits.tlsHandshakeTimeoutMs,
      }),
    );
    this.alerts = options.rejectMode === 'alert' ? new AlertRefusals(this.server) : null;
    this.server.maxConnections = options.limits.maxConnections;
    this.server.on('drop', () => {
      connectionsDropped.inc();
      options.rejectLog.warn(
        { maxConnections: options.limits.maxConnections },
        'connection limit reached (--max-connections): new connections are closed at once',
      );
    });
    this.server.on('secureConnection', (socket: TLSSocket) => this.onSecureConnection(socket));
    this.server.on('tlsClientError', (err: Error) => {
      tlsErrors.inc();
      options.log.debug({ err: err.message }, 'client TLS handshake failed');
    });
  }

  /**
   * New credentials or client CA bundle: applies to handshakes from now on. A snapshot that
   * changes neither (a CRL change) keeps the secure context in force: it holds no revocation
   * state (every connection is judged against the trust store in force), and building one
   * parses the serving key and the CA bundle on the event loop's thread.
   */
  update(credentials: Credentials, trust: TrustStore): void {
    const next = contextInputs(credentials, trust);
    const current = this.contextInputs;
    if (next.cert === current.cert && next.key === current.key && next.ca === current.ca) return;
    withServedChain(next, trust, this.options.tls, (context) =>
      this.server.setSecureContext(context),
    );
    this.contextInputs = next;
  }

  listen(): Promise<HostPort> {
    const { host, port } = this.options.address;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        if (address === null || typeof address === 'string')
          throw new Error('listener has no address');
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /** Stops accepting at once; open connections are left to their owners. */
  stopAccepting(): void {
    if (this.server.listening) this.server.close();
  }

  private onSecureConnection(socket: TLSSocket): void {
    socket.setNoDelay(true);
    this.refuseRenegotiation(socket);
    let verdict: Verdict;
    try {
      verdict = verifyPeer(
        handshakeOf(socket),
        this.options.trust(),
        this.options.deny(),
        this.options.policy,
        Date.now(),
      );
    } catch (err) {
      // A defect here must cost this connection, not the process and every other connection.
      this.options.log.error({ err: errorMessage(err) }, 'client connection refused: check failed');
      this.alerts?.forget(socket);
      socket.destroy();
      return;
    }
    if (verdict.outcome === 'rejected') {
      this.counted.rejected.get(verdict.reason)?.inc();
      this.options.rejectLog.warn(
        {
          reason: verdict.reason,
          serial: verdict.peer?.serial,
          subject: verdict.peer?.subject,
          issuer: verdict.peer?.issuer,
          remoteAddress: socket.remoteAddress,
        },
        verdict.message,
      );
      if (this.alerts?.refuse(socket, alertFor(verdict.reason))) return;
      this.alerts?.forget(socket);
      this.options.handler.reject(socket, verdict);
      return;
    }
    this.alerts?.forget(socket);
    (verdict.outcome === 'accepted' ? this.counted.clientCert : this.counted.noCert).inc();
    this.options.handler.accept(socket, verdict);
  }

  /**
   * Client-initiated TLS 1.2 renegotiation: OpenSSL refuses the ClientHello itself
   * (SSL_OP_NO_RENEGOTIATION, below) with a no_renegotiation warning alert, and goes on
   * serving the connection. Go's crypto/tls server fails the connection instead (conn.go:
   * a post-handshake ClientHello reaches handleRenegotiation, which is no HelloRequest, so it
   * sends a fatal unexpected_message alert and returns an error; net/http then closes the
   * connection). So the connection is closed here, once OpenSSL's alert is out: Node reports
   * the attempt (disableRenegotiation) from inside OpenSSL's handling of that ClientHello,
   * before the alert is written.
   */
  private refuseRenegotiation(socket: TLSSocket): void {
    socket.disableRenegotiation();
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ERR_TLS_RENEGOTIATION_DISABLED') return;
      this.options.rejectLog.warn(
        { remoteAddress: socket.remoteAddress },
        'client attempted TLS renegotiation: refused, connection closed',
      );
      setImmediate(() => socket.destroy());
    });
  }
}

export interface ContextInputs {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

function contextInputs(credentials: Credentials, trust: TrustStore): ContextInputs {
  return { cert: credentials.servingCertPem, key: credentials.servingKeyPem, ca: trust.caPem };
}

/**
 * Builds the listener's secure context from these PEM inputs with `build` (which throws, as
 * tls.createServer and setSecureContext do, when OpenSSL refuses the options): with the served
 * chain, or with the inputs as they are when there is none to add or OpenSSL refuses a chain
 * certificate (one below its security level, where the automatic chain would have failed every
 * handshake instead: that behaviour is kept). Exported for its tests.
 */
export function withServedChain<T>(
  inputs: ContextInputs,
  trust: TrustStore,
  policy: TlsPolicy,
  build: (context: SecureContextOptions) => T,
): T {
  const options = { ...inputs, ...policyOptions(policy) };
  const served = servedChainPem(inputs.cert, trust);
  if (served !== null) {
    try {
      return build({ ...options, cert: served });
    } catch {
      // Built below without the chain; an error of the inputs themselves is thrown there.
    }
  }
  return build(options);
}

/**
 * The TLS policy as secure context options. Go's server picks the TLS 1.2 suite by its own
 * preference order (handshake_server.go, pickCipherSuite), so the server's order is honoured;
 * it puts ChaCha20-Poly1305 first when the client lists it before AES-GCM (`aesgcmPreferred`),
 * which SSL_OP_PRIORITIZE_CHACHA does in OpenSSL. SSL_OP_NO_RENEGOTIATION: OpenSSL refuses
 * any renegotiation, whatever happens to the connection afterwards (refuseRenegotiation).
 * SSL_OP_NO_TICKET: docs/behaviour.md says which tickets OpenSSL sends anyway.
 */
function policyOptions(policy: TlsPolicy): SecureContextOptions {
  return {
    minVersion: policy.minVersion,
    ciphers: policy.ciphers,
    honorCipherOrder: true,
    secureOptions:
      cryptoConstants.SSL_OP_NO_TICKET |
      cryptoConstants.SSL_OP_NO_RENEGOTIATION |
      cryptoConstants.SSL_OP_PRIORITIZE_CHACHA,
  };
}

/**
 * The serving certificate with the chain OpenSSL would otherwise build on every handshake.
 * When the serving file holds the leaf alone, OpenSSL completes its chain from the `ca` store
 * (the client CA bundle) for each handshake — an X509_verify_cert of our own certificate,
 * signature check included (bench/README.md#figures-behind-design-choices-in-src) — and skips that when the context
 * has chain certificates. So the same chain is built here once per certificate or bundle
 * change and given after the leaf: the Certificate message is unchanged. null: nothing to
 * add (a chain in the file, no issuer in the bundle, or a step OpenSSL might take otherwise).
 */
export function servedChainPem(servingCertPem: string, trust: TrustStore): string | null {
  if (servingCertPem.indexOf(PEM_CERT_BEGIN) !== servingCertPem.lastIndexOf(PEM_CERT_BEGIN)) {
    return null;
  }
  const chain = trust.issuerChainOf(new X509Certificate(servingCertPem));
  return chain === null ? null : servingCertPem + chain.map((c) => c.toString()).join('');
}

const PEM_CERT_BEGIN = '-----BEGIN CERTIFICATE-----';

function handshakeOf(socket: TLSSocket): Handshake {
  return {
    peerCertificate: peerCertificateDer(socket),
    authorized: socket.authorized,
    authorizationError:
      socket.authorizationError === undefined ? null : String(socket.authorizationError),
  };
}

/**
 * The client's certificate as DER. getPeerX509Certificate() also copies every chain
 * certificate the client sent (X509_dup: a full decode each, bench/README.md#figures-behind-design-choices-in-src), so the
 * certificate is read from the TLS session instead, where OpenSSL keeps it as sent: an
 * SSL_SESSION is `SEQUENCE { …, peer [3] EXPLICIT Certificate OPTIONAL, … }` (ssl_asn1.c).
 * The session's secrets are wiped from the copy at once. Runtimes without getSession() (or a
 * session encoded otherwise) get getPeerX509Certificate().
 */
export function peerCertificateDer(socket: TLSSocket): Buffer | null {
  const session = sessionOf(socket);
  if (session !== undefined) {
    try {
      const found = certificateInSession(session);
      if (found !== undefined) return found;
    } finally {
      session.fill(0);
    }
  }
  return socket.getPeerX509Certificate()?.raw ?? null;
}

function sessionOf(socket: TLSSocket): Buffer | undefined {
  try {
    const session: unknown = socket.getSession();
    return Buffer.isBuffer(session) ? session : undefined;
  } catch {
    return undefined;
  }
}
