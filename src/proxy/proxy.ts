/**
 * The proxy layer behind the listener: accepted connections are registered and handed to the
 * forwarder of their protocol; rejected ones to the Rejecter. Forwarding sits behind
 * `Forwarder` so the HTTP/1.1 and HTTP/2 paths can be replaced under the same tests.
 */
import type { TLSSocket } from 'node:tls';
import type { Config, RejectMode } from '../config/config.js';
import type { Logger } from '../log.js';
import { activeUpgrades, zeroSeries } from '../metrics/metrics.js';
import type { AcceptedVerdict, ConnectionHandler, RejectedVerdict } from '../tls/listener.js';
import type { PeerCert, Verdict } from '../tls/verify.js';
import { ClientConnection, type ClientProtocol, ConnectionRegistry } from './connection.js';
import { H1Forwarder } from './h1/splice.js';
import { H2Forwarder } from './h2/relay.js';
import { identityHeaderRules } from './headers.js';
import { Rejecter } from './reject.js';
import { UpgradeForwarder } from './upgrade.js';
import type { Upstream } from './upstream.js';

/** Takes ownership of an accepted client connection and forwards its requests. */
export interface Forwarder {
  serve(connection: ClientConnection): void;
}

export class ProxyLayer implements ConnectionHandler {
  readonly registry = new ConnectionRegistry();
  private readonly forwarders: Record<ClientProtocol, Forwarder>;
  private readonly rejecter: Rejecter;
  private readonly rejectMode: RejectMode;

  constructor(
    config: Config,
    upstream: Upstream,
    private readonly log: Logger,
  ) {
    const rules = identityHeaderRules(config.requestHeaders);
    const upgrades = new UpgradeForwarder({ upstream, rules, log });
    this.forwarders = {
      'http/1.1': new H1Forwarder({ upstream, rules, upgrades, limits: config.limits, log }),
      h2: new H2Forwarder({ upstream, rules, limits: config.limits, log }),
    };
    this.rejecter = new Rejecter(config.rejectMode);
    this.rejectMode = config.rejectMode;
    zeroSeries(activeUpgrades, [{ kind: 'websocket' }, { kind: 'spdy' }]);
  }

  accept(socket: TLSSocket, verdict: AcceptedVerdict): void {
    const protocol: ClientProtocol = socket.alpnProtocol === 'h2' ? 'h2' : 'http/1.1';
    const connection =
      verdict.outcome === 'accepted'
        ? new ClientConnection(socket, protocol, verdict.identity, verdict.peer)
        : new ClientConnection(socket, protocol, null, null);
    // The forwarders and the tunnel each watch the socket's close; more than Node's default 10.
    socket.setMaxListeners(32);
    socket.on('error', (err) =>
      this.log.debug({ err: err.message, connection: connection.id }, 'client connection error'),
    );
    this.registry.add(connection);
    this.forwarders[protocol].serve(connection);
  }

  reject(socket: TLSSocket, verdict: RejectedVerdict): void {
    socket.on('error', () => socket.destroy());
    this.rejecter.reject(socket, verdict);
  }

  /**
   * After a snapshot swap: closes the open connections of every certificate now refused,
   * telling each client why where its protocol has room, unless refusals are to tell nothing
   * (--reject-mode=close).
   */
  closeRefused(decide: (peer: PeerCert) => Verdict): number {
    const tell = this.rejectMode !== 'close';
    return this.registry.closeRefused(
      decide,
      (peer, verdict, count) => {
        if (verdict.outcome !== 'rejected') return;
        this.log.warn(
          {
            reason: verdict.reason,
            serial: peer.serial,
            subject: peer.subject.split('\n').join(', '),
            connections: count,
          },
          `closing open connections: ${verdict.message}`,
        );
      },
      tell,
    );
  }
}
