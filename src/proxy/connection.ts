/**
 * One accepted client connection and the registry of all of them, grouped by certificate so
 * that a snapshot swap can close exactly the connections whose certificate is now refused.
 */
import type { TLSSocket } from 'node:tls';
import { activeConnections, revokedConnectionsClosed } from '../metrics/metrics.js';
import { type Tally, tally } from '../metrics/tally.js';
import type { Identity, PeerCert, Verdict } from '../tls/verify.js';
import { ConnectionHeaders, type IdentityHeaderRules } from './headers.js';
import { type StatusResponse, unauthorized } from './status.js';
import type { UpstreamRole } from './upstream.js';

export type ClientProtocol = 'h2' | 'http/1.1';

/** Why an open connection is closed from outside its requests. */
export interface Cut {
  /** For the log and, bounded, the HTTP/2 GOAWAY's debug data. */
  readonly reason: string;
  /**
   * What the client is told where its protocol has room: the 401 Status a refused request
   * gets (a certificate no longer accepted); null when nothing is told (shutdown,
   * --reject-mode=close).
   */
  readonly status: StatusResponse | null;
}

let nextId = 1;

/** active_connections by protocol (a tally: this is the per-connection path). */
const openConnections: Record<ClientProtocol, Tally> = {
  h2: tally(activeConnections, { protocol: 'h2' }),
  'http/1.1': tally(activeConnections, { protocol: 'http/1.1' }),
};

export class ClientConnection {
  readonly id = nextId++;
  private address: string | null = null;
  private own: ConnectionHeaders | null = null;
  /**
   * How the forwarder that owns the connection closes it (h2: GOAWAY first; tunnels: both
   * sides), telling the client the cut's Status where it can.
   */
  private terminator: (cut: Cut) => void;
  /**
   * How it winds down for a shutdown: no new request, watches ended cleanly, in-flight
   * requests finished; the connection closes by itself when done. Tunnels wait for the deadline.
   */
  private drainer: () => void = () => {};
  private closed = false;

  constructor(
    readonly socket: TLSSocket,
    readonly protocol: ClientProtocol,
    readonly identity: Identity | null,
    readonly peer: PeerCert | null,
  ) {
    this.terminator = () => socket.destroy();
  }

  /**
   * The client's address (for X-Forwarded-For), asked of the socket at the first request: a
   * connection that never sends one costs no getpeername(2).
   */
  get remoteAddress(): string {
    if (this.address === null) this.address = this.socket.remoteAddress ?? 'unknown';
    return this.address;
  }

  /** What this connection adds to each request it sends upstream (made at its first). */
  ownHeaders(rules: IdentityHeaderRules): ConnectionHeaders {
    if (this.own === null)
      this.own = new ConnectionHeaders(this.remoteAddress, this.identity, rules);
    return this.own;
  }

  /** A certificate user is forwarded as the front proxy; anyone else as themselves. */
  get upstreamRole(): UpstreamRole {
    return this.identity === null ? 'anonymous' : 'front-proxy';
  }

  setTerminator(terminator: (cut: Cut) => void): void {
    this.terminator = terminator;
  }

  setDrainer(drainer: () => void): void {
    this.drainer = drainer;
  }

  terminate(cut: Cut): void {
    if (this.closed) return;
    this.closed = true;
    this.terminator(cut);
  }

  drain(): void {
    if (!this.closed) this.drainer();
  }
}

interface CertConnections {
  readonly peer: PeerCert;
  readonly connections: Set<ClientConnection>;
}

export class ConnectionRegistry {
  private readonly byCert = new Map<string, CertConnections>();
  private readonly all = new Set<ClientConnection>();

  get size(): number {
    return this.all.size;
  }

  add(conn: ClientConnection): void {
    this.all.add(conn);
    openConnections[conn.protocol].inc();
    if (conn.peer !== null) {
      const entry = this.byCert.get(conn.peer.key) ?? { peer: conn.peer, connections: new Set() };
      entry.connections.add(conn);
      this.byCert.set(conn.peer.key, entry);
    }
    conn.socket.once('close', () => this.remove(conn));
  }

  private remove(conn: ClientConnection): void {
    if (!this.all.delete(conn)) return;
    openConnections[conn.protocol].dec();
    if (conn.peer === null) return;
    const entry = this.byCert.get(conn.peer.key);
    if (entry === undefined) return;
    entry.connections.delete(conn);
    if (entry.connections.size === 0) this.byCert.delete(conn.peer.key);
  }

  /**
   * Re-decides every certificate with open connections (once per certificate, not per
   * connection) and closes the connections of those now refused, telling their clients why
   * when `tell`. Returns how many closed.
   */
  closeRefused(
    decide: (peer: PeerCert) => Verdict,
    onClose: (peer: PeerCert, verdict: Verdict, count: number) => void,
    tell: boolean,
  ): number {
    let closed = 0;
    for (const [key, entry] of [...this.byCert]) {
      const verdict = decide(entry.peer);
      if (verdict.outcome !== 'rejected') continue;
      const connections = [...entry.connections];
      this.byCert.delete(key);
      onClose(entry.peer, verdict, connections.length);
      // The Status a refused request gets (reject.ts), whatever the reason.
      const status = tell ? unauthorized(verdict.message) : null;
      const cut: Cut = { reason: verdict.message, status };
      for (const conn of connections) {
        conn.terminate(cut);
        closed++;
      }
    }
    if (closed > 0) revokedConnectionsClosed.inc(closed);
    return closed;
  }

  /** Every open connection (for draining on shutdown). */
  connections(): ClientConnection[] {
    return [...this.all];
  }

  /** Resolves true when every connection has closed, false if `timeoutMs` passed first. */
  waitUntilEmpty(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const deadline = Date.now() + timeoutMs;
      const check = () => {
        if (this.all.size === 0) resolve(true);
        else if (Date.now() >= deadline) resolve(false);
        else setTimeout(check, Math.min(100, Math.max(1, deadline - Date.now())));
      };
      check();
    });
  }
}
