/**
 * Upgrade requests (exec, attach, port-forward: WebSocket or SPDY/3.1) — the lessons of
 * CVE-2018-1002105 and CVE-2020-8559 written down as code:
 *  1. the client is authenticated (by the listener) and its headers sanitised before anything
 *     is dialled upstream;
 *  2. each upgrade gets a fresh upstream connection that is never pooled or reused;
 *  3. client bytes flow upstream only after the apiserver answered a real 101 for the
 *     protocol that was asked for;
 *  4. any other answer is relayed (bounded) and both connections are closed.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { errorMessage, UpstreamError } from '../errors.js';
import type { Logger } from '../log.js';
import { upstreamErrors } from '../metrics/metrics.js';
import { request } from '../node-http.js';
import type { ClientConnection } from './connection.js';
import {
  type HeaderList,
  type IdentityHeaderRules,
  pairsFromRaw,
  sanitizeRequestHeaders,
  sanitizeResponseHeaders,
} from './headers.js';
import { recordRequest, UNTIMED } from './record.js';
import {
  badGateway,
  badRequest,
  rawStatusResponse,
  type StatusResponse,
  upstreamUnavailable,
} from './status.js';
import { Tunnel } from './tunnel.js';
import type { Upstream } from './upstream.js';

export type UpgradeKind = 'websocket' | 'spdy';

/** A refused upgrade's body is relayed up to this size, then cut. */
export const MAX_REFUSAL_BODY_BYTES = 64 * 1024;
/** Time the apiserver has to answer an upgrade request. */
const UPGRADE_RESPONSE_TIMEOUT_MS = 30_000;

export interface UpgradeOptions {
  readonly upstream: Upstream;
  readonly rules: IdentityHeaderRules;
  readonly log: Logger;
}

/** An upgrade request as the HTTP/1.1 forwarder read it. */
export interface UpgradeRequest {
  readonly method: string;
  /** The origin-form target. */
  readonly target: string;
  /** Field lines as received. */
  readonly headers: HeaderList;
  /** The Upgrade header's value. */
  readonly upgrade: string;
  readonly hasBody: boolean;
}

export function upgradeKind(upgradeHeader: string | undefined): UpgradeKind | null {
  const value = (upgradeHeader ?? '').trim().toLowerCase();
  if (value === 'websocket') return 'websocket';
  if (value === 'spdy/3.1') return 'spdy';
  return null;
}

/** How far an upgrade has come, for a cut: answered by the apiserver, tunnelled. */
interface Progress {
  answered: boolean;
  tunnel: Tunnel | null;
}

export class UpgradeForwarder {
  constructor(private readonly options: UpgradeOptions) {}

  forward(client: ClientConnection, req: UpgradeRequest, socket: Duplex, head: Buffer): void {
    // Nothing the client sends goes anywhere until the apiserver has said 101.
    socket.pause();
    const kind = upgradeKind(req.upgrade);
    if (kind === null) {
      refuse(
        req,
        socket,
        null,
        badRequest(`unsupported upgrade protocol "${req.upgrade}" (only websocket and SPDY/3.1)`),
      );
      return;
    }
    if (req.hasBody) {
      // A body on an upgrade request could be read as the first tunnel bytes upstream.
      refuse(req, socket, null, badRequest('upgrade requests must not carry a body'));
      return;
    }
    const headers = sanitizeRequestHeaders(req.headers, client.identity, this.options.rules, {
      keepUpgrade: true,
      forwardedFor: client.remoteAddress,
    });
    const framed = headers.filter(([name]) => {
      const lower = name.toLowerCase();
      return lower !== 'content-length' && lower !== 'transfer-encoding';
    });
    // An explicit empty body: Node would otherwise chunk a POST (SPDY exec) and send the
    // terminating chunk, which the apiserver would read as the first bytes of the tunnel.
    if (req.method !== 'GET' && req.method !== 'HEAD') framed.push(['Content-Length', '0']);
    let upstreamSocket: TLSSocket | null = null;
    const progress: Progress = { answered: false, tunnel: null };
    // Cut before the apiserver answered: the upgrade request gets the cut's Status instead.
    client.setTerminator((cut) => {
      if (progress.tunnel !== null) {
        progress.tunnel.cut(cut.status);
        return;
      }
      upstreamSocket?.destroy();
      if (cut.status === null || progress.answered) socket.destroy();
      else refuse(req, socket, null, cut.status);
    });
    // A tunnel cannot be wound down from outside its protocol: on shutdown it keeps going until
    // the grace period ends (most exec and port-forward sessions finish by then).
    client.setDrainer(() => {});
    this.options.upstream.dialFresh('http/1.1', client.upstreamRole).then(
      (dialled) => {
        if (socket.destroyed || socket.writableEnded) {
          dialled.destroy();
          return;
        }
        upstreamSocket = dialled;
        this.exchange(req, framed, kind, socket, head, dialled, progress);
      },
      (err: Error) => refuse(req, socket, null, upstreamUnavailable(errorMessage(err))),
    );
  }

  /** Sends the request head on the fresh connection and acts on the apiserver's answer. */
  private exchange(
    req: UpgradeRequest,
    headers: Array<[string, string]>,
    kind: UpgradeKind,
    socket: Duplex,
    clientHead: Buffer,
    upstreamSocket: TLSSocket,
    progress: Progress,
  ): void {
    const upstreamRequest = request({
      createConnection: () => upstreamSocket,
      method: req.method,
      path: req.target,
      headers: headers.flat(),
      setHost: false,
    });
    const timer = setTimeout(() => {
      upstreamErrors.inc({ kind: 'timeout' });
      upstreamRequest.destroy();
      refuse(
        req,
        socket,
        upstreamSocket,
        upstreamUnavailable(
          `no answer to the upgrade request within ${UPGRADE_RESPONSE_TIMEOUT_MS / 1000} s`,
        ),
      );
    }, UPGRADE_RESPONSE_TIMEOUT_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      upstreamSocket.destroy();
    });

    upstreamRequest.on(
      'upgrade',
      (response: IncomingMessage, tunnelSocket: Duplex, upstreamHead: Buffer) => {
        clearTimeout(timer);
        progress.answered = true;
        const problem = switchingProblem(response, kind);
        if (problem !== null) {
          upstreamErrors.inc({ kind: 'protocol' });
          this.options.log.warn({ problem }, 'upstream upgrade answer refused');
          refuse(
            req,
            socket,
            tunnelSocket,
            badGateway(`invalid upgrade response from the apiserver: ${problem}`),
          );
          return;
        }
        recordRequest('http/1.1', req.method, 101, UNTIMED);
        socket.write(responseHead(response, pairsFromRaw(response.rawHeaders)));
        if (clientHead.length > 0) tunnelSocket.write(clientHead);
        const tunnel = new Tunnel(socket, tunnelSocket, kind, subprotocolOf(response));
        progress.tunnel = tunnel;
        tunnel.start(upstreamHead);
      },
    );

    upstreamRequest.on('response', (response: IncomingMessage) => {
      clearTimeout(timer);
      progress.answered = true;
      recordRequest('http/1.1', req.method, response.statusCode ?? 502, UNTIMED);
      relayRefusal(response, socket, upstreamSocket);
    });

    upstreamRequest.on('error', (err) => {
      clearTimeout(timer);
      if (socket.destroyed) return;
      const upstreamError =
        err instanceof UpstreamError ? err : new UpstreamError('reset', errorMessage(err));
      upstreamErrors.inc({ kind: upstreamError.kind });
      refuse(
        req,
        socket,
        upstreamSocket,
        badGateway(`upgrade request failed: ${upstreamError.message}`),
      );
    });
    upstreamRequest.end();
  }
}

/** Why a 101 is not the switch we asked for, or null when it is. */
function switchingProblem(response: IncomingMessage, kind: UpgradeKind): string | null {
  if (response.statusCode !== 101) return `status ${response.statusCode}`;
  if (upgradeKind(response.headers.upgrade) !== kind) {
    return `asked for ${kind}, the answer switches to "${response.headers.upgrade ?? ''}"`;
  }
  const connection = (response.headers.connection ?? '').toLowerCase();
  if (!connection.split(',').some((t) => t.trim() === 'upgrade'))
    return 'the 101 lacks Connection: Upgrade';
  return null;
}

function responseHead(response: IncomingMessage, headers: Array<[string, string]>): string {
  const lines = headers.map(([n, v]) => `${n}: ${v}\r\n`).join('');
  return `HTTP/1.1 ${response.statusCode} ${response.statusMessage ?? ''}\r\n${lines}\r\n`;
}

/** The WebSocket subprotocol the apiserver chose ('' for none). */
function subprotocolOf(response: IncomingMessage): string {
  const value = response.headers['sec-websocket-protocol'];
  return typeof value === 'string' ? value.trim() : '';
}

/**
 * A non-101 answer: status, headers and at most MAX_REFUSAL_BODY_BYTES of body go to the
 * client, then both connections close. No client byte ever reaches the apiserver here.
 */
function relayRefusal(response: IncomingMessage, client: Duplex, upstream: Duplex): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  const send = () => {
    const body = Buffer.concat(chunks);
    const headers = sanitizeResponseHeaders(pairsFromRaw(response.rawHeaders)).filter(
      ([n]) => n.toLowerCase() !== 'content-length',
    );
    headers.push(['Content-Length', String(body.length)], ['Connection', 'close']);
    client.end(Buffer.concat([Buffer.from(responseHead(response, headers), 'latin1'), body]));
    upstream.destroy();
    closeSoon(client);
  };
  response.on('data', (chunk: Buffer) => {
    if (truncated) return;
    const room = MAX_REFUSAL_BODY_BYTES - size;
    if (chunk.length > room) {
      chunks.push(chunk.subarray(0, room));
      truncated = true;
      send();
      return;
    }
    chunks.push(chunk);
    size += chunk.length;
  });
  response.on('end', () => {
    if (!truncated) send();
  });
  response.on('error', () => {
    if (!truncated) send();
  });
}

/** Answers the client ourselves (counted as the request's answer) and closes both sides. */
function refuse(
  req: UpgradeRequest,
  client: Duplex,
  upstream: Duplex | null,
  status: StatusResponse,
): void {
  upstream?.destroy();
  if (client.destroyed || client.writableEnded) return;
  recordRequest('http/1.1', req.method, status.code, UNTIMED);
  client.end(rawStatusResponse(status, true));
  closeSoon(client);
}

function closeSoon(socket: Duplex): void {
  setTimeout(() => socket.destroy(), 1000).unref();
}
