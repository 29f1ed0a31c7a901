/**
 * port-forward's SPDY side, the kubelet's portforward/httpstream.go with containerd's
 * forwarder: each forwarded connection is a pair of client streams with the same
 * `requestid` — `error` (the client FINs it at once) and `data` — carrying the pod `port`.
 * The data stream is spliced to a TCP connection to the pod port (here: the fake's echo
 * server, whatever port was asked) with backpressure both ways; when the pod side closes,
 * the data stream is FINed and the error stream FINed empty, which kubectl reads as success.
 * Anything written on the error stream makes kubectl tear the whole session down.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { StreamContext } from '../types.js';
import type { EchoServer } from './echo-server.js';
import type { LiveSession } from './sessions.js';
import { SpdySession, type SpdyStream } from './spdy-session.js';

export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';

/** The kubelet's stream creation timeout: how long half a pair may wait for the other. */
const PAIR_TIMEOUT_MS = 30_000;

interface StreamPair {
  error?: SpdyStream;
  data?: SpdyStream;
  timer: NodeJS.Timeout;
}

export interface PortForwardOptions {
  readonly transport: Duplex;
  readonly ctx: StreamContext;
  readonly session: LiveSession;
  readonly target: EchoServer;
}

export function servePortForward(options: PortForwardOptions): void {
  const { ctx, session, target } = options;
  const pairs = new Map<string, StreamPair>();
  const expire = (requestId: string): void => {
    const pair = pairs.get(requestId);
    pairs.delete(requestId);
    pair?.error?.end(`timed out waiting for the data stream of request ${requestId}`);
    pair?.data?.destroy();
  };

  const spdy = new SpdySession(options.transport, {
    onStream(stream) {
      const type = stream.header('streamtype');
      if (type !== 'error' && type !== 'data') {
        stream.destroy();
        return;
      }
      const requestId = pairKey(stream, type);
      let pair = pairs.get(requestId);
      if (!pair) {
        pair = { timer: setTimeout(() => expire(requestId), PAIR_TIMEOUT_MS) };
        pair.timer.unref();
        pairs.set(requestId, pair);
      }
      if (pair[type]) {
        stream.destroy();
        return;
      }
      pair[type] = stream;
      if (pair.error && pair.data) {
        clearTimeout(pair.timer);
        pairs.delete(requestId);
        forward(pair.error, pair.data, ctx.pod, target);
      }
    },
    onEnd(endedBy) {
      for (const pair of pairs.values()) clearTimeout(pair.timer);
      session.end(endedBy);
    },
    onPayload(direction, bytes) {
      if (direction === 'in') session.countIn(bytes);
      else session.countOut(bytes);
    },
  });
  session.onAbort(() => spdy.destroy());
}

/**
 * Pairs by the `requestid` header; clients before 1.6 sent none, and the kubelet then pairs
 * a data stream with the error stream opened just before it (id - 2).
 */
function pairKey(stream: SpdyStream, type: 'error' | 'data'): string {
  const requestId = stream.header('requestid');
  if (requestId !== undefined) return requestId;
  return `stream-${type === 'error' ? stream.id : stream.id - 2}`;
}

function forward(error: SpdyStream, data: SpdyStream, pod: string, target: EchoServer): void {
  // The client half-closes the error stream right away and only reads it.
  error.resume();
  const portHeader = data.header('port') ?? '';
  const port = Number(portHeader);
  if (!/^\d+$/.test(portHeader) || port < 1 || port > 65535) {
    error.end(`error forwarding port ${portHeader} to pod ${pod}: invalid port`);
    data.end();
    return;
  }

  const upstream: Socket = target.connect();
  let upstreamError: Error | null = null;
  upstream.on('error', (err) => {
    upstreamError = err;
  });
  // pipe() carries backpressure both ways and turns each side's FIN into the other's end().
  data.pipe(upstream);
  upstream.pipe(data);
  upstream.on('close', () => {
    if (upstreamError) {
      error.end(`error forwarding port ${port} to pod ${pod}: ${upstreamError.message}`);
      data.destroy();
      return;
    }
    // Like containerd: the error stream closes after the copy to the client is done.
    let done = false;
    const succeed = (): void => {
      if (done) return;
      done = true;
      error.end();
    };
    if (data.writableFinished || data.destroyed) succeed();
    else data.once('finish', succeed).once('close', succeed);
  });
  // Reset by the client, or the session is gone: the pod-side connection goes too.
  data.on('close', () => upstream.destroy());
}
