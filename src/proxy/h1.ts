/**
 * HTTP/1.1 forwarding on the 1:1 connection model: each client connection gets its own
 * upstream connection (an Agent of one socket, fed from the warm pool), requests go through
 * in order, bodies stream both ways. Upgrade requests are handed to upgrade.ts.
 */
import {
  Agent,
  type ClientRequest,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Limits } from '../config/config.js';
import { errorMessage, UpstreamError } from '../errors.js';
import type { Logger } from '../log.js';
import { methodLabel, requestDuration, requests, upstreamErrors } from '../metrics/metrics.js';
import type { ClientConnection } from './connection.js';
import {
  type IdentityHeaderRules,
  pairsFromRaw,
  rawFromPairs,
  sanitizeRequestHeaders,
  sanitizeResponseHeaders,
} from './headers.js';
import { badGateway, type StatusResponse, upstreamUnavailable } from './status.js';
import type { UpgradeForwarder } from './upgrade.js';
import type { Upstream, UpstreamRole } from './upstream.js';

const kConnection = Symbol('kube-crl-proxy.connection');
type TaggedSocket = Socket & { [kConnection]?: H1Connection };

/** A request being forwarded on a client connection. */
interface InFlight {
  readonly res: ServerResponse;
  /** Watches and logs -f: ended cleanly (a complete chunked response) on shutdown. */
  readonly streaming: boolean;
  endCleanly(): void;
}

interface H1Connection {
  readonly client: ClientConnection;
  readonly agent: Agent;
  readonly inFlight: Set<InFlight>;
  draining: boolean;
}

export interface H1Options {
  readonly upstream: Upstream;
  readonly rules: IdentityHeaderRules;
  readonly upgrades: UpgradeForwarder;
  readonly limits: Limits;
  readonly log: Logger;
}

/** A long-running request: excluded from the latency histogram. */
export function isStreamingRequest(path: string): boolean {
  const q = path.indexOf('?');
  if (q < 0) return false;
  return /(?:^|&)(?:watch=(?:true|1)|follow=true)(?:&|$)/.test(path.slice(q + 1));
}

export class H1Forwarder {
  private readonly server: Server;

  constructor(private readonly options: H1Options) {
    // Never listens: accepted TLS sockets are handed to it with emit('connection').
    const { limits } = options;
    this.server = createServer({
      keepAliveTimeout: limits.httpIdleTimeoutMs,
      headersTimeout: limits.httpHeaderTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      // Node checks the head timeout on this interval (30 s by default): check often enough.
      connectionsCheckingInterval: Math.min(1000, Math.ceil(limits.httpHeaderTimeoutMs / 2)),
    });
    // Node 20 defaults requestTimeout to 300 s, which would cut watches and logs -f.
    this.server.requestTimeout = 0;
    this.server.timeout = 0;
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const conn = (req.socket as TaggedSocket)[kConnection];
      if (conn === undefined) {
        socket.destroy();
        return;
      }
      options.upgrades.forward(conn.client, req, socket, head);
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      this.onClientError(err, socket),
    );
  }

  serve(client: ClientConnection): void {
    const agent = new UpstreamAgent(this.options.upstream, client.upstreamRole);
    const conn: H1Connection = { client, agent, inFlight: new Set(), draining: false };
    (client.socket as TaggedSocket)[kConnection] = conn;
    client.socket.once('close', () => agent.destroy());
    client.setDrainer(() => {
      conn.draining = true;
      if (conn.inFlight.size === 0) client.socket.end();
      for (const request of conn.inFlight) {
        // Node then answers with Connection: close and closes after the response.
        request.res.shouldKeepAlive = false;
        if (request.streaming) request.endCleanly();
      }
    });
    this.server.emit('connection', client.socket);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const conn = (req.socket as TaggedSocket)[kConnection];
    if (conn === undefined) {
      req.socket.destroy();
      return;
    }
    const started = performance.now();
    const path = req.url ?? '/';
    const streaming = isStreamingRequest(path);
    const headers = sanitizeRequestHeaders(
      pairsFromRaw(req.rawHeaders),
      conn.client.identity,
      this.options.rules,
      {
        forwardedFor: conn.client.remoteAddress,
      },
    );
    if (!headers.some(([n]) => n.toLowerCase() === 'host'))
      headers.unshift(['Host', req.headers.host ?? 'kubernetes']);
    const upstreamRequest = request({
      agent: conn.agent,
      method: req.method,
      path,
      headers: rawFromPairs(headers),
      setHost: false,
    });
    let finished = false;
    const record = (code: number) => {
      if (finished) return;
      finished = true;
      requests.inc({ method: methodLabel(req.method), code: String(code), protocol: 'http/1.1' });
      if (!streaming)
        requestDuration.observe(
          { code: String(code), protocol: 'http/1.1' },
          (performance.now() - started) / 1000,
        );
    };
    let upstreamResponse: IncomingMessage | null = null;
    const inFlight: InFlight = {
      res,
      streaming,
      endCleanly: () => {
        upstreamResponse?.unpipe(res);
        upstreamRequest.destroy();
        if (res.headersSent) res.end();
        else writeStatus(res, upstreamUnavailable('the proxy is shutting down'));
      },
    };
    conn.inFlight.add(inFlight);
    if (conn.draining) res.shouldKeepAlive = false;
    upstreamRequest.on('response', (response: IncomingMessage) => {
      upstreamResponse = response;
      relayResponse(response, res, () => record(response.statusCode ?? 0));
    });
    upstreamRequest.on('error', (err) => {
      this.onUpstreamError(err, res, upstreamRequest);
      record(res.headersSent ? res.statusCode : 0);
    });
    res.on('close', () => {
      conn.inFlight.delete(inFlight);
      // The client went away before the response ended: cancel upstream too.
      if (!res.writableFinished) upstreamRequest.destroy();
      if (conn.draining && conn.inFlight.size === 0) conn.client.socket.end();
    });
    req.pipe(upstreamRequest);
  }

  private onUpstreamError(err: Error, res: ServerResponse, upstreamRequest: ClientRequest): void {
    upstreamRequest.destroy();
    if (res.headersSent) {
      // Part of the response is out: the only honest signal left is to cut the connection.
      res.destroy();
      return;
    }
    const status =
      err instanceof UpstreamError
        ? upstreamUnavailable(err.message)
        : badGateway(`upstream request failed: ${errorMessage(err)}`);
    if (!(err instanceof UpstreamError)) upstreamErrors.inc({ kind: 'reset' });
    this.options.log.warn({ err: errorMessage(err) }, 'upstream request failed');
    writeStatus(res, status);
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const code = tooLarge ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `kube-crl-proxy: malformed request: ${err.code ?? err.message}`,
      reason: 'BadRequest',
      code,
    });
    socket.end(
      `HTTP/1.1 ${code} ${tooLarge ? 'Request Header Fields Too Large' : code === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}

function relayResponse(
  upstreamResponse: IncomingMessage,
  res: ServerResponse,
  done: () => void,
): void {
  const headers = sanitizeResponseHeaders(pairsFromRaw(upstreamResponse.rawHeaders));
  res.writeHead(
    upstreamResponse.statusCode ?? 502,
    upstreamResponse.statusMessage,
    rawFromPairs(headers),
  );
  // Watches and logs -f: every chunk goes out as it comes.
  res.flushHeaders();
  upstreamResponse.pipe(res, { end: false });
  upstreamResponse.on('end', () => {
    if (upstreamResponse.rawTrailers.length > 0)
      res.addTrailers(pairsFromRaw(upstreamResponse.rawTrailers));
    res.end();
    done();
  });
  upstreamResponse.on('error', () => res.destroy());
}

export function writeStatus(res: ServerResponse, status: StatusResponse): void {
  res.writeHead(status.code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(status.body),
  });
  res.end(status.body);
}

/**
 * One upstream socket per client connection: requests of that connection queue on it in order
 * (maxSockets 1) and it is destroyed with the client connection.
 */
class UpstreamAgent extends Agent {
  constructor(
    private readonly upstream: Upstream,
    private readonly role: UpstreamRole,
  ) {
    super({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
  }

  override createConnection(
    _options: unknown,
    callback: (err: Error | null, socket?: Duplex) => void,
  ): undefined {
    this.upstream.connect('http/1.1', this.role).then(
      (socket) => callback(null, socket),
      (err: Error) => callback(err),
    );
    return undefined;
  }
}
