/**
 * kubectl port-forward's fallback transport, as the load sees it: `POST …/portforward` with
 * `Upgrade: SPDY/3.1` over HTTP/1.1 with a client certificate, then SPDY/3.1 streams on the
 * same connection (the test suite's SpdyTestClient). Resolves once the 101 arrived.
 */
import { Buffer } from 'node:buffer';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { SpdyTestClient } from '../../test/fake-apiserver/streaming/spdy-test-client.js';
import { LOAD_HOST } from './tls-client.js';

export interface PortForwardTarget {
  readonly port: number;
  readonly podPath: string;
  readonly tls: { readonly cert: Buffer; readonly key: Buffer; readonly ca: Buffer };
}

export interface PortForwardTunnel {
  readonly socket: TLSSocket;
  readonly spdy: SpdyTestClient;
}

export function openPortForward(target: PortForwardTarget): Promise<PortForwardTunnel> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({
      host: LOAD_HOST,
      port: target.port,
      ...target.tls,
      ALPNProtocols: ['http/1.1'],
    });
    let head = Buffer.alloc(0);
    const fail = (why: string) => {
      socket.destroy();
      reject(new Error(why));
    };
    const onError = (err: Error) => fail(err.message);
    const onClose = () => fail('connection closed before the 101');
    socket.on('error', onError);
    socket.once('close', onClose);
    socket.once('secureConnect', () => {
      socket.write(
        [
          `POST ${target.podPath}/portforward HTTP/1.1`,
          `Host: ${LOAD_HOST}:${target.port}`,
          'User-Agent: kubectl/v1.32.4 (linux/amd64) kubernetes/bench',
          'Connection: Upgrade',
          'Upgrade: SPDY/3.1',
          'X-Stream-Protocol-Version: portforward.k8s.io',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
    });
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onHead);
      socket.off('close', onClose);
      if (!head.subarray(0, end).toString('latin1').startsWith('HTTP/1.1 101 ')) {
        fail(head.subarray(0, 200).toString('latin1'));
        return;
      }
      socket.off('error', onError);
      socket.on('error', () => {});
      socket.pause();
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve({ socket, spdy: new SpdyTestClient(socket) });
    };
    socket.on('data', onHead);
  });
}
