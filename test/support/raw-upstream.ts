/**
 * A raw HTTP/1.1 apiserver (TLS, the apiserver's certificate) that answers only what a test
 * writes on each connection, and records what each connection received.
 */
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { TestPki } from './pki.js';
import { until } from './wait.js';

/** One upstream connection: what it received, and a socket to answer on. */
export class UpstreamConnection {
  received = '';
  closed = false;

  constructor(readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.once('close', () => {
      this.closed = true;
    });
  }

  /** Waits until `count` request heads (and what follows them) have arrived. */
  heads(count: number): Promise<void> {
    return until(
      () => this.received.split('\r\n\r\n').length - 1 >= count,
      `${count} request heads`,
    );
  }
}

export class RawUpstream {
  private constructor(
    readonly server: Server,
    readonly url: string,
    readonly connections: UpstreamConnection[],
  ) {}

  static async start(pki: TestPki): Promise<RawUpstream> {
    const connections: UpstreamConnection[] = [];
    const server = createServer(
      {
        cert: pki.apiserver.certPem,
        key: pki.apiserver.keyPem,
        ALPNProtocols: ['http/1.1'],
        requestCert: true,
        rejectUnauthorized: false,
      },
      (socket) => connections.push(new UpstreamConnection(socket)),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    return new RawUpstream(server, `https://127.0.0.1:${port}`, connections);
  }

  async connection(index: number): Promise<UpstreamConnection> {
    await until(() => this.connections.length > index, `upstream connection ${index + 1}`);
    return this.connections[index] as UpstreamConnection;
  }

  close(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
