/**
 * The REST core of the fake kube-apiserver: one TLS listener speaking HTTP/2 and HTTP/1.1,
 * which authenticates every request the way kube-apiserver does, records it, authorizes it
 * and answers discovery, nodes, pods (lists, Tables, watches) and SelfSubjectReview itself.
 * Pod exec/attach/portforward/log go to the streaming half (./streaming) once the pod is
 * known to exist and, for the interactive ones, to run.
 */
import { X509Certificate } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import { createSecureServer, type Http2SecureServer, Http2ServerRequest } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import {
  type AuthenticationConfig,
  type AuthenticationResult,
  authenticate,
  authenticationConfig,
  type ClientCertificate,
  subjectIdentity,
} from './authentication.js';
import { type AddNodeOptions, type AddPodOptions, Cluster } from './cluster.js';
import { discoveryDocuments } from './discovery.js';
import { answererFor, type Channel } from './exchange.js';
import { type AnyRequest, type AnyResponse, headerLines } from './http.js';
import type { FakeApiserver, FakeApiserverOptions, UpgradeAnswer } from './index.js';
import { SessionBook } from './pod-streams.js';
import { authorize, parseRequestInfo } from './request-info.js';
import { type RestBackend, route } from './routes.js';
import * as status from './status.js';
import type { RecordedRequest, StreamingHandlers, StreamSession } from './types.js';

/** How long a rejected upgrade's connection stays open to catch bytes a proxy should not send. */
const REJECTED_UPGRADE_HOLD_MS = 1000;
const DEFAULT_WAIT_MS = 10_000;

/** One TLS connection, as far as requests on it are concerned. */
interface Connection {
  readonly id: number;
  readonly cert: ClientCertificate | null;
  readonly peerCommonName: string | null;
}

interface Waiter {
  readonly pred: (r: RecordedRequest) => boolean;
  readonly resolve: (r: RecordedRequest) => void;
  readonly reject: (err: Error) => void;
}

/** startFakeApiserver with the streaming half given explicitly (tests stub it). */
export async function startFakeApiserverWith(
  opts: FakeApiserverOptions,
  createStreaming: () => StreamingHandlers,
): Promise<FakeApiserver> {
  const fake = new FakeApiserverServer(opts, createStreaming());
  await fake.listen(opts.host ?? '127.0.0.1', opts.port ?? 0);
  return fake;
}

class FakeApiserverServer implements FakeApiserver {
  upgradeOverride: ((req: RecordedRequest) => UpgradeAnswer | null) | null = null;

  private readonly server: Http2SecureServer;
  private readonly auth: AuthenticationConfig;
  private readonly cluster = new Cluster();
  private readonly recorded: RecordedRequest[] = [];
  private readonly sessionBook = new SessionBook();
  private readonly waiters = new Set<Waiter>();
  private readonly connections = new WeakMap<object, Connection>();
  private readonly tlsSockets = new Set<TLSSocket>();
  private tlsAccepted = 0;
  private readonly tcpSockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private discovery: ReadonlyMap<string, unknown> = new Map();
  private readonly maxRecorded: number;
  private nextRequestId = 1;
  private nextConnectionId = 1;
  private rejectedUpgradeBytes = 0;
  private address = { host: '127.0.0.1', port: 0 };
  private closed = false;

  constructor(
    opts: FakeApiserverOptions,
    private readonly streaming: StreamingHandlers,
  ) {
    this.auth = authenticationConfig(opts);
    this.maxRecorded = opts.maxRecordedRequests ?? Number.POSITIVE_INFINITY;
    const cas = [opts.clientCA, opts.requestheader?.clientCA].filter(
      (pem): pem is string => pem !== undefined,
    );
    this.server = createSecureServer({
      cert: opts.tls.cert,
      key: opts.tls.key,
      allowHTTP1: true,
      requestCert: true,
      // Chain checks happen per authenticator, against its own bundle (see authentication.ts).
      rejectUnauthorized: false,
      ...(cas.length > 0 ? { ca: cas } : {}),
    });
    disableHttp1Timeouts(this.server);
    this.server.on('connection', (socket: Socket) => this.trackTcp(socket));
    this.server.on('secureConnection', (socket: TLSSocket) => this.trackTls(socket));
    this.server.on('request', (req: AnyRequest, res: AnyResponse) =>
      this.dispatch(req, this.connectionOfRequest(req), { kind: 'http', res }),
    );
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Node's HTTP layer lets go of an upgraded socket; an unheard error would crash the fake.
      socket.on('error', () => {});
      const tls = socket as TLSSocket;
      this.dispatch(req, this.connectionFor(tls, tls), { kind: 'upgrade', socket, head });
    });
    this.seed();
  }

  get url(): string {
    const host = this.address.host.includes(':') ? `[${this.address.host}]` : this.address.host;
    return `https://${host}:${this.address.port}`;
  }

  get port(): number {
    return this.address.port;
  }

  get requests(): readonly RecordedRequest[] {
    return this.recorded;
  }

  get sessions(): readonly StreamSession[] {
    return this.sessionBook.sessions;
  }

  get openConnections(): number {
    return this.tlsSockets.size;
  }

  get connectionsAccepted(): number {
    return this.tlsAccepted;
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const bound = this.server.address();
    if (bound === null || typeof bound === 'string') throw new Error('listener has no TCP address');
    this.address = { host, port: bound.port };
    this.discovery = discoveryDocuments(`${host}:${bound.port}`);
  }

  waitForRequest(
    pred: (r: RecordedRequest) => boolean,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<RecordedRequest> {
    const seen = this.recorded.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const settle = () => {
        this.forgetTimer(timer);
        this.waiters.delete(waiter);
      };
      const waiter: Waiter = {
        pred,
        resolve: (r) => {
          settle();
          resolve(r);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
      const timer = this.startTimer(timeoutMs, () =>
        waiter.reject(new Error(`no matching request within ${timeoutMs} ms`)),
      );
      this.waiters.add(waiter);
    });
  }

  addNode(name: string, opts?: AddNodeOptions): void {
    this.cluster.addNode(name, opts);
  }

  addPod(name: string, opts?: AddPodOptions): void {
    this.cluster.addPod(name, opts);
  }

  setPodPhase(name: string, phase: string, namespace?: string): void {
    this.cluster.setPodPhase(name, phase, namespace);
  }

  deletePod(name: string, namespace?: string): void {
    this.cluster.deletePod(name, namespace);
  }

  appendLog(pod: string, line: string, namespace?: string): void {
    this.cluster.appendLog(pod, line, namespace);
  }

  bytesAfterRejectedUpgrade(): number {
    return this.rejectedUpgradeBytes;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const listenerClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const sockets = [...this.tlsSockets, ...this.tcpSockets];
    const socketsClosed = sockets.map(
      (socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())),
    );
    for (const socket of sockets) socket.destroy();
    for (const waiter of [...this.waiters]) waiter.reject(new Error('fake apiserver closed'));
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.all([listenerClosed, ...socketsClosed, this.streaming.close()]);
  }

  /** Seed state: one Ready control-plane node and one Running pod, like a fresh kind cluster. */
  private seed(): void {
    this.cluster.addNode('node-1', { ready: true, roles: ['control-plane'] });
    this.cluster.addPod('demo', { namespace: 'default', phase: 'Running', containers: ['app'] });
  }

  private trackTcp(socket: Socket): void {
    // Watch events and log lines are small writes that must not wait for Nagle.
    socket.setNoDelay(true);
    this.tcpSockets.add(socket);
    socket.once('close', () => this.tcpSockets.delete(socket));
  }

  private trackTls(socket: TLSSocket): void {
    this.tlsAccepted++;
    this.tlsSockets.add(socket);
    socket.once('close', () => this.tlsSockets.delete(socket));
  }

  /** HTTP/2 requests share their session's connection; HTTP/1.1 ones their socket's. */
  private connectionOfRequest(req: AnyRequest): Connection {
    if (req instanceof Http2ServerRequest) {
      const session = req.stream.session;
      // The session's socket is a proxy object; its TLS methods are bound to the real socket.
      return this.connectionFor(session ?? req.stream, req.socket as unknown as TLSSocket);
    }
    const socket = req.socket as TLSSocket;
    return this.connectionFor(socket, socket);
  }

  /** Connection ids are handed out in the order of each connection's first request. */
  private connectionFor(key: object, socket: TLSSocket): Connection {
    let connection = this.connections.get(key);
    if (connection === undefined) {
      const cert = clientCertificateOf(socket);
      connection = {
        id: this.nextConnectionId++,
        cert,
        peerCommonName: cert === null ? null : subjectIdentity(cert.leaf).commonName,
      };
      this.connections.set(key, connection);
    }
    return connection;
  }

  private dispatch(req: AnyRequest, connection: Connection, channel: Channel): void {
    try {
      this.handle(req, connection, channel);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      try {
        answererFor(req, channel).fail(status.internalError(message));
      } catch {
        // The answer had already begun (or the socket was handed over): cut the connection.
        if (channel.kind === 'upgrade') channel.socket.destroy();
        else channel.res.destroy();
      }
    }
  }

  /** kube's handler chain: authenticate, (record), authorize, then serve. */
  private handle(req: AnyRequest, connection: Connection, channel: Channel): void {
    const target = req.url ?? '/';
    const queryAt = target.indexOf('?');
    const rawPath = queryAt < 0 ? target : target.slice(0, queryAt);
    const rawQuery = queryAt < 0 ? '' : target.slice(queryAt + 1);
    const headers = headerLines(req);
    const auth = authenticate(this.auth, connection.cert, headers);
    const upgrade =
      channel.kind === 'upgrade' ? (req.headers.upgrade ?? '').toLowerCase() || null : null;
    const record = this.record(req, connection, rawPath, rawQuery, headers, auth, upgrade);

    if (channel.kind === 'upgrade') {
      const answer = this.upgradeOverride?.(record) ?? null;
      if (answer !== null) {
        this.rejectUpgrade(channel.socket, channel.head, answer);
        return;
      }
    }
    const answerer = answererFor(req, channel);
    if (auth.by === null) {
      answerer.fail(status.unauthorized());
      return;
    }
    const query = new URLSearchParams(rawQuery);
    const method = req.method ?? 'GET';
    const info = parseRequestInfo(method, decodePath(rawPath), query, upgrade === 'websocket');
    const denied = authorize(auth.user, info);
    if (denied !== null) {
      answerer.fail(denied);
      return;
    }
    route({ req, record, user: auth.user, info, query, channel, ...answerer }, this.backend);
  }

  private get backend(): RestBackend {
    return {
      cluster: this.cluster,
      discovery: this.discovery,
      streaming: this.streaming,
      sessions: this.sessionBook,
    };
  }

  private record(
    req: AnyRequest,
    connection: Connection,
    path: string,
    query: string,
    rawHeaders: RecordedRequest['rawHeaders'],
    auth: AuthenticationResult,
    upgrade: string | null,
  ): RecordedRequest {
    const record: RecordedRequest = {
      id: this.nextRequestId++,
      connectionId: connection.id,
      method: req.method ?? 'GET',
      path,
      query,
      protocol: req.httpVersionMajor === 2 ? 'h2' : 'http/1.1',
      rawHeaders,
      peerCommonName: connection.peerCommonName,
      authenticatedBy: auth.by,
      user: auth.by === null ? null : auth.user,
      upgrade,
      receivedAt: Date.now(),
    };
    this.recorded.push(record);
    if (this.recorded.length > this.maxRecorded) this.recorded.shift();
    for (const waiter of [...this.waiters]) if (waiter.pred(record)) waiter.resolve(record);
    return record;
  }

  /**
   * The override answer to an upgrade: raw HTTP/1.1 with a Content-Length body, then the
   * connection stays open for a while so that anything a proxy wrongly keeps sending on it
   * (CVE-2018-1002105) is counted.
   */
  private rejectUpgrade(socket: Duplex, head: Buffer, answer: UpgradeAnswer): void {
    this.rejectedUpgradeBytes += head.length;
    const body = answer.body ?? '';
    const lines = [`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Unknown'}`];
    for (const [name, value] of Object.entries(answer.headers ?? {})) {
      if (name.toLowerCase() !== 'content-length') lines.push(`${name}: ${value}`);
    }
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
    socket.on('data', (chunk: Buffer) => {
      this.rejectedUpgradeBytes += chunk.length;
    });
    const timer = this.startTimer(REJECTED_UPGRADE_HOLD_MS, () =>
      socket.end(() => socket.destroy()),
    );
    socket.once('close', () => this.forgetTimer(timer));
  }

  private startTimer(ms: number, fire: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fire();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  private forgetTimer(timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    this.timers.delete(timer);
  }
}

/**
 * The leaf and every other certificate of the client's chain. Read through
 * getPeerCertificate(true) only: after a getPeerX509Certificate() call on the same socket,
 * Node 20 reports the leaf without its issuers.
 */
function clientCertificateOf(socket: TLSSocket): ClientCertificate | null {
  const presented: X509Certificate[] = [];
  const seen = new Set<string>();
  let link: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (link?.raw !== undefined && !seen.has(link.fingerprint256)) {
    seen.add(link.fingerprint256);
    presented.push(new X509Certificate(link.raw));
    link = link.issuerCertificate;
  }
  const [leaf] = presented;
  return leaf === undefined ? null : { leaf, presented, verdicts: new Map() };
}

/**
 * Node 20 gives HTTP/1.1 requests on an allowHTTP1 server a 300 s request timeout that
 * would cut long watches and log streams (reference/node-tls-facts.md).
 */
function disableHttp1Timeouts(server: Http2SecureServer): void {
  const http1 = server as unknown as { requestTimeout: number };
  http1.requestTimeout = 0;
  server.setTimeout(0);
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
