/**
 * One request of an HTTP/1.1 connection on its way up and its response on its way back: the
 * splice (splice.ts) has at most one at a time, the request reader (request-reader.ts) fills in
 * the request's side and the response reader (response-reader.ts) the response's.
 */
import type { Buffer } from 'node:buffer';
import { recordRequest } from '../record.js';
import { isStreamingRequest, isWatchRequest } from '../streaming.js';
import { ChunkedBody } from './chunked.js';
import { hasBody, type RequestHead } from './head-parser.js';
import type { ResponseHead } from './response.js';

export class Exchange {
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
  private recorded = false;

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

  /** Counts the request in the metrics, once, as answered with `code`. */
  record(code: number): void {
    if (this.recorded) return;
    this.recorded = true;
    recordRequest('http/1.1', this.head.method, code, this.streaming ? -1 : this.started);
  }

  /** Counts the request, once, with the upstream's status (0 when no response head came). */
  recordResponse(): void {
    this.record(this.response?.status ?? 0);
  }
}
