/**
 * GET pods/{pod}/log, as the kubelet answers through the apiserver: `text/plain`, the lines,
 * and with follow=true every line appended afterwards, flushed as it comes, until the client
 * goes away. Works on HTTP/1.1 (chunked) and HTTP/2 alike.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { StreamContext } from '../types.js';
import { badRequestStatus, respondStatus } from './kube-status.js';
import type { LiveSession } from './sessions.js';

/** What logs need of ServerResponse and Http2ServerResponse alike. */
interface LogResponse {
  writeHead(statusCode: number, headers: Record<string, string>): unknown;
  write(chunk: string): boolean;
  end(): unknown;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
}

interface LogOptions {
  readonly follow: boolean;
  readonly tailLines: number | null;
  readonly limitBytes: number | null;
  readonly timestamps: boolean;
}

function parseLogOptions(ctx: StreamContext): LogOptions | string {
  const raw = ctx.request.query;
  const query = new URLSearchParams(raw.startsWith('?') ? raw.slice(1) : raw);
  const integer = (name: string): number | null | string => {
    const value = query.get(name);
    if (value === null) return null;
    return /^\d+$/.test(value) ? Number(value) : `${name}: Invalid value: "${value}"`;
  };
  if (query.get('previous') === 'true') {
    return `previous terminated container in pod "${ctx.pod}" not found`;
  }
  const tailLines = integer('tailLines');
  const limitBytes = integer('limitBytes');
  if (typeof tailLines === 'string') return tailLines;
  if (typeof limitBytes === 'string') return limitBytes;
  return {
    follow: query.get('follow') === 'true',
    tailLines,
    limitBytes,
    timestamps: query.get('timestamps') === 'true',
  };
}

export function serveLogs(
  _req: IncomingMessage | Http2ServerRequest,
  response: ServerResponse | Http2ServerResponse,
  ctx: StreamContext,
  openSession: () => LiveSession,
): void {
  const res: LogResponse = response;
  const options = parseLogOptions(ctx);
  if (typeof options === 'string') {
    respondStatus(response, badRequestStatus(options));
    return;
  }
  const session = openSession();
  res.writeHead(200, { 'content-type': 'text/plain' });
  // HTTP/1.1 holds the head until the first body byte; a follower with no lines yet must
  // still see its 200 at once. (HTTP/2's writeHead sends the HEADERS frame itself.)
  if ('flushHeaders' in response) response.flushHeaders();

  let budget = options.limitBytes ?? Number.POSITIVE_INFINITY;
  const queue: string[] = [];
  let waitingForDrain = false;
  let ending = false;
  let unsubscribe: (() => void) | null = null;

  const finish = (endedBy: 'client' | 'server'): void => {
    unsubscribe?.();
    unsubscribe = null;
    queue.length = 0;
    session.end(endedBy);
    if (!res.writableEnded && !res.destroyed) res.end();
  };
  /** Writes in order, holding lines back while the client is slow. */
  const flush = (): void => {
    while (queue.length > 0 && !waitingForDrain && !res.destroyed) {
      const line = Buffer.from(queue.shift() as string);
      const text = line.length > budget ? line.subarray(0, budget) : line;
      budget -= text.length;
      session.countOut(text.length);
      if (!res.write(text.toString())) {
        waitingForDrain = true;
        res.once('drain', () => {
          waitingForDrain = false;
          flush();
        });
      }
      if (budget <= 0) {
        finish('server');
        return;
      }
    }
    if (ending && queue.length === 0 && !waitingForDrain) finish('server');
  };
  const send = (line: string): void => {
    queue.push(options.timestamps ? `${new Date().toISOString()} ${line}\n` : `${line}\n`);
    flush();
  };

  res.once('close', () => finish('client'));
  session.onAbort(() => finish('server'));

  for (const line of lastLines(ctx.logs.lines, options.tailLines)) send(line);
  if (options.follow) {
    unsubscribe = ctx.logs.follow(send);
  } else {
    ending = true;
    flush();
  }
}

function lastLines(lines: readonly string[], tailLines: number | null): readonly string[] {
  if (tailLines === null) return [...lines];
  return tailLines === 0 ? [] : lines.slice(-tailLines);
}
