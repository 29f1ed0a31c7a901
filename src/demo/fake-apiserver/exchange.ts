/**
 * A request once authenticated, recorded and authorized: what the REST handlers work from,
 * whichever way it arrived (an HTTP/2 stream, an HTTP/1.1 request, or an HTTP/1.1 upgrade
 * request whose answer must be written on its raw socket).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type AnyRequest,
  type AnyResponse,
  asReply,
  type Reply,
  responseOnUpgradeSocket,
  sendStatus,
} from './http.js';
import type { RequestInfo } from './request-info.js';
import type { KubeStatus } from './status.js';
import type { RecordedRequest, UserInfo } from './types.js';

/** Where the answer to a request goes. */
export type Channel =
  | { readonly kind: 'http'; readonly res: AnyResponse }
  | { readonly kind: 'upgrade'; readonly socket: Duplex; readonly head: Buffer };

export interface Exchange {
  readonly req: AnyRequest;
  readonly record: RecordedRequest;
  readonly user: UserInfo;
  readonly info: RequestInfo;
  readonly query: URLSearchParams;
  readonly channel: Channel;
  /** The response to write; for an upgrade request, an HTTP/1.1 response on its socket. */
  reply(): Reply;
  /** Answers with a Status (or cuts the stream if an answer had already begun). */
  fail(status: KubeStatus): void;
}

/** The answering half of an Exchange, usable before the request is fully understood. */
export interface Answerer {
  reply(): Reply;
  fail(status: KubeStatus): void;
}

export function answererFor(req: AnyRequest, channel: Channel): Answerer {
  let reply: Reply | null = null;
  const answerer: Answerer = {
    reply() {
      reply ??=
        channel.kind === 'http'
          ? asReply(channel.res)
          : asReply(responseOnUpgradeSocket(req as IncomingMessage, channel.socket as Socket));
      return reply;
    },
    fail(status) {
      if (channel.kind === 'http' && channel.res.headersSent) {
        channel.res.destroy();
        return;
      }
      sendStatus(answerer.reply(), status);
    },
  };
  return answerer;
}
