/** The floor: clients talk to the upstream itself, with a certificate the upstream trusts. */
import type { Peer, Upstream } from './types.js';

export function directPeer(upstream: Upstream): Peer {
  return {
    name: 'direct',
    port: upstream.port,
    pid: null,
    client: upstream.directClient,
    stop: async () => {},
  };
}
