/**
 * The HTTP side of the rejection contract. Under --reject-mode=status a refused client, whose
 * TLS handshake is complete, gets for its first request 401 with a Kubernetes Status naming the
 * reason, then the connection closes; under --reject-mode=alert so does every client the TLS
 * layer could not send an alert to (TLS 1.2: tls/refusal.ts). Nothing is sent upstream. With
 * --reject-mode=close the connection is dropped right after the handshake instead.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import {
  createServer as createH2Server,
  type Http2Server,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { RejectMode } from '../config/config.js';
import { methodLabel, requests } from '../metrics/metrics.js';
import { createServer as createH1Server } from '../node-http.js';
import type { RejectedVerdict } from '../tls/listener.js';
import { type StatusResponse, unauthorized } from './status.js';

const kVerdict = Symbol('kube-crl-proxy.rejected');
type TaggedSocket = Socket & { [kVerdict]?: RejectedVerdict };

/** A rejected client gets this long to send its first request. */
const REJECTED_LINGER_MS = 10_000;

export class Rejecter {
  private readonly h1: Server;
  private readonly h2: Http2Server;

  constructor(private readonly mode: RejectMode) {
    this.h1 = createH1Server({
      headersTimeout: REJECTED_LINGER_MS,
      requestTimeout: REJECTED_LINGER_MS,
    });
    this.h1.on('request', (req: IncomingMessage, res: ServerResponse) => {
      requests.inc({ method: methodLabel(req.method), code: '401', protocol: 'http/1.1' });
      const status = statusFor(req.socket);
      res.shouldKeepAlive = false;
      res.writeHead(status.code, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(status.body),
        Connection: 'close',
      });
      res.end(status.body, () => req.socket.destroy());
    });
    this.h1.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      requests.inc({ method: methodLabel(req.method), code: '401', protocol: 'http/1.1' });
      const status = statusFor(req.socket);
      socket.end(
        `HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(status.body)}\r\nConnection: close\r\n\r\n${status.body}`,
      );
    });
    this.h1.on('clientError', (_err, socket: Duplex) => socket.destroy());
    this.h2 = createH2Server();
    this.h2.on('session', (session: ServerHttp2Session) => {
      session.on('error', () => session.destroy());
    });
    this.h2.on('stream', (stream: ServerHttp2Stream, headers) => {
      // A refused client can still reset or malform its stream: never an unhandled error.
      stream.on('error', () => {});
      requests.inc({ method: methodLabel(headers[':method']), code: '401', protocol: 'h2' });
      const session = stream.session;
      const status = statusFor(session?.socket as Socket);
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ':status': status.code, 'content-type': 'application/json' });
      stream.end(status.body);
      // GOAWAY: no further stream is accepted; the session closes once this one is done.
      session?.close();
    });
  }

  reject(socket: TLSSocket, verdict: RejectedVerdict): void {
    if (this.mode === 'close') {
      socket.destroy();
      return;
    }
    (socket as TaggedSocket)[kVerdict] = verdict;
    setTimeout(() => socket.destroy(), REJECTED_LINGER_MS).unref();
    if (socket.alpnProtocol === 'h2') this.h2.emit('connection', socket);
    else this.h1.emit('connection', socket);
  }
}

function statusFor(socket: Socket | undefined): StatusResponse {
  const verdict = (socket as TaggedSocket | undefined)?.[kVerdict];
  return unauthorized(verdict?.message ?? 'client certificate rejected');
}
