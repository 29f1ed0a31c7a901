/**
 * HTTP/1.1 forwarding as a head-rewriting splice on the 1:1 connection model: each client
 * connection gets its own upstream connection (from the warm pool, opened at its first request
 * and again after the apiserver closed it between requests). Requests go up one at a time, in
 * order. Each request head is read strictly (head-parser.ts), sanitised and rebuilt; its body
 * passes as it comes, counted by Content-Length or read chunk by chunk (chunked.ts), so where a
 * request ends is never in doubt. Response bytes pass back untouched; their heads are read
 * only for framing (response.ts). Upgrade requests are handed to upgrade.ts.
 *
 * Framing is never copied from the client: the head upstream carries the framing the proxy
 * read — chunked, the exact Content-Length, or no body at all. Copying the client's headers
 * instead once let a GET carry a second, raw request with forged identity headers past the
 * sanitiser.
 */
import { Buffer } from 'node:buffer';
import type { TLSSocket } from 'node:tls';
import type { Limits } from '../../config/config.js';
import { errorMessage, RequestFramingError, UpstreamError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { upstreamErrors } from '../../metrics/metrics.js';
import type { ClientConnection, Cut } from '../connection.js';
import type { IdentityHeaderRules } from '../headers.js';
import { Output } from '../output.js';
import { recordRequest } from '../record.js';
import {
  badGateway,
  rawStatusResponse,
  type StatusResponse,
  statusResponse,
  upstreamUnavailable,
} from '../status.js';
import {
  isJsonMediaType,
  isStreamingRequest,
  isWatchRequest,
  watchErrorEvent,
} from '../streaming.js';
import type { UpgradeForwarder } from '../upgrade.js';
import type { Upstream } from '../upstream.js';
import { ChunkedBody } from './chunked.js';
import { HeadScanner, hasBody, parseRequestHead, type RequestHead } from './head-parser.js';
import {
  contentTypeOf,
  Framing,
  MAX_RESPONSE_HEAD,
  parseResponseHead,
  type ResponseHead,
  withConnectionClose,
} from './response.js';

export interface H1Options {
  readonly upstream: Upstream;
  readonly rules: IdentityHeaderRules;
  readonly upgrades: UpgradeForwarder;
  readonly limits: Limits;
  readonly log: Logger;
}

/**
 * Output a socket may hold before the side feeding it is paused (reading resumes when it has
 * drained).
 */
const HIGH_WATER_MARK = 256 * 1024;
/**
 * Client bytes read ahead of the request being forwarded (pipelined requests, a body waiting
 * for its upstream connection) before the client is paused.
 */
const MAX_READ_AHEAD = 1024 * 1024;
/** A connection being closed gets this long to flush its last answer. */
const CLOSE_GRACE_MS = 1000;
/** A cut watch gets this long to reach the end of the event under way before it is cut short. */
const CUT_GRACE_MS = 1000;
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

const Phase = {
  /** Reading a request head. */
  Head: 0,
  /** A head is read; its upstream connection is being opened. */
  Connecting: 1,
  /** Forwarding the request body. */
  Body: 2,
  /** The request is upstream: waiting for the end of its response. */
  Waiting: 3,
  /** Closing, or handed to the upgrade forwarder: nothing more is read as requests. */
  Gone: 4,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

const Deadline = { None: 0, Head: 1, Idle: 2 } as const;
type Deadline = (typeof Deadline)[keyof typeof Deadline];

export class H1Forwarder {
  constructor(private readonly options: H1Options) {}

  serve(client: ClientConnection): void {
    new Splice(client, this.options).start();
  }
}

/** One request on its way up and its response on its way back. */
class Exchange {
  readonly started = performance.now();
  readonly streaming: boolean;
  readonly watch: boolean;
  /** Request body bytes still to come (Content-Length). */
  bodyLeft: number;
  readonly chunked: ChunkedBody | null;
  bodyDone: boolean;
  response: ResponseHead | null = null;
  /** Response body bytes still to come (Framing.Length). */
  responseLeft = 0;
  responseChunked: ChunkedBody | null = null;
  /** A JSON watch: newline-delimited events, room for an ERROR event of the proxy's own. */
  jsonEvents = false;
  /** The ERROR event a cut watch ends with, once it reaches an event boundary. */
  finalEvent: Buffer | null = null;
  responseDone = false;
  /** Some of the response (its head at least) went to the client. */
  answered = false;
  recorded = false;

  constructor(
    readonly head: RequestHead,
    maxTrailerBytes: number,
  ) {
    this.streaming = isStreamingRequest(head.target);
    this.watch = this.streaming && isWatchRequest(head.target);
    this.bodyLeft = Math.max(0, head.contentLength);
    this.chunked = head.chunked ? new ChunkedBody(false, maxTrailerBytes) : null;
    this.bodyDone = !hasBody(head);
  }
}

class Splice {
  private readonly client: TLSSocket;
  private upstream: TLSSocket | null = null;
  private phase: Phase = Phase.Head;
  private exchange: Exchange | null = null;
  /** The rebuilt head of the current request while its upstream connection opens. */
  private pendingHead: Buffer | null = null;

  /** Client bytes not yet read (pipelined requests, a body waiting for its connection). */
  private readonly input: Buffer[] = [];
  private inputBytes = 0;
  /** A request head that spans reads, gathered (its own buffer, grown by doubling). */
  private headStore: Buffer | null = null;
  private headLength = 0;
  private readonly headScanner: HeadScanner;
  private readonly responseScanner = new HeadScanner(MAX_RESPONSE_HEAD);
  private responseHeadBytes: Buffer | null = null;
  private pumping = false;

  private readonly toUpstream = new Output();
  private readonly toClient = new Output();
  private clientPaused = false;
  private upstreamPaused = false;

  /** The connection closes once the current exchange is over. */
  private closeAfter = false;
  private draining = false;
  private closed = false;
  private handedOff = false;

  private deadlineKind: Deadline = Deadline.None;
  private deadline = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;

  private readonly onClientData = (chunk: Buffer) => this.readClient(chunk);
  private readonly onDrain = () => this.updateFlow();
  private readonly onTimer = () => this.timerFired();

  constructor(
    private readonly connection: ClientConnection,
    private readonly options: H1Options,
  ) {
    this.client = connection.socket;
    this.headScanner = new HeadScanner(options.limits.maxHeaderBytes);
  }

  start(): void {
    const { client } = this;
    client.setNoDelay(true);
    client.on('data', this.onClientData);
    client.on('drain', this.onDrain);
    client.once('close', () => this.onClientClose());
    this.connection.setDrainer(() => this.drain());
    this.connection.setTerminator((cut) => this.cut(cut));
    this.setDeadline(Deadline.Head);
    client.resume();
  }

  // ---------------------------------------------------------------- client → upstream

  private readClient(chunk: Buffer): void {
    if (this.phase === Phase.Gone) return;
    this.input.push(chunk);
    this.inputBytes += chunk.length;
    this.pump();
    this.updateFlow();
  }

  /** Reads what the current phase takes from the client's bytes. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    while (this.input.length > 0 && !this.closed) {
      if (this.phase === Phase.Head) this.readHead(this.shift());
      else if (this.phase === Phase.Body) this.readBody(this.shift());
      else break;
    }
    this.pumping = false;
    this.flushToUpstream();
    this.flushToClient();
  }

  private shift(): Buffer {
    const chunk = this.input.shift() as Buffer;
    this.inputBytes -= chunk.length;
    return chunk;
  }

  private unshift(rest: Buffer): void {
    this.input.unshift(rest);
    this.inputBytes += rest.length;
  }

  private readHead(chunk: Buffer): void {
    if (this.deadlineKind === Deadline.Idle) this.setDeadline(Deadline.Head);
    const buf = this.gatherHead(chunk);
    let length: number;
    let head: RequestHead;
    try {
      length = this.headScanner.scan(buf);
      if (length < 0) {
        this.keepHead(buf);
        return;
      }
      head = parseRequestHead(buf, length, this.options.limits.maxHeaderCount);
    } catch (err) {
      if (!(err instanceof RequestFramingError)) throw err;
      this.refuse(statusResponse(err.status, 'BadRequest', `kube-crl-proxy: ${err.message}`));
      return;
    }
    this.headStore = null;
    this.headLength = 0;
    this.headScanner.reset();
    if (length < buf.length) this.unshift(buf.subarray(length));
    this.startExchange(head);
  }

  /** The head so far with `chunk` added: `chunk` itself when it starts the head. */
  private gatherHead(chunk: Buffer): Buffer {
    if (this.headLength === 0) return chunk;
    let store = this.headStore as Buffer;
    const needed = this.headLength + chunk.length;
    if (needed > store.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, store.length * 2));
      store.copy(grown, 0, 0, this.headLength);
      store = grown;
      this.headStore = store;
    }
    chunk.copy(store, this.headLength);
    this.headLength = needed;
    return store.subarray(0, needed);
  }

  /** Keeps an incomplete head for the next read. */
  private keepHead(buf: Buffer): void {
    if (this.headLength > 0) return;
    const store = Buffer.allocUnsafe(Math.max(4096, buf.length * 2));
    buf.copy(store);
    this.headStore = store;
    this.headLength = buf.length;
  }

  private startExchange(head: RequestHead): void {
    this.setDeadline(Deadline.None);
    if (head.upgrade !== null) {
      this.handOffUpgrade(head);
      return;
    }
    const exchange = new Exchange(head, this.options.limits.maxHeaderBytes);
    this.exchange = exchange;
    if (head.close || this.draining) this.closeAfter = true;
    // As Node's server did: the proxy itself invites the body (1xx from upstream are dropped).
    if (head.expectContinue) this.toClient.push(CONTINUE);
    const upstreamHead = this.upstreamHead(head);
    if (this.upstream !== null) {
      this.toUpstream.push(upstreamHead);
      this.phase = exchange.bodyDone ? Phase.Waiting : Phase.Body;
      return;
    }
    this.pendingHead = upstreamHead;
    this.phase = Phase.Connecting;
    this.options.upstream.connect('http/1.1', this.connection.upstreamRole).then(
      (socket) => this.attach(socket),
      (err: unknown) =>
        this.upstreamFailed(
          err instanceof UpstreamError
            ? upstreamUnavailable(err.message)
            : badGateway(`upstream request failed: ${errorMessage(err)}`),
        ),
    );
  }

  /**
   * The request line and sanitised headers, with framing of the proxy's own. The request goes
   * up in the client's version and with the client's wish about the connection (asked again
   * here, the client's own Connection being hop-by-hop), so the apiserver answers it as it
   * would answer the client: `Connection: close` to a close, and to HTTP/1.0 never chunked,
   * kept alive only when the client asked and the length is known.
   */
  private upstreamHead(head: RequestHead): Buffer {
    const own = this.connection.ownHeaders(this.options.rules);
    let text = `${head.method} ${head.target} HTTP/1.${head.minor}\r\nHost: ${head.host ?? 'kubernetes'}\r\n${own.headLines(head.headers, head.connectionTokens)}`;
    if (head.minor === 1 && head.close) text += 'Connection: close\r\n';
    else if (head.minor === 0 && !head.close) text += 'Connection: keep-alive\r\n';
    if (head.chunked) text += 'Transfer-Encoding: chunked\r\n';
    else if (head.contentLength >= 0) text += `Content-Length: ${head.contentLength}\r\n`;
    return Buffer.from(`${text}\r\n`, 'latin1');
  }

  private readBody(chunk: Buffer): void {
    const exchange = this.exchange as Exchange;
    let end: number;
    if (exchange.chunked !== null) {
      try {
        end = exchange.chunked.feed(chunk, 0, chunk.length, this.toUpstream);
      } catch (err) {
        if (!(err instanceof RequestFramingError)) throw err;
        this.abandon(exchange, err);
        return;
      }
    } else {
      const n = Math.min(exchange.bodyLeft, chunk.length);
      this.toUpstream.pass(chunk, 0, n);
      exchange.bodyLeft -= n;
      end = exchange.bodyLeft === 0 ? n : -1;
    }
    if (end < 0) return;
    if (end < chunk.length) this.unshift(chunk.subarray(end));
    exchange.bodyDone = true;
    if (exchange.responseDone) this.finishExchange();
    else this.phase = Phase.Waiting;
  }

  /**
   * The body turned out malformed: the upstream connection is cut before the request could
   * complete, and the client gets a 400 if no answer has started.
   */
  private abandon(exchange: Exchange, err: RequestFramingError): void {
    this.toUpstream.take();
    this.dropUpstream();
    if (exchange.answered) {
      this.record(exchange, exchange.response?.status ?? 0);
      this.client.destroy();
      return;
    }
    this.answerLocally(
      exchange,
      statusResponse(err.status, 'BadRequest', `kube-crl-proxy: ${err.message}`),
    );
  }

  private flushToUpstream(): void {
    const out = this.toUpstream.take();
    if (out !== null && this.upstream !== null) this.upstream.write(out);
  }

  // ---------------------------------------------------------------- the upstream connection

  private attach(socket: TLSSocket): void {
    if (this.closed || this.phase !== Phase.Connecting) {
      socket.destroy();
      return;
    }
    if (socket.destroyed) {
      this.upstreamFailed(upstreamUnavailable('the upstream connection closed'));
      return;
    }
    this.upstream = socket;
    this.upstreamPaused = false;
    socket.on('data', (chunk: Buffer) => this.readUpstream(socket, chunk));
    socket.on('drain', this.onDrain);
    socket.on('error', (err) =>
      this.options.log.debug(
        { err: errorMessage(err), connection: this.connection.id },
        'upstream connection error',
      ),
    );
    socket.once('close', () => this.onUpstreamClose(socket));
    socket.resume();
    const exchange = this.exchange as Exchange;
    this.toUpstream.push(this.pendingHead as Buffer);
    this.pendingHead = null;
    this.phase = exchange.bodyDone ? Phase.Waiting : Phase.Body;
    this.pump();
    this.updateFlow();
  }

  /** No upstream connection for the current request. */
  private upstreamFailed(status: StatusResponse): void {
    const exchange = this.exchange;
    if (this.closed || exchange === null || this.phase !== Phase.Connecting) return;
    this.answerLocally(exchange, status);
  }

  private onUpstreamClose(socket: TLSSocket): void {
    if (socket !== this.upstream) return;
    this.upstream = null;
    const exchange = this.exchange;
    // Between requests: the next one opens a new connection.
    if (this.closed || exchange === null) return;
    if (exchange.responseDone) {
      // The rest of the request body has nowhere to go.
      this.closeAfter = true;
      this.finishExchange();
      return;
    }
    if (exchange.response?.framing === Framing.Close) {
      exchange.responseDone = true;
      this.closeAfter = true;
      this.finishExchange();
      return;
    }
    this.upstreamBroke(exchange, 'the upstream connection closed', 'reset');
  }

  /** The apiserver broke the exchange: a 502 if nothing went out yet, else a cut connection. */
  private upstreamBroke(
    exchange: Exchange | null,
    problem: string,
    kind: 'reset' | 'protocol',
  ): void {
    upstreamErrors.inc({ kind });
    this.options.log.warn(
      { err: problem, connection: this.connection.id },
      'upstream request failed',
    );
    this.dropUpstream();
    if (exchange === null) return;
    if (!exchange.answered) {
      this.answerLocally(exchange, badGateway(`upstream request failed: ${problem}`));
      return;
    }
    this.record(exchange, exchange.response?.status ?? 0);
    // Part of the response is out: the only honest signal left is to cut the connection.
    this.client.destroy();
  }

  private dropUpstream(): void {
    const upstream = this.upstream;
    this.upstream = null;
    upstream?.destroy();
  }

  // ---------------------------------------------------------------- upstream → client

  private readUpstream(socket: TLSSocket, chunk: Buffer): void {
    if (socket !== this.upstream || this.closed) return;
    // Requests go up one at a time: every byte of this read belongs to this exchange's response.
    const exchange = this.exchange;
    let buf = chunk;
    let pos = 0;
    while (pos < buf.length && this.upstream !== null) {
      if (exchange === null || exchange.responseDone || exchange !== this.exchange) {
        this.upstreamBroke(this.exchange, 'bytes after the response', 'protocol');
        break;
      }
      if (exchange.response !== null) {
        pos = this.readResponseBody(exchange, buf, pos);
        continue;
      }
      const rest = pos === 0 ? buf : buf.subarray(pos);
      const head =
        this.responseHeadBytes === null ? rest : Buffer.concat([this.responseHeadBytes, rest]);
      let length: number;
      let response: ResponseHead;
      try {
        length = this.responseScanner.scan(head);
        if (length < 0) {
          this.responseHeadBytes = head;
          break;
        }
        response = parseResponseHead(head, length, exchange.head.method);
      } catch (err) {
        this.upstreamBroke(exchange, errorMessage(err), 'protocol');
        break;
      }
      this.responseHeadBytes = null;
      this.responseScanner.reset();
      buf = head;
      pos = length;
      if (response.status === 101) {
        this.upstreamBroke(exchange, 'a 101 to a request that asked for no upgrade', 'protocol');
        break;
      }
      // RFC 9112 §6.1: an HTTP/1.0 client cannot read chunked framing (Go never sends it one).
      if (exchange.head.minor === 0 && response.framing === Framing.Chunked) {
        this.upstreamBroke(exchange, 'a chunked response to an HTTP/1.0 request', 'protocol');
        break;
      }
      // Interim answers stay here, as they did with Node's client (which swallowed them).
      if (response.status >= 200) this.startResponse(exchange, response, head, length);
    }
    this.flushToClient();
    this.updateFlow();
  }

  private startResponse(
    exchange: Exchange,
    response: ResponseHead,
    head: Buffer,
    length: number,
  ): void {
    exchange.response = response;
    exchange.answered = true;
    // An HTTP/1.0 client keeps the connection only if the response says keep-alive.
    if (response.close || (exchange.head.minor === 0 && !response.keepAlive))
      this.closeAfter = true;
    if (this.draining && !response.close) this.toClient.push(withConnectionClose(head, length));
    else this.toClient.pass(head, 0, length);
    if (response.framing === Framing.Chunked) {
      const framer = new ChunkedBody(true, MAX_RESPONSE_HEAD);
      exchange.responseChunked = framer;
      if (exchange.watch && response.status === 200)
        exchange.jsonEvents = framer.lineBoundaries = isJsonMediaType(contentTypeOf(head, length));
    } else if (response.framing === Framing.Length) exchange.responseLeft = response.length;
    if (
      response.framing === Framing.None ||
      (response.framing === Framing.Length && response.length === 0)
    )
      this.responseEnded(exchange);
  }

  /** Forwards response body bytes from `buf[pos…]`; returns where reading stopped. */
  private readResponseBody(exchange: Exchange, buf: Buffer, pos: number): number {
    const response = exchange.response as ResponseHead;
    if (response.framing === Framing.Length) {
      const n = Math.min(exchange.responseLeft, buf.length - pos);
      this.toClient.pass(buf, pos, pos + n);
      exchange.responseLeft -= n;
      if (exchange.responseLeft === 0) this.responseEnded(exchange);
      return pos + n;
    }
    if (response.framing === Framing.Close) {
      this.toClient.pass(buf, pos, buf.length);
      return buf.length;
    }
    const framer = exchange.responseChunked as ChunkedBody;
    let end: number;
    try {
      end = framer.feed(buf, pos, buf.length, this.toClient);
    } catch (err) {
      this.upstreamBroke(exchange, errorMessage(err), 'protocol');
      return buf.length;
    }
    if (framer.stopped) {
      this.endStreamingResponse(exchange);
      return buf.length;
    }
    if (end < 0) return buf.length;
    this.responseEnded(exchange);
    return end;
  }

  private responseEnded(exchange: Exchange): void {
    exchange.responseDone = true;
    if (exchange.bodyDone) this.finishExchange();
  }

  private finishExchange(): void {
    const exchange = this.exchange as Exchange;
    this.exchange = null;
    this.record(exchange, exchange.response?.status ?? 0);
    if (this.closeAfter) {
      this.closeGracefully();
      return;
    }
    this.phase = Phase.Head;
    this.setDeadline(this.input.length > 0 ? Deadline.Head : Deadline.Idle);
    this.pump();
  }

  private flushToClient(): void {
    const out = this.toClient.take();
    if (out !== null) this.client.write(out);
  }

  // ---------------------------------------------------------------- answers of the proxy's own

  /** Answers the current request with a Status and closes the connection. */
  private answerLocally(exchange: Exchange, status: StatusResponse): void {
    this.record(exchange, status.code);
    exchange.answered = true;
    this.exchange = null;
    this.toClient.push(Buffer.from(rawStatusResponse(status, true), 'latin1'));
    this.closeGracefully();
  }

  /** A refused head: a Status after the answers owed to earlier requests, then the close. */
  private refuse(status: StatusResponse): void {
    recordRequest('http/1.1', 'OTHER', status.code, -1);
    this.toClient.push(Buffer.from(rawStatusResponse(status, true), 'latin1'));
    this.closeGracefully();
  }

  /**
   * Flushes, closes the client's side, and reads (and drops) what the client still sends so
   * that the last answer is not lost to a reset; the connection is destroyed after a grace.
   */
  private closeGracefully(): void {
    if (this.phase === Phase.Gone) return;
    this.phase = Phase.Gone;
    this.setDeadline(Deadline.None);
    this.dropUpstream();
    this.input.length = 0;
    this.inputBytes = 0;
    this.flushToClient();
    this.client.end();
    if (this.clientPaused) {
      this.clientPaused = false;
      this.client.resume();
    }
    setTimeout(() => this.client.destroy(), CLOSE_GRACE_MS).unref();
  }

  private record(exchange: Exchange, code: number): void {
    if (exchange.recorded) return;
    exchange.recorded = true;
    recordRequest(
      'http/1.1',
      exchange.head.method,
      code,
      exchange.streaming ? -1 : exchange.started,
    );
  }

  // ---------------------------------------------------------------- upgrades, shutdown, close

  /** After the requests before it are answered (this runs only then), never alongside them. */
  private handOffUpgrade(head: RequestHead): void {
    this.phase = Phase.Gone;
    this.handedOff = true;
    this.stopTimer();
    this.dropUpstream();
    const { client } = this;
    client.pause();
    client.off('data', this.onClientData);
    client.off('drain', this.onDrain);
    const rest = this.input.length === 1 ? (this.input[0] as Buffer) : Buffer.concat(this.input);
    this.input.length = 0;
    this.inputBytes = 0;
    this.options.upgrades.forward(
      this.connection,
      {
        method: head.method,
        target: head.target,
        headers: head.headers,
        upgrade: head.upgrade as string,
        hasBody: hasBody(head),
      },
      client,
      rest,
    );
  }

  /**
   * Shutdown: the request in flight finishes (its answer says Connection: close), a watch or
   * logs -f ends as a complete response at its next chunk boundary, then the connection closes.
   */
  private drain(): void {
    if (this.closed || this.draining || this.handedOff) return;
    this.draining = true;
    const exchange = this.exchange;
    if (exchange === null) {
      this.closeGracefully();
      return;
    }
    this.closeAfter = true;
    if (!exchange.streaming) return;
    if (!exchange.answered) {
      this.answerLocally(exchange, upstreamUnavailable('the proxy is shutting down'));
      return;
    }
    const framer = exchange.responseChunked;
    if (framer !== null && !framer.atBoundary) framer.stopAtBoundary = true;
    else this.endStreamingResponse(exchange);
  }

  /**
   * The certificate is no longer accepted. A JSON watch ends at its next event boundary with
   * an ERROR event carrying the Status, then the last chunk; a request the apiserver cannot
   * have acted on yet, or a read, is answered with the Status; between requests the
   * connection closes (the client's next connection is refused by the listener). Anything
   * else is cut short: the client sees the response broken off.
   */
  private cut(cut: Cut): void {
    const { status } = cut;
    if (this.closed) return;
    if (status === null || this.phase === Phase.Gone) {
      this.client.destroy();
      return;
    }
    const exchange = this.exchange;
    if (exchange === null) {
      if (this.headLength > 0 || this.inputBytes > 0) this.refuse(status);
      else this.closeGracefully();
      return;
    }
    if (!exchange.answered) {
      const method = exchange.head.method;
      if (this.phase !== Phase.Waiting || method === 'GET' || method === 'HEAD') {
        this.dropUpstream();
        this.answerLocally(exchange, status);
      } else this.client.destroy();
      return;
    }
    const framer = exchange.responseChunked;
    if (!exchange.jsonEvents || framer === null || exchange.responseDone) {
      this.client.destroy();
      return;
    }
    exchange.finalEvent = chunkOf(watchErrorEvent(status));
    this.closeAfter = true;
    if (framer.atBoundary) {
      this.endStreamingResponse(exchange);
      return;
    }
    framer.stopAtBoundary = true;
    setTimeout(() => this.client.destroy(), CUT_GRACE_MS).unref();
  }

  /**
   * Ends a streaming response here: the cut's ERROR event and the last chunk if it is
   * chunked, then the close.
   */
  private endStreamingResponse(exchange: Exchange): void {
    if (exchange.finalEvent !== null) this.toClient.push(exchange.finalEvent);
    if (exchange.responseChunked !== null) this.toClient.push(LAST_CHUNK);
    this.record(exchange, exchange.response?.status ?? 0);
    this.exchange = null;
    this.closeGracefully();
  }

  private onClientClose(): void {
    this.closed = true;
    this.stopTimer();
    this.dropUpstream();
    const exchange = this.exchange;
    if (exchange?.answered) this.record(exchange, exchange.response?.status ?? 0);
  }

  // ---------------------------------------------------------------- flow and timers

  /**
   * Backpressure: the client is read while the upstream takes what reading it produces (and
   * while little is read ahead); the upstream while the client takes the responses.
   */
  private updateFlow(): void {
    if (this.closed || this.handedOff) return;
    const upstream = this.upstream;
    const readClient =
      this.phase === Phase.Gone ||
      ((upstream === null || upstream.writableLength < HIGH_WATER_MARK) &&
        this.inputBytes < MAX_READ_AHEAD);
    if (readClient === this.clientPaused) {
      this.clientPaused = !readClient;
      if (readClient) this.client.resume();
      else this.client.pause();
    }
    const readUpstream = this.client.writableLength < HIGH_WATER_MARK;
    if (upstream !== null && readUpstream === this.upstreamPaused) {
      this.upstreamPaused = !readUpstream;
      if (readUpstream) upstream.resume();
      else upstream.pause();
    }
  }

  /**
   * One timer per connection, moved rather than re-created: the head timeout (from the first
   * byte of a head; from the start for a new connection) or the keep-alive idle timeout.
   */
  private setDeadline(kind: Deadline): void {
    this.deadlineKind = kind;
    if (kind === Deadline.None) return;
    const { limits } = this.options;
    const ms = kind === Deadline.Head ? limits.httpHeaderTimeoutMs : limits.httpIdleTimeoutMs;
    const at = Date.now() + ms;
    this.deadline = at;
    if (this.timer !== null && this.timerAt <= at) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(this.onTimer, ms);
    this.timer.unref();
    this.timerAt = at;
  }

  private timerFired(): void {
    this.timer = null;
    if (this.closed || this.deadlineKind === Deadline.None) return;
    const left = this.deadline - Date.now();
    if (left > 0) {
      this.timer = setTimeout(this.onTimer, left);
      this.timer.unref();
      this.timerAt = this.deadline;
      return;
    }
    if (this.deadlineKind === Deadline.Head && (this.headLength > 0 || this.inputBytes > 0)) {
      this.refuse(
        statusResponse(
          408,
          'Timeout',
          'kube-crl-proxy: the request head did not arrive within --http-header-timeout',
        ),
      );
      return;
    }
    this.closeGracefully();
  }

  private stopTimer(): void {
    this.deadlineKind = Deadline.None;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** `data` as one chunk of a chunked body. */
function chunkOf(data: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'),
    data,
    Buffer.from('\r\n', 'latin1'),
  ]);
}
