/**
 * A CRL distribution point for tests: node:http or node:https on 127.0.0.1, port 0, serving
 * whatever bytes the test gives it with an ETag and a Last-Modified, answering conditional
 * requests with 304, and able to fail, hang, redirect or stop. It records every request.
 */
import { createHash } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface ServedRequest {
  readonly path: string;
  readonly ifNoneMatch: string | null;
  readonly ifModifiedSince: string | null;
  readonly status: number;
}

/** How the next requests are answered. */
export type Behaviour =
  | { readonly kind: 'serve' }
  /** This status, with a short body. */
  | { readonly kind: 'status'; readonly status: number }
  /** Headers, then nothing: the client must time out. */
  | { readonly kind: 'hang' };

export class CrlServer {
  readonly requests: ServedRequest[] = [];
  behaviour: Behaviour = { kind: 'serve' };
  /** path → Location answered with 302. */
  readonly redirects = new Map<string, string>();
  /** false: 200 bodies are sent chunked, without Content-Length. */
  sendLength = true;
  /** Added to 200 answers. */
  extraHeaders: Record<string, string> = {};
  private body = Buffer.alloc(0);
  private etag = '';
  private lastModified = '';
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** `tls`: serve https:// with this certificate and key. */
  static async start(tls?: { cert: string; key: string }): Promise<CrlServer> {
    let crlServer: CrlServer | undefined;
    const handler = (req: IncomingMessage, res: ServerResponse) => crlServer?.answer(req, res);
    const server = tls === undefined ? createHttpServer(handler) : createHttpsServer(tls, handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    crlServer = new CrlServer(
      server,
      `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    );
    return crlServer;
  }

  url(path = '/ca.crl'): string {
    return `${this.origin}${path}`;
  }

  /** Serves `bytes` from now on, with a new ETag and Last-Modified. */
  serve(bytes: Uint8Array | string): void {
    this.body = Buffer.from(bytes);
    this.etag = `"${createHash('sha256').update(this.body).digest('hex').slice(0, 16)}"`;
    // One second later than the last: Last-Modified has whole seconds.
    const last = this.lastModified === '' ? 0 : Date.parse(this.lastModified);
    this.lastModified = new Date(Math.max(Date.now(), last + 1000)).toUTCString();
    this.behaviour = { kind: 'serve' };
  }

  count(status?: number): number {
    return this.requests.filter((r) => status === undefined || r.status === status).length;
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '/';
    const record = (status: number) =>
      this.requests.push({
        path,
        ifNoneMatch: header(req, 'if-none-match'),
        ifModifiedSince: header(req, 'if-modified-since'),
        status,
      });
    const location = this.redirects.get(path);
    if (location !== undefined) {
      record(302);
      res.writeHead(302, { location, 'content-length': 0 }).end();
      return;
    }
    const b = this.behaviour;
    if (b.kind === 'hang') {
      record(200);
      res.writeHead(200, { 'content-length': this.body.length });
      res.write(this.body.subarray(0, 10));
      return;
    }
    if (b.kind === 'status') {
      record(b.status);
      res.writeHead(b.status, { 'content-type': 'text/plain' }).end('no\n');
      return;
    }
    if (this.notModified(req)) {
      record(304);
      res.writeHead(304, { etag: this.etag, 'last-modified': this.lastModified }).end();
      return;
    }
    record(200);
    res.writeHead(200, {
      'content-type': 'application/pkix-crl',
      ...(this.sendLength ? { 'content-length': this.body.length } : {}),
      etag: this.etag,
      'last-modified': this.lastModified,
      ...this.extraHeaders,
    });
    res.end(this.body);
  }

  /** RFC 9110 13.1: If-None-Match decides when present; If-Modified-Since otherwise. */
  private notModified(req: IncomingMessage): boolean {
    const inm = header(req, 'if-none-match');
    if (inm !== null) return inm.split(',').some((tag) => tag.trim() === this.etag);
    const ims = header(req, 'if-modified-since');
    return ims !== null && Date.parse(ims) >= Date.parse(this.lastModified);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function header(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return typeof value === 'string' ? value : null;
}
