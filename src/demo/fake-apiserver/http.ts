/**
 * The few HTTP details shared by the HTTP/1.1 and HTTP/2 paths: header lines as received,
 * content negotiation and writing JSON / Status answers with kube-apiserver's headers.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { HeaderLine } from './authentication.js';
import type { IncludeObject } from './objects.js';
import type { KubeStatus } from './status.js';

export type AnyRequest = IncomingMessage | Http2ServerRequest;
export type AnyResponse = ServerResponse | Http2ServerResponse;

/** The part of a response both protocols share, so handlers need not know which one it is. */
export interface Reply {
  writeHead(statusCode: number, headers: Record<string, string | number>): unknown;
  write(chunk: string): boolean;
  end(chunk?: string): unknown;
  flushHeaders(): void;
  on(event: 'close', listener: () => void): unknown;
  readonly writableEnded: boolean;
}

export function asReply(res: AnyResponse): Reply {
  return res as Reply;
}

/**
 * Every header line in arrival order, names lowercased. Both protocols keep repeated
 * lines apart in rawHeaders, which is what requestheader authentication depends on
 * (each X-Remote-Group line is one group). HTTP/2 pseudo-headers are left out.
 */
export function headerLines(req: AnyRequest): HeaderLine[] {
  const raw = req.rawHeaders;
  const lines: HeaderLine[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (!name.startsWith(':')) lines.push([name, raw[i + 1] as string]);
  }
  return lines;
}

/** Headers kube-apiserver puts on every answer. */
function commonHeaders(contentType: string): Record<string, string> {
  return {
    'audit-id': randomUUID(),
    'cache-control': 'no-cache, private',
    'content-type': contentType,
  };
}

/** JSON the way the apiserver's encoder writes it: compact, newline-terminated. */
export function sendJson(res: Reply, statusCode: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(statusCode, {
    ...commonHeaders('application/json'),
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendStatus(res: Reply, status: KubeStatus): void {
  sendJson(res, status.code, status);
}

export function sendText(res: Reply, statusCode: number, text: string): void {
  res.writeHead(statusCode, {
    ...commonHeaders('text/plain; charset=utf-8'),
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Starts a streamed answer (watch): headers go out at once, before the first event. */
export function startStream(res: Reply): void {
  res.writeHead(200, commonHeaders('application/json'));
  res.flushHeaders();
}

/**
 * An HTTP/1.1 response written on the socket of an upgrade request, for the answers the
 * fake gives itself (401, 403, 404, …): Node's own ServerResponse does the framing, and the
 * connection is closed afterwards since nothing else may follow an unanswered upgrade.
 */
export function responseOnUpgradeSocket(req: IncomingMessage, socket: Socket): ServerResponse {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.on('finish', () => {
    res.detachSocket(socket);
    socket.end();
  });
  return res;
}

export interface TableFormat {
  readonly kind: 'table';
  /** meta.k8s.io version asked for: v1 or v1beta1. */
  readonly version: string;
  readonly includeObject: IncludeObject;
}

export type ResponseFormat = { readonly kind: 'json' } | TableFormat;

/**
 * Picks the first media range in Accept this fake can produce: a meta.k8s.io Table
 * (`application/json;as=Table;v=v1;g=meta.k8s.io`, as kubectl get asks) or plain JSON.
 * null means nothing acceptable (406).
 */
export function negotiateFormat(
  accept: string | undefined,
  includeObject: IncludeObject,
): ResponseFormat | null {
  if (accept === undefined || accept.trim() === '') return { kind: 'json' };
  for (const range of accept.split(',')) {
    const [type = '', ...paramParts] = range.split(';').map((p) => p.trim());
    if (!['application/json', 'application/*', '*/*'].includes(type.toLowerCase())) continue;
    const params = new Map(
      paramParts.map((p) => {
        const eq = p.indexOf('=');
        return [p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim()] as const;
      }),
    );
    const as = params.get('as');
    if (as === undefined) return { kind: 'json' };
    const version = params.get('v') ?? '';
    if (
      as === 'Table' &&
      params.get('g') === 'meta.k8s.io' &&
      ['v1', 'v1beta1'].includes(version)
    ) {
      return { kind: 'table', version, includeObject };
    }
  }
  return null;
}
