/**
 * The upstream's bytes read as the response to the exchange under way: requests go up one at
 * a time, so every byte of a read belongs to that exchange's response, and a byte after it is
 * a protocol error. Response bytes pass to the client untouched; their heads are read only for
 * framing (response.ts), their chunked bodies chunk by chunk (chunked.ts) so that a watch can
 * be ended at an event boundary. Interim (1xx) answers are dropped.
 */
import { Buffer } from 'node:buffer';
import { errorMessage } from '../../errors.js';
import type { Output } from '../output.js';
import { isJsonMediaType } from '../streaming.js';
import { ChunkedBody } from './chunked.js';
import type { Exchange } from './exchange.js';
import { HeadScanner } from './head-parser.js';
import {
  contentTypeOf,
  Framing,
  MAX_RESPONSE_HEAD,
  parseResponseHead,
  type ResponseHead,
  withConnectionClose,
} from './response.js';

/** What the response reader asks of the splice that holds the connections. */
export interface ResponseReaderHost {
  /** The exchange under way, or null between requests. */
  readonly exchange: Exchange | null;
  /** Whether the upstream connection is still there to be read. */
  readonly upstreamAttached: boolean;
  /** Shutting down: every response goes to the client saying `Connection: close`. */
  readonly draining: boolean;
  /** The response says the connection closes once this exchange is over. */
  closeAfterExchange(): void;
  /** `exchange`'s response is complete. */
  responseEnded(exchange: Exchange): void;
  /** A streaming response stopped at the boundary it was asked to stop at: it ends here. */
  endStreamingResponse(exchange: Exchange): void;
  /** The upstream broke the exchange (the response is malformed, or bytes follow it). */
  upstreamBroke(exchange: Exchange | null, problem: string, kind: 'reset' | 'protocol'): void;
}

export class ResponseReader {
  private readonly scanner = new HeadScanner(MAX_RESPONSE_HEAD);
  /** A response head that spans reads, gathered. */
  private headBytes: Buffer | null = null;

  constructor(
    private readonly host: ResponseReaderHost,
    /** Where response bytes go. */
    private readonly toClient: Output,
  ) {}

  /** One read from the upstream. */
  read(chunk: Buffer): void {
    const host = this.host;
    const exchange = host.exchange;
    let buf = chunk;
    let pos = 0;
    while (pos < buf.length && host.upstreamAttached) {
      if (exchange === null || exchange.responseDone || exchange !== host.exchange) {
        host.upstreamBroke(host.exchange, 'bytes after the response', 'protocol');
        break;
      }
      if (exchange.response !== null) {
        pos = this.readBody(exchange, buf, pos);
        continue;
      }
      const rest = pos === 0 ? buf : buf.subarray(pos);
      const head = this.headBytes === null ? rest : Buffer.concat([this.headBytes, rest]);
      let length: number;
      let response: ResponseHead;
      try {
        length = this.scanner.scan(head);
        if (length < 0) {
          this.headBytes = head;
          break;
        }
        response = parseResponseHead(head, length, exchange.head.method);
      } catch (err) {
        host.upstreamBroke(exchange, errorMessage(err), 'protocol');
        break;
      }
      this.headBytes = null;
      this.scanner.reset();
      buf = head;
      pos = length;
      if (response.status === 101) {
        host.upstreamBroke(exchange, 'a 101 to a request that asked for no upgrade', 'protocol');
        break;
      }
      // RFC 9112 §6.1: an HTTP/1.0 client cannot read chunked framing (Go never sends it one).
      if (exchange.head.minor === 0 && response.framing === Framing.Chunked) {
        host.upstreamBroke(exchange, 'a chunked response to an HTTP/1.0 request', 'protocol');
        break;
      }
      // Interim answers stay here, as they did with Node's client (which swallowed them).
      if (response.status >= 200) this.startResponse(exchange, response, head, length);
    }
  }

  private startResponse(
    exchange: Exchange,
    response: ResponseHead,
    head: Buffer,
    length: number,
  ): void {
    const host = this.host;
    exchange.response = response;
    exchange.answered = true;
    // An HTTP/1.0 client keeps the connection only if the response says keep-alive.
    if (response.close || (exchange.head.minor === 0 && !response.keepAlive))
      host.closeAfterExchange();
    if (host.draining && !response.close) this.toClient.push(withConnectionClose(head, length));
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
      host.responseEnded(exchange);
  }

  /** Forwards response body bytes from `buf[pos…]`; returns where reading stopped. */
  private readBody(exchange: Exchange, buf: Buffer, pos: number): number {
    const response = exchange.response as ResponseHead;
    if (response.framing === Framing.Length) {
      const n = Math.min(exchange.responseLeft, buf.length - pos);
      this.toClient.pass(buf, pos, pos + n);
      exchange.responseLeft -= n;
      if (exchange.responseLeft === 0) this.host.responseEnded(exchange);
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
      this.host.upstreamBroke(exchange, errorMessage(err), 'protocol');
      return buf.length;
    }
    if (framer.stopped) {
      this.host.endStreamingResponse(exchange);
      return buf.length;
    }
    if (end < 0) return buf.length;
    this.host.responseEnded(exchange);
    return end;
  }
}
