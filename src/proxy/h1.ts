/**
 * HTTP/1.1 forwarding on the 1:1 connection model: each client connection gets its own
 * upstream connection (an Agent of one socket, fed from the warm pool); its requests go
 * upstream one at a time, in order, and bodies stream both ways. Upgrade requests are handed
 * to upgrade.ts.
 *
 * Framing is never copied from the client: Node's parser (llhttp, strict) has already refused
 * what could smuggle (Content-Length with Transfer-Encoding, bad chunks, bare LF, …), and the
 * upstream request is framed from what it parsed — chunked, or the exact Content-Length, or no
 * body at all. Copying the client's headers instead once let a GET carry a second, raw request
 * with forged identity headers past the sanitiser.
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
  type HeaderList,
  type IdentityHeaderRules,
  pairsFromRaw,
  rawFromPairs,
  sanitizeRequestHeaders,
  sanitizeResponseHeaders,
} from './headers.js';
import {
  badGateway,
  badRequest,
  type StatusResponse,
  statusResponse,
  upstreamUnavailable,
} from './status.js';
import { isStreamingRequest } from './streaming.js';
import type { UpgradeForwarder } from './upgrade.js';
import type { Upstream, UpstreamRole } from './upstream.js';

const kConnection = Symbol('kube-crl-proxy.connection');
const kAnswered = Symbol('kube-crl-proxy.answered');
type TaggedSocket = Socket & { [kConnection]?: H1Connection; [kAnswered]?: boolean };

/** Pipelined requests waiting on one connection beyond this close it (a flood, not a client). */
const MAX_QUEUED_REQUESTS = 64;

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
  /** Settles when every request received so far has been answered. */
  queue: Promise<void>;
  draining: boolean;
}

export interface H1Options {
  readonly upstream: Upstream;
  readonly rules: IdentityHeaderRules;
  readonly upgrades: UpgradeForwarder;
  readonly limits: Limits;
  readonly log: Logger;
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
    // Node drops header lines past maxHeadersCount without a word: keep one more than the
    // limit so a request over it is seen, and refused, whole.
    this.server.maxHeadersCount = limits.maxHeaderCount + 1;
    // Node starts tracking connections for the head timeout on 'listening', which a server that
    // never listens never emits: without this, --http-header-timeout would not be enforced.
    this.server.emit('listening');
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const conn = (req.socket as TaggedSocket)[kConnection];
      if (conn === undefined) {
        socket.destroy();
        return;
      }
      if (this.refusedForHeaderCount(req, socket, conn)) return;
      // After earlier pipelined requests, never alongside them.
      conn.queue.then(() =>
        options.upgrades.forward(
          conn.client,
          {
            method: req.method ?? 'GET',
            target: req.url ?? '/',
            headers: pairsFromRaw(req.rawHeaders),
            upgrade: req.headers.upgrade ?? '',
            hasBody: hasBody(req),
          },
          socket,
          head,
        ),
      );
    });
    this.server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      requests.inc({ method: 'CONNECT', code: '400', protocol: 'http/1.1' });
      this.answerAndClose(
        socket,
        badRequest('CONNECT is not supported (this is not a forward proxy)'),
      );
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      this.onClientError(err, socket),
    );
  }

  serve(client: ClientConnection): void {
    const agent = new UpstreamAgent(this.options.upstream, client.upstreamRole);
    const conn: H1Connection = {
      client,
      agent,
      inFlight: new Set(),
      queue: Promise.resolve(),
      draining: false,
    };
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
    if (this.refusedForHeaderCount(req, req.socket, conn)) return;
    if (conn.inFlight.size >= MAX_QUEUED_REQUESTS) {
      this.options.log.warn(
        { connection: conn.client.id },
        'too many pipelined requests; closing the connection',
      );
      req.socket.destroy();
      return;
    }
    const exchange = new Exchange(req, res, conn, this.options);
    conn.inFlight.add(exchange);
    if (conn.draining) res.shouldKeepAlive = false;
    res.on('close', () => {
      conn.inFlight.delete(exchange);
      if (conn.draining && conn.inFlight.size === 0) conn.client.socket.end();
    });
    // One request upstream at a time: the 1:1 connection stays one connection, and answers
    // leave in the order the requests came.
    conn.queue = conn.queue.then(() => exchange.run());
  }

  /**
   * A request Node's parser refused. Node calls this again for later bytes on the same
   * socket: answer once, after the responses still owed to earlier pipelined requests.
   */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const tagged = socket as TaggedSocket;
    if (tagged[kAnswered]) return;
    tagged[kAnswered] = true;
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const code = tooLarge ? 431 : timedOut ? 408 : 400;
    requests.inc({ method: 'OTHER', code: String(code), protocol: 'http/1.1' });
    const status = statusResponse(
      code,
      timedOut ? 'Timeout' : 'BadRequest',
      `kube-crl-proxy: malformed request: ${err.code ?? err.message}`,
    );
    const conn = tagged[kConnection];
    // A request whose body turned out malformed is abandoned (its upstream side is cut before
    // it could complete); requests before it are answered first.
    for (const exchange of conn?.inFlight ?? [])
      if (exchange instanceof Exchange) exchange.abandonIfIncomplete();
    (conn?.queue ?? Promise.resolve()).then(() => this.answerAndClose(socket, status));
  }

  /**
   * More header lines than --max-header-count: 431 after the answers owed to earlier pipelined
   * requests, then the connection closes (its later bytes are never parsed as requests).
   */
  private refusedForHeaderCount(req: IncomingMessage, socket: Duplex, conn: H1Connection): boolean {
    const tagged = req.socket as TaggedSocket;
    if (tagged[kAnswered]) {
      socket.destroy();
      return true;
    }
    const limit = this.options.limits.maxHeaderCount;
    if (req.rawHeaders.length / 2 <= limit) return false;
    tagged[kAnswered] = true;
    requests.inc({ method: 'OTHER', code: '431', protocol: 'http/1.1' });
    const status = statusResponse(
      431,
      'BadRequest',
      `kube-crl-proxy: the request has more than ${limit} header fields (--max-header-count)`,
    );
    conn.queue.then(() => this.answerAndClose(socket, status));
    return true;
  }

  /** Writes a Status and closes, reading (and dropping) what the client still sends meanwhile. */
  private answerAndClose(socket: Duplex, status: StatusResponse): void {
    socket.on('data', () => {});
    socket.resume();
    if (socket.writable) {
      const text =
        status.code === 431
          ? 'Request Header Fields Too Large'
          : status.code === 408
            ? 'Request Timeout'
            : 'Bad Request';
      socket.end(
        `HTTP/1.1 ${status.code} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(status.body)}\r\nConnection: close\r\n\r\n${status.body}`,
      );
    }
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}

/** One request forwarded upstream and its response relayed back. */
class Exchange implements InFlight {
  readonly streaming: boolean;
  private upstreamRequest: ClientRequest | null = null;
  private upstreamResponse: IncomingMessage | null = null;
  private readonly started = performance.now();
  private recorded = false;
  private abandoned = false;
  private settle: (() => void) | null = null;

  constructor(
    private readonly req: IncomingMessage,
    readonly res: ServerResponse,
    private readonly conn: H1Connection,
    private readonly options: H1Options,
  ) {
    this.streaming = isStreamingRequest(req.url ?? '/');
  }

  /** The parser failed inside this request's body: cut it upstream and let the queue move on. */
  abandonIfIncomplete(): void {
    if (this.req.complete || this.abandoned) return;
    this.abandoned = true;
    this.upstreamRequest?.destroy();
    this.settle?.();
  }

  endCleanly(): void {
    this.upstreamResponse?.unpipe(this.res);
    this.upstreamRequest?.destroy();
    if (this.res.headersSent) this.res.end();
    else if (!this.res.writableEnded)
      writeStatus(this.res, upstreamUnavailable('the proxy is shutting down'));
  }

  /** Resolves when the exchange is over (answered, failed or abandoned); never rejects. */
  run(): Promise<void> {
    const { req, res } = this;
    if (this.abandoned || res.destroyed || res.writableEnded) return Promise.resolve();
    const target = req.url ?? '';
    if (!target.startsWith('/')) {
      // Absolute-form and asterisk-form targets are for forward proxies, not an apiserver.
      this.record(400);
      res.shouldKeepAlive = false;
      req.resume();
      writeStatus(res, badRequest('the request target must be a path (origin-form)'));
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.settle = resolve;
      res.once('close', () => resolve());
      const upstreamRequest = request({
        agent: this.conn.agent,
        method: req.method,
        path: target,
        headers: rawFromPairs(this.upstreamHeaders()),
        setHost: false,
      });
      this.upstreamRequest = upstreamRequest;
      upstreamRequest.on('response', (response: IncomingMessage) => {
        this.upstreamResponse = response;
        relayResponse(response, res, () => this.record(response.statusCode ?? 0));
      });
      upstreamRequest.on('error', (err) => {
        this.onUpstreamError(err, upstreamRequest);
        this.record(res.headersSent ? res.statusCode : 0);
      });
      res.on('close', () => {
        // The client went away before the response ended: cancel upstream too.
        if (!res.writableFinished) upstreamRequest.destroy();
      });
      if (hasBody(req)) req.pipe(upstreamRequest);
      else {
        req.resume();
        upstreamRequest.end();
      }
    });
  }

  /** Sanitised headers with framing of our own, from what the parser read. */
  private upstreamHeaders(): HeaderList {
    const { req } = this;
    const headers = sanitizeRequestHeaders(
      pairsFromRaw(req.rawHeaders),
      this.conn.client.identity,
      this.options.rules,
      {
        forwardedFor: this.conn.client.remoteAddress,
      },
    ).filter(([name]) => {
      const lower = name.toLowerCase();
      return lower !== 'content-length' && lower !== 'transfer-encoding' && lower !== 'host';
    });
    headers.unshift(['Host', req.headers.host ?? 'kubernetes']);
    if (req.headers['transfer-encoding'] !== undefined)
      headers.push(['Transfer-Encoding', 'chunked']);
    else if (req.headers['content-length'] !== undefined)
      headers.push(['Content-Length', req.headers['content-length']]);
    return headers;
  }

  private record(code: number): void {
    if (this.recorded) return;
    this.recorded = true;
    const protocol = 'http/1.1';
    requests.inc({ method: methodLabel(this.req.method), code: String(code), protocol });
    if (!this.streaming) {
      requestDuration.observe(
        { code: String(code), protocol },
        (performance.now() - this.started) / 1000,
      );
    }
  }

  private onUpstreamError(err: Error, upstreamRequest: ClientRequest): void {
    upstreamRequest.destroy();
    const { res } = this;
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
    if (!res.writableEnded) writeStatus(res, status);
  }
}

/** Node's parser saw a body: chunked, or a non-zero Content-Length. */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
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
 * One upstream socket per client connection: its requests go one at a time (the forwarder
 * queues them), so the agent never needs a second socket; it is destroyed with the client
 * connection.
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
