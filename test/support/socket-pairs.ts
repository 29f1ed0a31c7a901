/**
 * Connected TCP socket pairs on loopback, for unit tests of the parts that write to sockets
 * (the HTTP/1.1 splice's and the HTTP/2 relay's writes): the local end is the part's, the
 * remote end records what it received.
 */
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';

export interface SocketPair {
  /** The end the part under test writes to and reads from. */
  readonly local: Socket;
  /** The peer's end (pause it to make `local` fill up). */
  readonly remote: Socket;
  /** What the peer received so far. */
  received(): Buffer;
}

/** A loopback listener handing out connected pairs; close() destroys them all. */
export class SocketPairs {
  private readonly server = createServer();
  private readonly sockets: Socket[] = [];

  static async listen(): Promise<SocketPairs> {
    const pairs = new SocketPairs();
    pairs.server.listen(0, '127.0.0.1');
    await once(pairs.server, 'listening');
    return pairs;
  }

  async pair(): Promise<SocketPair> {
    const peer = once(this.server, 'connection');
    const { port } = this.server.address() as { port: number };
    const local = connect(port, '127.0.0.1');
    this.sockets.push(local);
    await once(local, 'connect');
    const [remote] = (await peer) as [Socket];
    this.sockets.push(remote);
    const chunks: Buffer[] = [];
    remote.on('data', (chunk: Buffer) => chunks.push(chunk));
    return { local, remote, received: () => Buffer.concat(chunks) };
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
  }
}
