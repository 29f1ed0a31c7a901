/**
 * The streaming half of the fake kube-apiserver: exec, attach, port-forward and logs, served
 * the way kube-apiserver 1.32 and the kubelet serve them together. The REST core has already
 * authenticated, recorded and checked the pod; this module picks the wire protocol and runs
 * the session.
 *
 *   exec/attach   WebSocket v5.channel.k8s.io (kubectl's default)  → websocket-exec.ts
 *                 SPDY/3.1 + X-Stream-Protocol-Version (fallback)   → spdy-exec.ts
 *   portforward   WebSocket SPDY/3.1+portforward.k8s.io (default)  → port-forward.ts over
 *                 SPDY/3.1 portforward.k8s.io (fallback)             websocket-duplex.ts / socket
 *   log           plain GET, HTTP/1.1 or HTTP/2                      → logs.ts
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { StreamContext, StreamingHandlers } from '../types.js';
import { EchoServer } from './echo-server.js';
import { badRequestStatus, refuseUpgrade, respondStatus } from './kube-status.js';
import { serveLogs } from './logs.js';
import { PORT_FORWARD_PROTOCOL, servePortForward } from './port-forward.js';
import { parseCommandRequest } from './remote-command.js';
import { LiveSession, SessionRegistry } from './sessions.js';
import { SPDY_EXEC_PROTOCOLS, serveSpdyCommand } from './spdy-exec.js';
import {
  acceptSpdy,
  negotiateStreamProtocol,
  offeredStreamProtocols,
  offeredWebSocketProtocols,
  prepareUpgradedSocket,
  type UpgradeKind,
  upgradeKind,
  WebSocketAcceptor,
} from './upgrade.js';
import { WebSocketDuplex } from './websocket-duplex.js';
import { serveWebSocketCommand, V5_CHANNEL_PROTOCOL } from './websocket-exec.js';

export interface StreamingOptions {
  /** How long a TTY session waits for the client's first resize (default 1 s). */
  readonly resizeWaitMs?: number;
}

/** apiserver/pkg/util/proxy/streamtunnel.go: "SPDY/3.1+" + the kubelet's protocol. */
const TUNNELING_PROTOCOL = `SPDY/3.1+${PORT_FORWARD_PROTOCOL}`;

type UpgradeHandler = (
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  ctx: StreamContext,
  kind: UpgradeKind,
) => Promise<void>;

export function createStreamingHandlers(options: StreamingOptions = {}): StreamingHandlers {
  const resizeWaitMs = options.resizeWaitMs ?? 1_000;
  const registry = new SessionRegistry();
  const acceptor = new WebSocketAcceptor();
  let echoServer: Promise<EchoServer> | null = null;
  let closed = false;

  const upgradeCommand: UpgradeHandler = async (req, socket, head, ctx, kind) => {
    const request = parseCommandRequest(ctx);
    if (typeof request === 'string') {
      refuseUpgrade(socket, 400, badRequestStatus(request));
      return;
    }
    if (kind === 'websocket') {
      if (!offeredWebSocketProtocols(req).includes(V5_CHANNEL_PROTOCOL)) {
        refuseUpgrade(
          socket,
          400,
          badRequestStatus(`unable to upgrade: ${V5_CHANNEL_PROTOCOL} subprotocol required`),
        );
        return;
      }
      const ws = await acceptor.accept(req, socket, head, V5_CHANNEL_PROTOCOL);
      if (!ws) return;
      const session = new LiveSession(ctx, 'websocket', registry);
      serveWebSocketCommand({ ws, ctx, session, request, resizeWaitMs });
      return;
    }
    const protocol = negotiateStreamProtocol(req, SPDY_EXEC_PROTOCOLS);
    if (!protocol) {
      refuseUpgrade(socket, 403, negotiationFailure(req, SPDY_EXEC_PROTOCOLS));
      return;
    }
    acceptSpdy(socket, head, protocol);
    const session = new LiveSession(ctx, 'spdy', registry);
    serveSpdyCommand({ transport: socket, ctx, session, request, resizeWaitMs });
  };

  const upgradePortForward: UpgradeHandler = async (req, socket, head, ctx, kind) => {
    if (kind === 'websocket' && !offeredWebSocketProtocols(req).includes(TUNNELING_PROTOCOL)) {
      refuseUpgrade(
        socket,
        400,
        badRequestStatus(`unable to upgrade: ${TUNNELING_PROTOCOL} subprotocol required`),
      );
      return;
    }
    if (kind === 'spdy' && !negotiateStreamProtocol(req, [PORT_FORWARD_PROTOCOL])) {
      refuseUpgrade(socket, 403, negotiationFailure(req, [PORT_FORWARD_PROTOCOL]));
      return;
    }
    // Started before the handshake: once upgraded, no client byte may arrive unheard.
    echoServer ??= EchoServer.start();
    const target = await echoServer;
    if (kind === 'websocket') {
      const ws = await acceptor.accept(req, socket, head, TUNNELING_PROTOCOL);
      if (!ws) return;
      const session = new LiveSession(ctx, 'spdy-over-websocket', registry);
      const transport = new WebSocketDuplex(ws, { messageMode: false });
      servePortForward({ transport, ctx, session, target });
      return;
    }
    acceptSpdy(socket, head, PORT_FORWARD_PROTOCOL);
    const session = new LiveSession(ctx, 'spdy', registry);
    servePortForward({ transport: socket, ctx, session, target });
  };

  return {
    handleUpgrade(req, socket, head, ctx) {
      // Until a session owns the socket, a reset must not crash the fake.
      socket.on('error', () => undefined);
      if (closed) {
        socket.destroy();
        return;
      }
      const kind = upgradeKind(req);
      if (kind === 'other' || ctx.kind === 'log') {
        refuseUpgrade(socket, 400, 'unable to upgrade: missing upgrade headers in request');
        return;
      }
      prepareUpgradedSocket(socket);
      const upgrade = ctx.kind === 'portforward' ? upgradePortForward : upgradeCommand;
      upgrade(req, socket, head, ctx, kind).catch(() => socket.destroy());
    },

    handleRequest(req, res, ctx) {
      if (ctx.kind === 'log') {
        serveLogs(req, res, ctx, () => new LiveSession(ctx, 'http', registry));
        return;
      }
      // The apiserver's UpgradeAwareHandler with UpgradeRequired=true.
      respondStatus(res, badRequestStatus('Upgrade request required'));
    },

    async close() {
      closed = true;
      registry.abortAll();
      if (echoServer) await (await echoServer).close();
    },
  };
}

/** The kubelet's httpstream.Handshake refusal (plain text, 403). */
function negotiationFailure(req: IncomingMessage, supported: readonly string[]): string {
  return (
    'unable to upgrade: unable to negotiate protocol: ' +
    `client supports [${offeredStreamProtocols(req).join(' ')}], server supports [${supported.join(' ')}]`
  );
}
