/**
 * The client-facing TLS listener: one port, ALPN h2 and http/1.1, a client certificate
 * requested but judged by us (verify.ts) on every connection, resumed sessions included.
 * Accepted connections go to a ConnectionHandler (the proxy); rejected ones to its reject path.
 */
import { createServer, type SecureContextOptions, type Server, type TLSSocket } from 'node:tls';
import type { HostPort, Limits } from '../config/config.js';
import type { Logger, RateLimitedLog } from '../log.js';
import { connectionsDropped, handshakes, tlsErrors, zeroSeries } from '../metrics/metrics.js';
import type { Credentials } from '../pki/credentials.js';
import type { TrustStore } from '../pki/trust.js';
import { REJECT_REASONS, type Verdict, type VerifyPolicy, verifyPeer } from './verify.js';

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
  readonly policy: VerifyPolicy;
  readonly trust: () => TrustStore;
  readonly handler: ConnectionHandler;
  readonly log: Logger;
  readonly rejectLog: RateLimitedLog;
}

export class ClientListener {
  private readonly server: Server;

  constructor(
    private readonly options: ListenerOptions,
    credentials: Credentials,
    trust: TrustStore,
    ticketKeys: Buffer,
  ) {
    this.server = createServer({
      ...secureContextOptions(credentials, trust),
      ALPNProtocols: ['h2', 'http/1.1'],
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: options.limits.tlsHandshakeTimeoutMs,
      ticketKeys,
    });
    zeroSeries(handshakes, [
      { outcome: 'accepted', reason: 'client_cert' },
      { outcome: 'accepted', reason: 'no_cert' },
      ...REJECT_REASONS.map((reason) => ({ outcome: 'rejected', reason })),
    ]);
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
   * New credentials or client CA bundle: applies to handshakes from now on. New ticket keys
   * make every earlier session unresumable, so each client goes through a full handshake.
   */
  update(credentials: Credentials, trust: TrustStore, ticketKeys: Buffer): void {
    this.server.setSecureContext(secureContextOptions(credentials, trust));
    this.server.setTicketKeys(ticketKeys);
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
    const verdict = verifyPeer(socket, this.options.trust(), this.options.policy, Date.now());
    if (verdict.outcome === 'rejected') {
      handshakes.inc({ outcome: 'rejected', reason: verdict.reason });
      this.options.rejectLog.warn(
        {
          reason: verdict.reason,
          serial: verdict.peer?.serial,
          subject: verdict.peer?.subject.split('\n').join(', '),
          issuer: verdict.peer?.issuer.split('\n').join(', '),
          remoteAddress: socket.remoteAddress,
          resumed: socket.isSessionReused(),
        },
        verdict.message,
      );
      this.options.handler.reject(socket, verdict);
      return;
    }
    handshakes.inc({
      outcome: 'accepted',
      reason: verdict.outcome === 'accepted' ? 'client_cert' : 'no_cert',
    });
    this.options.handler.accept(socket, verdict);
  }
}

function secureContextOptions(credentials: Credentials, trust: TrustStore): SecureContextOptions {
  return {
    cert: credentials.servingCertPem,
    key: credentials.servingKeyPem,
    ca: trust.caPem,
  };
}
