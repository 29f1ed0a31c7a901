/**
 * The Node floor: a TLS byte pipe with no HTTP work at all. Each client connection (client
 * certificate required, as the proxy's) gets its own upstream connection with the
 * front-proxy-client certificate, the ALPN protocol the client chose, and the last upstream
 * TLS session resumed (kept as kube-crl-proxy's upstream keeps it), opened with the client's first
 * bytes; the bytes are piped both ways unread. No identity is injected and nothing is sanitised: it is not a proxy anyone should
 * run, only what node:tls and streams alone cost on this machine, in the same run.
 *
 * Run as `node node-pipe-server.js CONFIG_JSON`; prints `{"port":N}` when listening.
 */

import { constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createSecureContext, createServer, type TLSSocket } from 'node:tls';
import { withoutPeerCertificate } from '../../src/tls/ssl-session.js';

export interface NodePipeConfig {
  readonly servingCertFile: string;
  readonly servingKeyFile: string;
  readonly clientCaFile: string;
  readonly upstreamPort: number;
  readonly upstreamCaFile: string;
  readonly proxyClientCertFile: string;
  readonly proxyClientKeyFile: string;
}

function main(config: NodePipeConfig): void {
  const read = (file: string) => readFileSync(file, 'utf8');
  // One upstream secure context for every connection, as kube-crl-proxy has.
  const upstreamOptions = {
    host: '127.0.0.1',
    port: config.upstreamPort,
    secureContext: createSecureContext({
      ca: read(config.upstreamCaFile),
      cert: read(config.proxyClientCertFile),
      key: read(config.proxyClientKeyFile),
    }),
  };
  let session: Buffer | undefined;
  const server = createServer(
    {
      cert: read(config.servingCertFile),
      key: read(config.servingKeyFile),
      ca: read(config.clientCaFile),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2', 'http/1.1'],
      secureOptions: constants.SSL_OP_NO_TICKET,
    },
    (client: TLSSocket) => {
      client.setNoDelay(true);
      client.on('error', () => client.destroy());
      // The upstream connection opens with the client's first bytes, as kube-crl-proxy's
      // does: a client that only shakes hands costs no upstream handshake.
      client.once('data', (first: Buffer) => {
        const upstream = connect({
          ...upstreamOptions,
          ALPNProtocols: [client.alpnProtocol || 'http/1.1'],
          session,
        });
        upstream.setNoDelay(true);
        upstream.on('session', (s: Buffer) => {
          // Kept without the upstream's certificate, as kube-crl-proxy keeps it (a TLS 1.3
          // resumption then does not decode that certificate again).
          session = withoutPeerCertificate(s);
        });
        upstream.write(first);
        client.pipe(upstream).pipe(client);
        const close = () => {
          client.destroy();
          upstream.destroy();
        };
        client.on('close', close);
        upstream.on('error', close).on('close', close);
      });
    },
  );
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

main(JSON.parse(process.argv[2] ?? '{}') as NodePipeConfig);
