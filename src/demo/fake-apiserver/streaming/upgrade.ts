/**
 * The HTTP/1.1 upgrade handshakes: WebSocket (with the subprotocol negotiated here, since
 * `ws` refuses `SPDY/3.1+portforward.k8s.io` — '/' and '+' are not token characters) and
 * SPDY/3.1 (a hand-written 101, as the kubelet's httpstream/spdy upgrader sends).
 */
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';

export type UpgradeKind = 'websocket' | 'spdy' | 'other';

/** wsstream.IsWebSocketRequest / httpstream.IsUpgradeRequest + the SPDY upgrader's check. */
export function upgradeKind(req: IncomingMessage): UpgradeKind {
  const connection = (req.headers.connection ?? '').toLowerCase();
  const upgrade = (req.headers.upgrade ?? '').toLowerCase();
  if (!connection.split(',').some((token) => token.trim() === 'upgrade')) return 'other';
  if (upgrade === 'websocket') return 'websocket';
  if (upgrade === 'spdy/3.1') return 'spdy';
  return 'other';
}

/** Every value of a list header, over all its lines, comma-split and trimmed. */
function listHeader(req: IncomingMessage, name: string): string[] {
  return (req.headersDistinct[name] ?? [])
    .flatMap((line) => line.split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');
}

export function offeredWebSocketProtocols(req: IncomingMessage): string[] {
  return listHeader(req, 'sec-websocket-protocol');
}

/** The `X-Stream-Protocol-Version` lines of a SPDY upgrade, in the client's order. */
export function offeredStreamProtocols(req: IncomingMessage): string[] {
  return listHeader(req, 'x-stream-protocol-version');
}

/**
 * The kubelet's httpstream.Handshake: the first protocol the client offers that the server
 * supports (client-go offers newest first).
 */
export function negotiateStreamProtocol(
  req: IncomingMessage,
  supported: readonly string[],
): string | null {
  return offeredStreamProtocols(req).find((protocol) => supported.includes(protocol)) ?? null;
}

/**
 * Completes WebSocket handshakes with `ws` for the framing (masking, fragmentation, ping/pong,
 * close handshake) while choosing the subprotocol itself.
 */
export class WebSocketAcceptor {
  private readonly server = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    // gorilla/websocket (client-go) never negotiates compression; refuse it outright.
    perMessageDeflate: false,
  });
  private readonly chosen = new WeakMap<IncomingMessage, string>();

  constructor() {
    this.server.on('headers', (headers: string[], req: IncomingMessage) => {
      const protocol = this.chosen.get(req);
      if (protocol !== undefined) headers.push(`Sec-WebSocket-Protocol: ${protocol}`);
    });
  }

  /**
   * Answers 101 with `protocol` as the subprotocol. Resolves null when `ws` refused the
   * handshake (it has then answered 400 and closed the socket).
   */
  accept(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    protocol: string,
  ): Promise<WebSocket | null> {
    this.chosen.set(req, protocol);
    // Hidden from ws's own (token-only) parser; the 'headers' hook adds the answer.
    delete req.headers['sec-websocket-protocol'];
    return new Promise((resolve) => {
      const onClose = (): void => resolve(null);
      socket.once('close', onClose);
      this.server.handleUpgrade(req, socket, head, (ws) => {
        socket.off('close', onClose);
        resolve(ws);
      });
    });
  }
}

/** The kubelet's SPDY 101: only after this may the client send frames. */
export function acceptSpdy(socket: Duplex, head: Buffer, protocol: string): void {
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Connection: Upgrade\r\n' +
      'Upgrade: SPDY/3.1\r\n' +
      `X-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
  );
  // Bytes the client sent right behind its request belong to the SPDY session.
  if (head.length > 0) socket.unshift(head);
}

/**
 * Upgraded sockets live as long as the session: no Nagle delay on small frames, no idle
 * timeout (kube's is 4 h; the fake imposes none).
 */
export function prepareUpgradedSocket(socket: Duplex): void {
  if (socket instanceof Socket) {
    socket.setNoDelay(true);
    socket.setTimeout(0);
  }
}
