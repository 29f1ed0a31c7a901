/**
 * The "pod port" behind every port-forward: a TCP echo server on 127.0.0.1, whatever port
 * the client asked for. pipe() gives it backpressure, and allowHalfOpen lets it finish
 * echoing after the client's FIN before it closes its own side — the shape of a real
 * upstream that answers, then closes.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class EchoServer {
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      socket.setNoDelay(true);
      socket.pipe(socket);
    });
  }

  static async start(): Promise<EchoServer> {
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new EchoServer(server);
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string')
      throw new Error('echo server not listening');
    return address.port;
  }

  /** A new connection to the echo service, half-close capable like the server side. */
  connect(): Socket {
    const socket = connect({ host: '127.0.0.1', port: this.port, allowHalfOpen: true });
    socket.setNoDelay(true);
    return socket;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}
