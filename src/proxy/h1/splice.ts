/**
 * HTTP/1.1 forwarding as a head-rewriting splice on the 1:1 connection model: each client
 * connection gets its own upstream connection (from the warm pool, opened at its first request
 * and again after the apiserver closed it between requests). Requests go up one at a time, in
 * order. Upgrade requests are handed to upgrade.ts.
 *
 * `Splice` holds the two connections and the lifecycle (Phase). The client's bytes are read
 * as requests by request-reader.ts (heads read strictly, sanitised and rebuilt, bodies framed
 * by the proxy), the upstream's as responses by response-reader.ts (bytes passed back
 * untouched, heads read only for framing); each request and its response are an Exchange
 * (exchange.ts). writes.ts gathers the writes and says when each side is read, deadline.ts
 * times the head and idle timeouts, ending.ts decides how a drain or a cut ends the connection.
 */
import { Buffer } from 'node:buffer';
import type { TLSSocket } from 'node:tls';
import type { Limits } from '../../config/config.js';
import { errorMessage, RequestFramingError, UpstreamError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { upstreamErrors } from '../../metrics/metrics.js';
import type { ClientConnection, Cut } from '../connection.js';
import type { IdentityHeaderRules } from '../headers.js';
import { recordRequest } from '../record.js';
import {
  badGateway,
  rawStatusResponse,
  type StatusResponse,
  statusResponse,
  upstreamUnavailable,
} from '../status.js';
import type { UpgradeForwarder } from '../upgrade.js';
import type { Upstream } from '../upstream.js';
import { ConnectionDeadline, Deadline, type DeadlineHost } from './deadline.js';
import {
  carryOut,
  cutEnding,
  drainEnding,
  Ending,
  type EndingHost,
  watchEnd,
  writeStreamEnd,
} from './ending.js';
import { Exchange } from './exchange.js';
import { hasBody, type RequestHead } from './head-parser.js';
import { RequestReader, upstreamHead } from './request-reader.js';
import { Framing } from './response.js';
import { ResponseReader, type ResponseReaderHost } from './response-reader.js';
import { SpliceWrites } from './writes.js';

export interface H1Options {
  readonly upstream: Upstream;
  readonly rules: IdentityHeaderRules;
  readonly upgrades: UpgradeForwarder;
  readonly limits: Limits;
  readonly log: Logger;
}

/** A connection being closed gets this long to flush its last answer. */
const CLOSE_GRACE_MS = 1000;
/** A cut watch gets this long to reach the end of the event under way before it is cut short. */
const CUT_GRACE_MS = 1000;
const HEAD_TIMEOUT = statusResponse(
  408,
  'Timeout',
  'kube-crl-proxy: the request head did not arrive within --http-header-timeout',
);
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/** Where a splice is in its life; from Closing on it only moves forward. */
const Phase = {
  /** Reading a request head. */
  Head: 0,
  /** A head is read; its upstream connection is being opened. */
  Connecting: 1,
  /** Forwarding the request body. */
  Body: 2,
  /** The request is upstream: waiting for the end of its response. */
  Waiting: 3,
  /** Closing: nothing more is read as requests. */
  Closing: 4,
  /** Handed to the upgrade forwarder, which reads and writes the connection from now on. */
  HandedOff: 5,
  /** The client connection closed. */
  Closed: 6,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

export class H1Forwarder {
  constructor(private readonly options: H1Options) {}

  serve(client: ClientConnection): void {
    new Splice(client, this.options).start();
  }
}

class Splice implements ResponseReaderHost, DeadlineHost, EndingHost {
  private readonly client: TLSSocket;
  private upstream: TLSSocket | null = null;
  private phase: Phase = Phase.Head;
  exchange: Exchange | null = null;
  /** The rebuilt head of the current request while its upstream connection opens. */
  private pendingHead: Buffer | null = null;
  /** The connection closes once the current exchange is over. */
  private closeAfter = false;
  /** Shutting down: the connection closes after the exchange under way. */
  draining = false;
  private pumping = false;

  private readonly writes: SpliceWrites;
  private readonly requests: RequestReader;
  private readonly responses: ResponseReader;
  private readonly deadline: ConnectionDeadline;

  private readonly onClientData = (chunk: Buffer) => this.readClient(chunk);
  private readonly onDrain = () => this.updateFlow();

  constructor(
    private readonly connection: ClientConnection,
    private readonly options: H1Options,
  ) {
    this.client = connection.socket;
    this.writes = new SpliceWrites(this.client);
    this.requests = new RequestReader(options.limits, this.writes.toUpstream);
    this.responses = new ResponseReader(this, this.writes.toClient);
    this.deadline = new ConnectionDeadline(this, options.limits);
  }

  start(): void {
    const { client } = this;
    client.setNoDelay(true);
    client.on('data', this.onClientData);
    client.on('drain', this.onDrain);
    client.once('close', () => this.onClientClose());
    this.connection.setDrainer(() => this.drain());
    this.connection.setTerminator((cut) => this.cut(cut));
    this.deadline.set(Deadline.Head);
    client.resume();
  }

  // ---------------------------------------------------------------- client → upstream

  private readClient(chunk: Buffer): void {
    if (this.phase >= Phase.Closing) return;
    this.requests.push(chunk);
    this.pump();
    this.updateFlow();
  }

  /** Reads what the current phase takes from the client's bytes. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    const requests = this.requests;
    while (requests.hasInput) {
      if (this.phase === Phase.Head) this.readHead();
      else if (this.phase === Phase.Body) this.readBody();
      else break;
    }
    this.pumping = false;
    this.writes.writeToUpstream();
    this.writes.writeToClient();
  }

  private readHead(): void {
    if (this.deadline.kind === Deadline.Idle) this.deadline.set(Deadline.Head);
    let head: RequestHead | null;
    try {
      head = this.requests.readHead();
    } catch (err) {
      if (!(err instanceof RequestFramingError)) throw err;
      this.refuse(malformed(err));
      return;
    }
    if (head !== null) this.startExchange(head);
  }

  private startExchange(head: RequestHead): void {
    this.deadline.set(Deadline.None);
    if (head.upgrade !== null) {
      this.handOffUpgrade(head);
      return;
    }
    const exchange = new Exchange(head, this.options.limits.maxHeaderBytes);
    this.exchange = exchange;
    if (head.close || this.draining) this.closeAfter = true;
    // As Node's server did: the proxy itself invites the body (1xx from upstream are dropped).
    if (head.expectContinue) this.writes.toClient.push(CONTINUE);
    const rebuilt = upstreamHead(head, this.connection.ownHeaders(this.options.rules));
    if (this.upstream !== null) {
      this.writes.toUpstream.push(rebuilt);
      this.phase = exchange.bodyDone ? Phase.Waiting : Phase.Body;
      return;
    }
    this.pendingHead = rebuilt;
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

  private readBody(): void {
    const exchange = this.exchange as Exchange;
    let done: boolean;
    try {
      done = this.requests.readBody(exchange);
    } catch (err) {
      if (!(err instanceof RequestFramingError)) throw err;
      this.abandon(exchange, err);
      return;
    }
    if (!done) return;
    if (exchange.responseDone) this.finishExchange();
    else this.phase = Phase.Waiting;
  }

  /**
   * The body turned out malformed: the upstream connection is cut before the request could
   * complete, and the client gets a 400 if no answer has started.
   */
  private abandon(exchange: Exchange, err: RequestFramingError): void {
    this.writes.toUpstream.take();
    this.dropUpstream();
    if (exchange.answered) {
      exchange.recordResponse();
      this.client.destroy();
      return;
    }
    this.answerLocally(exchange, malformed(err));
  }

  // ---------------------------------------------------------------- the upstream connection

  get upstreamAttached(): boolean {
    return this.upstream !== null;
  }

  private attach(socket: TLSSocket): void {
    if (this.phase !== Phase.Connecting) {
      socket.destroy();
      return;
    }
    if (socket.destroyed) {
      this.upstreamFailed(upstreamUnavailable('the upstream connection closed'));
      return;
    }
    this.upstream = socket;
    this.writes.setUpstream(socket);
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
    this.writes.toUpstream.push(this.pendingHead as Buffer);
    this.pendingHead = null;
    this.phase = exchange.bodyDone ? Phase.Waiting : Phase.Body;
    this.pump();
    this.updateFlow();
  }

  /** No upstream connection for the current request. */
  private upstreamFailed(status: StatusResponse): void {
    const exchange = this.exchange;
    if (exchange === null || this.phase !== Phase.Connecting) return;
    this.answerLocally(exchange, status);
  }

  private onUpstreamClose(socket: TLSSocket): void {
    if (socket !== this.upstream) return;
    this.upstream = null;
    this.writes.setUpstream(null);
    const exchange = this.exchange;
    // Between requests: the next one opens a new connection.
    if (this.phase === Phase.Closed || exchange === null) return;
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
  upstreamBroke(exchange: Exchange | null, problem: string, kind: 'reset' | 'protocol'): void {
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
    exchange.recordResponse();
    // Part of the response is out: the only honest signal left is to cut the connection.
    this.client.destroy();
  }

  private dropUpstream(): void {
    const upstream = this.upstream;
    this.upstream = null;
    this.writes.setUpstream(null);
    upstream?.destroy();
  }

  // ---------------------------------------------------------------- upstream → client

  private readUpstream(socket: TLSSocket, chunk: Buffer): void {
    if (socket !== this.upstream || this.phase === Phase.Closed) return;
    this.responses.read(chunk);
    this.writes.writeToClient();
    this.updateFlow();
  }

  closeAfterExchange(): void {
    this.closeAfter = true;
  }

  responseEnded(exchange: Exchange): void {
    exchange.responseDone = true;
    if (exchange.bodyDone) this.finishExchange();
  }

  private finishExchange(): void {
    const exchange = this.exchange as Exchange;
    this.exchange = null;
    exchange.recordResponse();
    if (this.closeAfter) {
      this.closeGracefully();
      return;
    }
    this.phase = Phase.Head;
    this.deadline.set(this.requests.hasInput ? Deadline.Head : Deadline.Idle);
    this.pump();
  }

  // ---------------------------------------------------------------- answers of the proxy's own

  /** Answers the current request with a Status and closes the connection. */
  answerLocally(exchange: Exchange, status: StatusResponse): void {
    exchange.record(status.code);
    exchange.answered = true;
    this.exchange = null;
    this.writes.toClient.push(Buffer.from(rawStatusResponse(status, true), 'latin1'));
    this.closeGracefully();
  }

  /** A refused head: a Status after the answers owed to earlier requests, then the close. */
  refuse(status: StatusResponse): void {
    recordRequest('http/1.1', 'OTHER', status.code, -1);
    this.writes.toClient.push(Buffer.from(rawStatusResponse(status, true), 'latin1'));
    this.closeGracefully();
  }

  /**
   * Flushes, closes the client's side, and reads (and drops) what the client still sends so
   * that the last answer is not lost to a reset; the connection is destroyed after a grace.
   */
  closeGracefully(): void {
    if (this.phase >= Phase.Closing) return;
    this.phase = Phase.Closing;
    this.deadline.set(Deadline.None);
    this.dropUpstream();
    this.requests.discard();
    this.writes.writeToClient();
    this.client.end();
    this.writes.readClientToEnd();
    setTimeout(() => this.client.destroy(), CLOSE_GRACE_MS).unref();
  }

  // ---------------------------------------------------------------- upgrades, shutdown, close

  /** After the requests before it are answered (this runs only then), never alongside them. */
  private handOffUpgrade(head: RequestHead): void {
    this.phase = Phase.HandedOff;
    this.deadline.stop();
    this.dropUpstream();
    const { client } = this;
    client.pause();
    client.off('data', this.onClientData);
    client.off('drain', this.onDrain);
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
      this.requests.takeAll(),
    );
  }

  /** Shutdown (ending.ts, drainEnding). */
  private drain(): void {
    if (this.phase >= Phase.HandedOff || this.draining) return;
    this.draining = true;
    const exchange = this.exchange;
    const ending = drainEnding(exchange);
    if (ending !== Ending.Close) this.closeAfter = true;
    carryOut(ending, exchange, upstreamUnavailable('the proxy is shutting down'), this);
  }

  /** The certificate is no longer accepted (ending.ts, cutEnding). */
  private cut(cut: Cut): void {
    const { status } = cut;
    if (this.phase === Phase.Closed) return;
    if (status === null || this.phase >= Phase.Closing) {
      this.client.destroy();
      return;
    }
    const exchange = this.exchange;
    const ending = cutEnding(exchange, this.requests.headUnderWay, this.phase === Phase.Waiting);
    if (ending === Ending.StreamNow || ending === Ending.StreamAtBoundary) {
      (exchange as Exchange).finalEvent = watchEnd(status);
      this.closeAfter = true;
    } else if (ending === Ending.Answer) this.dropUpstream();
    carryOut(ending, exchange, status, this);
    if (ending === Ending.StreamAtBoundary)
      setTimeout(() => this.client.destroy(), CUT_GRACE_MS).unref();
  }

  /**
   * Ends a streaming response here: the cut's ERROR event and the last chunk if it is
   * chunked, then the close.
   */
  endStreamingResponse(exchange: Exchange): void {
    writeStreamEnd(exchange, this.writes.toClient);
    exchange.recordResponse();
    this.exchange = null;
    this.closeGracefully();
  }

  cutShort(): void {
    this.client.destroy();
  }

  private onClientClose(): void {
    this.phase = Phase.Closed;
    this.deadline.stop();
    this.dropUpstream();
    const exchange = this.exchange;
    if (exchange?.answered) exchange.recordResponse();
  }

  // ---------------------------------------------------------------- flow and deadlines

  /** Backpressure (writes.ts). */
  private updateFlow(): void {
    if (this.phase >= Phase.HandedOff) return;
    // Closing, nothing is read ahead and there is no upstream: the client is read (and dropped).
    this.writes.updateFlow(this.requests.readAhead);
  }

  deadlinePassed(kind: Deadline): void {
    if (kind === Deadline.Head && this.requests.headUnderWay) {
      this.refuse(HEAD_TIMEOUT);
      return;
    }
    this.closeGracefully();
  }
}

/** The answer to a request whose head or body is malformed. */
function malformed(err: RequestFramingError): StatusResponse {
  return statusResponse(err.status, 'BadRequest', `kube-crl-proxy: ${err.message}`);
}
