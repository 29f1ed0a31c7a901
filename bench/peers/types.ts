/** What the scenarios know about the servers under test. */
import type { ClientCert } from '../support/pki.js';

export type PeerName = 'kube-crl-proxy' | 'haproxy' | 'node-tls-pipe' | 'direct';

/**
 * The order of every table: the proxy, its reference, the Node floor (a TLS byte pipe with
 * no HTTP work, throughput scenarios only), the direct floor.
 */
export const PEER_NAMES: readonly PeerName[] = [
  'kube-crl-proxy',
  'haproxy',
  'node-tls-pipe',
  'direct',
];

/** Something clients connect to: a proxy in front of an upstream, or the upstream itself. */
export interface Peer {
  readonly name: PeerName;
  readonly port: number;
  /** The process whose CPU and memory are measured (pinned to the proxy core); null: direct. */
  readonly pid: number | null;
  /** The certificate the load presents to this peer. */
  readonly client: ClientCert;
  stop(): Promise<void>;
}

/** A proxy under test: its process is measured. */
export interface ProxyPeer extends Peer {
  readonly pid: number;
}

/** The server behind the proxies (nginx for throughput, the fake apiserver for streams). */
export interface Upstream {
  readonly port: number;
  readonly url: string;
  /** What a client presents to reach the upstream directly (the direct path). */
  readonly directClient: ClientCert;
  stop(): Promise<void>;
}
