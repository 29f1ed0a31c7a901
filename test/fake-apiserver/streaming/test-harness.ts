/**
 * Test-only: the streaming half behind a bare HTTP/1.1 server, with a hand-made
 * StreamContext instead of the REST core, so the protocol pieces can be tested with small
 * clients (no TLS, no authentication). End-to-end tests with kubectl use startFakeApiserver.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { SessionBook } from '../../../src/demo/fake-apiserver/pod-streams.js';
import {
  createStreamingHandlers,
  type StreamingOptions,
} from '../../../src/demo/fake-apiserver/streaming/index.js';
import type {
  PodLog,
  RecordedRequest,
  StreamContext,
  StreamKind,
  StreamSession,
  UserInfo,
} from '../../../src/demo/fake-apiserver/types.js';

export const TEST_USER: UserInfo = {
  username: 'alice',
  groups: ['dev', 'system:authenticated'],
  extra: {},
};

class TestPodLog implements PodLog {
  readonly lines: string[] = [];
  private readonly followers = new Set<(line: string) => void>();

  follow(onLine: (line: string) => void): () => void {
    this.followers.add(onLine);
    return () => this.followers.delete(onLine);
  }

  append(line: string): void {
    this.lines.push(line);
    for (const follower of [...this.followers]) follower(line);
  }
}

export interface StreamingTestServer {
  readonly port: number;
  readonly sessions: readonly StreamSession[];
  readonly log: TestPodLog;
  /** Polls until `done` holds, failing after `timeoutMs`. */
  until(done: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

const SUBRESOURCE =
  /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach|portforward|log)$/;
const KINDS: Readonly<Record<string, StreamKind>> = {
  exec: 'exec',
  attach: 'attach',
  portforward: 'portforward',
  log: 'log',
};

export async function startStreamingTestServer(
  options: StreamingOptions = {},
): Promise<StreamingTestServer> {
  const handlers = createStreamingHandlers(options);
  const book = new SessionBook();
  const log = new TestPodLog();
  let nextRequestId = 1;

  const contextFor = (req: IncomingMessage): StreamContext | null => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const match = SUBRESOURCE.exec(url.pathname);
    if (!match) return null;
    const kind = KINDS[match[3] as string] as StreamKind;
    const request: RecordedRequest = {
      id: nextRequestId++,
      connectionId: 0,
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.search.slice(1),
      protocol: 'http/1.1',
      rawHeaders: [],
      peerCommonName: null,
      authenticatedBy: 'x509',
      user: TEST_USER,
      upgrade: req.headers.upgrade ?? null,
      receivedAt: Date.now(),
    };
    const pod = { namespace: match[1] as string, name: match[2] as string };
    return book.contextFor(request, TEST_USER, pod, kind, log);
  };

  const server: Server = createServer((req, res) => {
    const ctx = contextFor(req);
    if (!ctx) {
      res.writeHead(404).end();
      return;
    }
    handlers.handleRequest(req, res, ctx);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const ctx = contextFor(req);
    if (!ctx) {
      socket.destroy();
      return;
    }
    handlers.handleUpgrade(req, socket, head, ctx);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    port: (server.address() as AddressInfo).port,
    sessions: book.sessions,
    log,
    until(done, timeoutMs = 10_000, what = 'condition') {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const poll = (): void => {
          if (done()) resolve();
          else if (Date.now() - started > timeoutMs)
            reject(new Error(`${what}: not met in ${timeoutMs} ms`));
          else setTimeout(poll, 10);
        };
        poll();
      });
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await handlers.close();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** Everything the peer still sends until it closes the connection. */
export function readToClose(socket: Socket, already: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const chunks = [already];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.resume();
  });
}

/** A raw TCP connection that sends an upgrade request and reads the response head. */
export async function rawUpgrade(
  port: number,
  head: string,
): Promise<{ socket: Socket; response: string; rest: Buffer }> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(head);
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const timer = setTimeout(
      () => reject(new Error(`no upgrade response: ${received.toString('latin1')}`)),
      10_000,
    );
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      resolve({
        socket,
        response: received.subarray(0, end).toString('latin1'),
        rest: received.subarray(end + 4),
      });
    };
    socket.on('data', onData);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ socket, response: received.toString('latin1'), rest: Buffer.alloc(0) });
    });
  });
}

/** The request head of client-go's SPDY upgrade (POST, one X-Stream-Protocol-Version line each). */
export function spdyUpgradeHead(path: string, protocols: readonly string[]): string {
  return [
    `POST ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    'Upgrade: SPDY/3.1',
    ...protocols.map((protocol) => `X-Stream-Protocol-Version: ${protocol}`),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}
