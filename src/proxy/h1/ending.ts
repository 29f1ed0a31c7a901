/**
 * How the proxy ends an HTTP/1.1 connection of its own accord, decided from where its
 * exchange is: on shutdown (drain) the request in flight finishes, its answer saying
 * `Connection: close`, and a watch or logs -f ends as a complete response at its next chunk
 * boundary; when the certificate is no longer accepted (cut), a JSON watch ends at its next
 * event boundary with an ERROR event carrying the Status, then the last chunk, a request the
 * apiserver cannot have acted on yet, or a read, is answered with the Status, and between
 * requests the connection closes (the client's next connection is refused by the listener).
 * Anything else is cut short: the client sees the response broken off. The splice
 * (splice.ts) carries the ending out.
 */
import { Buffer } from 'node:buffer';
import type { Output } from '../output.js';
import type { StatusResponse } from '../status.js';
import { watchErrorEvent } from '../streaming.js';
import type { ChunkedBody } from './chunked.js';
import type { Exchange } from './exchange.js';

const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

export const Ending = {
  /** The connection is destroyed: the client sees the response broken off. */
  CutShort: 0,
  /** Between requests: the connection closes. */
  Close: 1,
  /** Between requests, part of a next one read: the Status answers it, then the close. */
  Refuse: 2,
  /** The request is answered with the Status, then the close. */
  Answer: 3,
  /** The exchange finishes as it would; the connection closes after it. */
  AfterExchange: 4,
  /** The streaming response ends now (at a boundary already), then the close. */
  StreamNow: 5,
  /** The streaming response ends at its next boundary, then the close. */
  StreamAtBoundary: 6,
} as const;
export type Ending = (typeof Ending)[keyof typeof Ending];

/** What carrying an ending out asks of the splice that holds the connections. */
export interface EndingHost {
  /** Destroys the client connection. */
  cutShort(): void;
  /** Closes the connection once the client has what it was sent. */
  closeGracefully(): void;
  /** Answers a request head read in part with `status`, then closes. */
  refuse(status: StatusResponse): void;
  /** Answers `exchange`'s request with `status`, then closes. */
  answerLocally(exchange: Exchange, status: StatusResponse): void;
  /** Ends `exchange`'s streaming response here (writeStreamEnd), then closes. */
  endStreamingResponse(exchange: Exchange): void;
}

/**
 * The ending on shutdown. `exchange`: the one under way, or null between requests. An
 * unanswered streaming request is answered (503) rather than left waiting for its first event.
 */
export function drainEnding(exchange: Exchange | null): Ending {
  if (exchange === null) return Ending.Close;
  if (!exchange.streaming) return Ending.AfterExchange;
  if (!exchange.answered) return Ending.Answer;
  const framer = exchange.responseChunked;
  return framer !== null && !framer.atBoundary ? Ending.StreamAtBoundary : Ending.StreamNow;
}

/**
 * The ending of a cut. `exchange`: the one under way, or null between requests;
 * `headUnderWay`: part of a next request was read; `requestSent`: the whole request is
 * upstream (the apiserver may have acted on it). StreamNow and StreamAtBoundary end a JSON
 * watch with watchEnd(status).
 */
export function cutEnding(
  exchange: Exchange | null,
  headUnderWay: boolean,
  requestSent: boolean,
): Ending {
  if (exchange === null) return headUnderWay ? Ending.Refuse : Ending.Close;
  if (!exchange.answered) {
    const method = exchange.head.method;
    return !requestSent || method === 'GET' || method === 'HEAD' ? Ending.Answer : Ending.CutShort;
  }
  const framer = exchange.responseChunked;
  if (!exchange.jsonEvents || framer === null || exchange.responseDone) return Ending.CutShort;
  return framer.atBoundary ? Ending.StreamNow : Ending.StreamAtBoundary;
}

/**
 * Carries out `ending` of `exchange` (the one under way, or null between requests); `status`
 * is the answer of Refuse and Answer. AfterExchange leaves the exchange to finish.
 */
export function carryOut(
  ending: Ending,
  exchange: Exchange | null,
  status: StatusResponse,
  host: EndingHost,
): void {
  switch (ending) {
    case Ending.CutShort:
      host.cutShort();
      return;
    case Ending.Close:
      host.closeGracefully();
      return;
    case Ending.Refuse:
      host.refuse(status);
      return;
    case Ending.Answer:
      host.answerLocally(exchange as Exchange, status);
      return;
    case Ending.StreamNow:
      host.endStreamingResponse(exchange as Exchange);
      return;
    case Ending.StreamAtBoundary:
      (exchange?.responseChunked as ChunkedBody).stopAtBoundary = true;
      return;
    case Ending.AfterExchange:
      return;
  }
}

/** The ERROR event carrying `status`, as one chunk of a chunked watch response. */
export function watchEnd(status: StatusResponse): Buffer {
  const event = watchErrorEvent(status);
  return Buffer.concat([
    Buffer.from(`${event.length.toString(16)}\r\n`, 'latin1'),
    event,
    Buffer.from('\r\n', 'latin1'),
  ]);
}

/**
 * What a streaming response ended by the proxy ends with: the cut's ERROR event, if any, and
 * the last chunk if it is chunked.
 */
export function writeStreamEnd(exchange: Exchange, toClient: Output): void {
  if (exchange.finalEvent !== null) toClient.push(exchange.finalEvent);
  if (exchange.responseChunked !== null) toClient.push(LAST_CHUNK);
}
