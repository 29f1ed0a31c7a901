/** TLS options every load client uses: a real client certificate, loopback only. */
import { readFileSync } from 'node:fs';
import { type ConnectionOptions, connect, type TLSSocket } from 'node:tls';

export interface ClientIdentity {
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

export const LOAD_HOST = '127.0.0.1';

/** Reads the files once; the result is reused for every connection. */
export function tlsOptions(identity: ClientIdentity, alpn: 'h2' | 'http/1.1'): ConnectionOptions {
  return {
    host: LOAD_HOST,
    port: identity.port,
    cert: readFileSync(identity.certFile),
    key: readFileSync(identity.keyFile),
    ca: readFileSync(identity.caFile),
    ALPNProtocols: [alpn],
    // Each load connection is a separate client: no session resumption between them.
    session: undefined,
  };
}

export function openTls(options: ConnectionOptions): TLSSocket {
  const socket = connect(options);
  socket.setNoDelay(true);
  return socket;
}
