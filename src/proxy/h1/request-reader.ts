/**
 * The client's bytes read as requests, in order: what was read and not yet taken (pipelined
 * requests, a body waiting for its upstream connection), request heads gathered across reads
 * and read strictly (head-parser.ts), and request bodies passed upstream as they come, counted
 * by Content-Length or read chunk by chunk (chunked.ts), so where a request ends is never in
 * doubt. upstreamHead rebuilds the head that goes up.
 *
 * Framing is never copied from the client: the head upstream carries the framing the proxy
 * read — chunked, the exact Content-Length, or no body at all. Copying the client's headers
 * instead once let a GET carry a second, raw request with forged identity headers past the
 * sanitiser.
 */
import { Buffer } from 'node:buffer';
import type { Limits } from '../../config/config.js';
import type { ConnectionHeaders } from '../headers.js';
import type { Output } from '../output.js';
import type { Exchange } from './exchange.js';
import { HeadScanner, parseRequestHead, type RequestHead } from './head-parser.js';

export class RequestReader {
  /** Client bytes not yet taken, oldest first. */
  private readonly input: Buffer[] = [];
  private inputBytes = 0;
  /** A request head that spans reads, gathered (its own buffer, grown by doubling). */
  private headStore: Buffer | null = null;
  private headLength = 0;
  private readonly scanner: HeadScanner;
  private readonly maxHeaderCount: number;

  constructor(
    limits: Pick<Limits, 'maxHeaderBytes' | 'maxHeaderCount'>,
    /** Where request bodies go. */
    private readonly toUpstream: Output,
  ) {
    this.scanner = new HeadScanner(limits.maxHeaderBytes);
    this.maxHeaderCount = limits.maxHeaderCount;
  }

  /** A read from the client. */
  push(chunk: Buffer): void {
    this.input.push(chunk);
    this.inputBytes += chunk.length;
  }

  /** Bytes read and not yet taken. */
  get readAhead(): number {
    return this.inputBytes;
  }

  get hasInput(): boolean {
    return this.input.length > 0;
  }

  /** Whether any of a next request was read: part of its head, or bytes not yet taken. */
  get headUnderWay(): boolean {
    return this.headLength > 0 || this.inputBytes > 0;
  }

  /** Drops what was read and not taken (the connection is closing). */
  discard(): void {
    this.input.length = 0;
    this.inputBytes = 0;
  }

  /** Everything read and not taken, as one buffer, for whoever reads the connection next. */
  takeAll(): Buffer {
    const rest = this.input.length === 1 ? (this.input[0] as Buffer) : Buffer.concat(this.input);
    this.discard();
    return rest;
  }

  /**
   * Takes the next read as (more of) a request head: the head once it is complete (what
   * follows it stays for the next take), else null. Throws RequestFramingError for a head
   * that is malformed or over the limits.
   */
  readHead(): RequestHead | null {
    const buf = this.gatherHead(this.shift());
    const length = this.scanner.scan(buf);
    if (length < 0) {
      this.keepHead(buf);
      return null;
    }
    const head = parseRequestHead(buf, length, this.maxHeaderCount);
    this.headStore = null;
    this.headLength = 0;
    this.scanner.reset();
    if (length < buf.length) this.unshift(buf.subarray(length));
    return head;
  }

  /**
   * Takes the next read as body of `exchange`'s request, passing it upstream: true once the
   * body is complete (what follows it stays for the next take). Throws RequestFramingError
   * for a malformed chunked body.
   */
  readBody(exchange: Exchange): boolean {
    const chunk = this.shift();
    let end: number;
    if (exchange.chunked !== null) {
      end = exchange.chunked.feed(chunk, 0, chunk.length, this.toUpstream);
    } else {
      const n = Math.min(exchange.bodyLeft, chunk.length);
      this.toUpstream.pass(chunk, 0, n);
      exchange.bodyLeft -= n;
      end = exchange.bodyLeft === 0 ? n : -1;
    }
    if (end < 0) return false;
    if (end < chunk.length) this.unshift(chunk.subarray(end));
    exchange.bodyDone = true;
    return true;
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
}

/**
 * The request line and sanitised headers (`own`: the connection's identity headers and the
 * rules that sanitise the rest), with framing of the proxy's own. The request goes up in the
 * client's version and with the client's wish about the connection (asked again here, the
 * client's own Connection being hop-by-hop), so the apiserver answers it as it would answer
 * the client: `Connection: close` to a close, and to HTTP/1.0 never chunked, kept alive only
 * when the client asked and the length is known.
 */
export function upstreamHead(head: RequestHead, own: ConnectionHeaders): Buffer {
  let text = `${head.method} ${head.target} HTTP/1.${head.minor}\r\nHost: ${head.host ?? 'kubernetes'}\r\n${own.headLines(head.headers, head.connectionTokens)}`;
  if (head.minor === 1 && head.close) text += 'Connection: close\r\n';
  else if (head.minor === 0 && !head.close) text += 'Connection: keep-alive\r\n';
  if (head.chunked) text += 'Transfer-Encoding: chunked\r\n';
  else if (head.contentLength >= 0) text += `Content-Length: ${head.contentLength}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}
