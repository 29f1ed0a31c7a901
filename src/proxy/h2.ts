/**
 * HTTP/2 forwarding on the 1:1 connection model: each client session gets its own upstream
 * HTTP/2 session (from the warm pool), each client stream becomes one upstream stream with
 * rewritten request headers; bodies, trailers and resets pass both ways.
 */
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants,
  createServer,
  type Http2Server,
  connect as h2connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Limits } from '../config/config.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { methodLabel, requestDuration, requests, upstreamErrors } from '../metrics/metrics.js';
import type { ClientConnection } from './connection.js';
import { isStreamingRequest } from './h1.js';
import {
  type HeaderList,
  type IdentityHeaderRules,
  pairsFromRaw,
  sanitizeRequestHeaders,
} from './headers.js';
import { badGateway, badRequest, type StatusResponse, upstreamUnavailable } from './status.js';
import type { Upstream } from './upstream.js';

const kSession = Symbol('kube-crl-proxy.h2session');
type TaggedSocket = Socket & { [kSession]?: H2Session };

const WINDOW_SIZE = 1 << 20;
const SESSION_WINDOW_SIZE = 16 << 20;

export interface H2Options {
  readonly upstream: Upstream;
  readonly rules: IdentityHeaderRules;
  readonly upstreamUrl: string;
  readonly limits: Limits;
  readonly log: Logger;
}

interface H2Session {
  readonly client: ClientConnection;
  readonly upstream: Promise<ClientHttp2Session>;
  /** Watches and logs -f in flight: ended cleanly on shutdown. */
  readonly streaming: Set<() => void>;
}

export class H2Forwarder {
  private readonly server: Http2Server;

  constructor(private readonly options: H2Options) {
    // Never listens: accepted TLS sockets are handed to it with emit('connection').
    this.server = createServer({
      maxSessionMemory: 64,
      maxHeaderListPairs: 256,
      settings: {
        initialWindowSize: WINDOW_SIZE,
        maxConcurrentStreams: options.limits.h2MaxConcurrentStreams,
        maxHeaderListSize: options.limits.maxHeaderBytes,
      },
    });
    this.server.on('session', (session: ServerHttp2Session) => this.onSession(session));
    this.server.on(
      'stream',
      (
        stream: ServerHttp2Stream,
        headers: IncomingHttpHeaders,
        _flags: number,
        rawHeaders: string[],
      ) => this.onStream(stream, headers, rawHeaders),
    );
  }

  serve(client: ClientConnection): void {
    const upstream = this.openUpstream(client);
    (client.socket as TaggedSocket)[kSession] = { client, upstream, streaming: new Set() };
    this.server.emit('connection', client.socket);
  }

  private openUpstream(client: ClientConnection): Promise<ClientHttp2Session> {
    return this.options.upstream.connect('h2', client.upstreamRole).then((socket) => {
      const session = h2connect(this.options.upstreamUrl, {
        createConnection: () => socket,
        maxSessionMemory: 64,
        settings: { initialWindowSize: WINDOW_SIZE, enablePush: false },
      });
      session.on('error', (err) => {
        upstreamErrors.inc({ kind: 'reset' });
        this.options.log.debug({ err: errorMessage(err) }, 'upstream h2 session error');
      });
      session.once('connect', () => widenWindow(session));
      if (client.socket.destroyed) session.destroy();
      client.socket.once('close', () => session.destroy());
      return session;
    });
  }

  private onSession(session: ServerHttp2Session): void {
    const state = (session.socket as TaggedSocket)[kSession];
    if (state === undefined) {
      session.destroy();
      return;
    }
    session.on('error', (err) =>
      this.options.log.debug({ err: errorMessage(err) }, 'client h2 session error'),
    );
    session.once('connect', () => widenWindow(session));
    state.client.setTerminator(() => {
      if (!session.destroyed) {
        session.goaway(constants.NGHTTP2_NO_ERROR);
        session.destroy();
      }
    });
    state.client.setDrainer(() => {
      // GOAWAY: no new stream; the session closes once the open ones are done.
      session.close();
      for (const endCleanly of state.streaming) endCleanly();
    });
    this.keepAlive(session);
    state.upstream.then(
      (upstream) => {
        // The apiserver's stream limit applies end to end: the client learns it from us.
        upstream.once('remoteSettings', (settings) => {
          const limit = Math.min(
            settings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY,
            this.options.limits.h2MaxConcurrentStreams,
          );
          if (!session.destroyed && limit < this.options.limits.h2MaxConcurrentStreams) {
            session.settings({ maxConcurrentStreams: limit });
          }
        });
        // The upstream connection went away: so does this one, gracefully.
        upstream.once('close', () => {
          if (!session.destroyed && !session.closed) session.close();
        });
      },
      () => {},
    );
  }

  /**
   * Node has no idle timeout for HTTP/2 sessions: ping them, and close one whose ping is still
   * unanswered one interval later (the client is gone without a FIN).
   */
  private keepAlive(session: ServerHttp2Session): void {
    let awaiting = false;
    const timer = setInterval(() => {
      if (session.destroyed || session.closed) return;
      if (awaiting) {
        this.options.log.info({}, 'closing an HTTP/2 client session that stopped answering pings');
        session.destroy();
        return;
      }
      awaiting = true;
      session.ping((err) => {
        if (!err) awaiting = false;
      });
    }, this.options.limits.h2PingIntervalMs);
    timer.unref();
    session.once('close', () => clearInterval(timer));
  }

  private onStream(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    rawHeaders: string[],
  ): void {
    // A stream we reset (relaying an upstream reset, or on shutdown) emits an error; it is
    // expected and must never reach the process as an unhandled 'error'.
    stream.on('error', (err) =>
      this.options.log.debug({ err: errorMessage(err) }, 'client h2 stream error'),
    );
    const state = (stream.session?.socket as TaggedSocket | undefined)?.[kSession];
    if (state === undefined) {
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const started = performance.now();
    const method = headers[':method'];
    if (method === 'CONNECT') {
      // exec, attach and port-forward are HTTP/1.1 upgrades; kubectl opens them on their own
      // HTTP/1.1 connections. A tunnel over HTTP/2 (RFC 8441) is not offered.
      requests.inc({ method: 'CONNECT', code: '400', protocol: 'h2' });
      respondStatus(
        stream,
        badRequest(
          'upgrades (exec, attach, port-forward) must use HTTP/1.1; CONNECT over HTTP/2 is not supported',
        ),
      );
      return;
    }
    const path = headers[':path'] ?? '/';
    const streaming = isStreamingRequest(path);
    let recorded = false;
    const record = (code: number) => {
      if (recorded) return;
      recorded = true;
      requests.inc({ method: methodLabel(method), code: String(code), protocol: 'h2' });
      if (!streaming)
        requestDuration.observe(
          { code: String(code), protocol: 'h2' },
          (performance.now() - started) / 1000,
        );
    };
    const outgoing = this.upstreamHeaders(pairsFromRaw(rawHeaders), state.client);
    state.upstream.then(
      (upstream) => {
        const upstreamStream = this.forwardStream(stream, upstream, outgoing, record);
        if (streaming && upstreamStream !== null) {
          // On shutdown a watch or logs -f ends as a complete response, so the client re-lists
          // and watches again rather than seeing an error.
          const endCleanly = () => {
            upstreamStream.unpipe(stream);
            upstreamStream.close(constants.NGHTTP2_CANCEL);
            if (stream.headersSent) stream.end();
          };
          state.streaming.add(endCleanly);
          stream.once('close', () => state.streaming.delete(endCleanly));
        }
      },
      (err: Error) => {
        record(503);
        respondStatus(stream, upstreamUnavailable(errorMessage(err)));
      },
    );
  }

  private upstreamHeaders(raw: HeaderList, client: ClientConnection): OutgoingHttpHeaders {
    const pseudo = raw.filter(([n]) => n.startsWith(':'));
    const regular = sanitizeRequestHeaders(
      raw.filter(([n]) => !n.startsWith(':')),
      client.identity,
      this.options.rules,
      { keepTeTrailers: true, forwardedFor: client.remoteAddress },
    );
    const out: OutgoingHttpHeaders = Object.create(null);
    for (const [name, value] of pseudo) out[name] = value;
    for (const [name, value] of regular) {
      const key = name.toLowerCase();
      const existing = out[key];
      if (existing === undefined) out[key] = value;
      else out[key] = Array.isArray(existing) ? [...existing, value] : [String(existing), value];
    }
    return out;
  }

  private forwardStream(
    stream: ServerHttp2Stream,
    upstream: ClientHttp2Session,
    headers: OutgoingHttpHeaders,
    record: (code: number) => void,
  ): ClientHttp2Stream | null {
    if (stream.destroyed) return null;
    if (upstream.destroyed || upstream.closed) {
      record(503);
      respondStatus(stream, upstreamUnavailable('the upstream connection closed'));
      return null;
    }
    let upstreamStream: ClientHttp2Stream;
    try {
      upstreamStream = upstream.request(headers, {
        endStream: stream.readableEnded || stream.endAfterHeaders,
        waitForTrailers: !stream.endAfterHeaders,
      });
    } catch (err) {
      record(502);
      respondStatus(stream, badGateway(`cannot forward the request: ${errorMessage(err)}`));
      return null;
    }
    // Request trailers, if any, pass sanitised like the headers (never identity headers).
    let requestTrailers: OutgoingHttpHeaders = {};
    stream.on('trailers', (trailers: IncomingHttpHeaders) => {
      requestTrailers = this.upstreamTrailers(trailers);
    });
    upstreamStream.on('wantTrailers', () => upstreamStream.sendTrailers(requestTrailers));
    if (!stream.endAfterHeaders) stream.pipe(upstreamStream);

    let responseTrailers: OutgoingHttpHeaders = {};
    upstreamStream.on('trailers', (trailers: IncomingHttpHeaders) => {
      responseTrailers = withoutPseudo(trailers);
    });
    upstreamStream.on('response', (responseHeaders: IncomingHttpHeaders) => {
      const status = Number(responseHeaders[':status'] ?? 502);
      if (stream.destroyed || stream.closed) return;
      stream.respond(withoutPseudo(responseHeaders, status), { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(responseTrailers));
      upstreamStream.pipe(stream);
      upstreamStream.once('end', () => record(status));
    });
    upstreamStream.on('error', (err) => {
      if (!stream.headersSent && !stream.destroyed) {
        record(502);
        respondStatus(stream, badGateway(`upstream stream failed: ${errorMessage(err)}`));
      }
    });
    // Resets travel end to end with their code (CANCEL stays CANCEL).
    upstreamStream.once('close', () => {
      if (
        !stream.destroyed &&
        !stream.closed &&
        upstreamStream.rstCode !== constants.NGHTTP2_NO_ERROR
      ) {
        stream.close(upstreamStream.rstCode ?? constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
    stream.once('close', () => {
      if (!upstreamStream.destroyed && !upstreamStream.closed) {
        upstreamStream.close(stream.rstCode || constants.NGHTTP2_CANCEL);
      }
    });
    return upstreamStream;
  }

  private upstreamTrailers(trailers: IncomingHttpHeaders): OutgoingHttpHeaders {
    const pairs: HeaderList = [];
    for (const [name, value] of Object.entries(trailers)) {
      if (value === undefined || name.startsWith(':')) continue;
      for (const v of Array.isArray(value) ? value : [value]) pairs.push([name, v]);
    }
    const out: OutgoingHttpHeaders = Object.create(null);
    for (const [name, value] of sanitizeRequestHeaders(pairs, null, this.options.rules)) {
      if (name.toLowerCase() !== 'x-forwarded-for') out[name.toLowerCase()] = value;
    }
    return out;
  }
}

function withoutPseudo(headers: IncomingHttpHeaders, status?: number): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = Object.create(null);
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(':') && value !== undefined) out[name] = value;
  }
  if (status !== undefined) out[':status'] = status;
  return out;
}

/** Session-level flow control window; a session its client already left is skipped. */
function widenWindow(session: ClientHttp2Session | ServerHttp2Session): void {
  if (!session.destroyed && !session.closed) session.setLocalWindowSize(SESSION_WINDOW_SIZE);
}

function respondStatus(stream: ServerHttp2Stream, status: StatusResponse): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  stream.respond({ ':status': status.code, 'content-type': 'application/json' });
  stream.end(status.body);
}
