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
import type { Duplex, Readable } from 'node:stream';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import {
  type AuthenticationConfig,
  type AuthenticationResult,
  authenticate,
  type ClientCertificate,
  readCertificateBundle,
  subjectIdentity,
} from './authentication.js';
import { Cluster, type ClusterObject, type PodRecord } from './cluster.js';
import { AUTHENTICATION_GROUP, discoveryDocuments, VERSION_INFO } from './discovery.js';
import {
  type AnyRequest,
  type AnyResponse,
  asReply,
  headerLines,
  negotiateFormat,
  type Reply,
  type ResponseFormat,
  responseOnUpgradeSocket,
  sendJson,
  sendStatus,
  sendText,
} from './http.js';
import type { FakeApiserver, FakeApiserverOptions, UpgradeAnswer } from './index.js';
import { type IncludeObject, timestamp, toKubeObject, toList, toTable } from './objects.js';
import { authorize, parseRequestInfo, type RequestInfo } from './request-info.js';
import { parseSelectors, type Selector, SelectorError } from './selectors.js';
import * as status from './status.js';
import type {
  RecordedRequest,
  StreamContext,
  StreamingHandlers,
  StreamKind,
  StreamSession,
  StreamTransport,
  UserInfo,
} from './types.js';
import { serveWatch } from './watch.js';

/** How long a rejected upgrade's connection stays open to catch bytes a proxy should not send. */
const REJECTED_UPGRADE_HOLD_MS = 1000;
const DEFAULT_WAIT_MS = 10_000;
const STREAM_KINDS: ReadonlySet<string> = new Set<StreamKind>([
  'exec',
  'attach',
  'portforward',
  'log',
]);
const HEALTH_PATHS: ReadonlySet<string> = new Set(['/healthz', '/livez', '/readyz']);

/** One TLS connection, as far as requests on it are concerned. */
interface Connection {
  readonly id: number;
  readonly cert: ClientCertificate | null;
  readonly peerCommonName: string | null;
}

/** Where the answer to a request goes. */
type Channel =
  | { readonly kind: 'http'; readonly res: AnyResponse }
  | { readonly kind: 'upgrade'; readonly socket: Duplex; readonly head: Buffer };

/** A request once authenticated and recorded: what the handlers below work from. */
interface Exchange {
  readonly req: AnyRequest;
  readonly record: RecordedRequest;
  readonly user: UserInfo;
  readonly info: RequestInfo;
  readonly query: URLSearchParams;
  readonly channel: Channel;
}

interface Waiter {
  readonly pred: (r: RecordedRequest) => boolean;
  readonly resolve: (r: RecordedRequest) => void;
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
  private readonly sessionList: StreamSession[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly connections = new WeakMap<object, Connection>();
  private readonly tlsSockets = new Set<TLSSocket>();
  private readonly tcpSockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private discovery: ReadonlyMap<string, unknown> = new Map();
  private readonly maxRecorded: number;
  private nextRequestId = 1;
  private nextConnectionId = 1;
  private nextSessionId = 1;
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
    return this.sessionList;
  }

  get openConnections(): number {
    return this.tlsSockets.size;
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
      const waiter: Waiter = {
        pred,
        resolve: (r) => {
          this.forgetTimer(timer);
          this.waiters.delete(waiter);
          resolve(r);
        },
      };
      const timer = this.startTimer(timeoutMs, () => {
        this.waiters.delete(waiter);
        reject(new Error(`no matching request within ${timeoutMs} ms`));
      });
      this.waiters.add(waiter);
    });
  }

  addNode(name: string, opts?: { ready?: boolean; roles?: string[] }): void {
    this.cluster.addNode(name, opts);
  }

  addPod(
    name: string,
    opts?: {
      namespace?: string;
      phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
      containers?: string[];
      node?: string;
    },
  ): void {
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
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.waiters.clear();
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
        this.answerStatus(req, channel, internalError(message));
      } catch {
        // The answer had already begun (or the socket was handed over): cut the connection.
        if (channel.kind === 'upgrade') channel.socket.destroy();
        else channel.res.destroy();
      }
    }
  }

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
    if (auth.by === null) {
      this.answerStatus(req, channel, status.unauthorized());
      return;
    }
    const query = new URLSearchParams(rawQuery);
    const info = parseRequestInfo(
      req.method ?? 'GET',
      decodePath(rawPath),
      query,
      upgrade === 'websocket',
    );
    const denied = authorize(auth.user, info);
    if (denied !== null) {
      this.answerStatus(req, channel, denied);
      return;
    }
    this.route({ req, record, user: auth.user, info, query, channel });
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

  private route(ex: Exchange): void {
    const { info } = ex;
    if (!info.isResourceRequest) {
      this.serveNonResource(ex);
      return;
    }
    if (info.apiGroup === '' && info.apiVersion === 'v1') {
      if (info.resource === 'nodes' && info.namespace === '' && info.subresource === '') {
        this.serveObjects(ex, 'nodes');
        return;
      }
      if (info.resource === 'pods') {
        this.servePods(ex);
        return;
      }
    }
    if (
      info.apiGroup === AUTHENTICATION_GROUP &&
      info.apiVersion === 'v1' &&
      info.resource === 'selfsubjectreviews' &&
      info.name === ''
    ) {
      this.serveSelfSubjectReview(ex);
      return;
    }
    this.answerStatus(ex.req, ex.channel, status.noSuchResource());
  }

  private serveNonResource(ex: Exchange): void {
    const { path, verb } = ex.info;
    const document = this.discovery.get(path);
    const known = document !== undefined || path === '/version' || HEALTH_PATHS.has(path);
    if (!known) {
      this.answerStatus(ex.req, ex.channel, status.noSuchResource());
      return;
    }
    if (verb !== 'get') {
      this.answerStatus(ex.req, ex.channel, status.methodNotAllowed());
      return;
    }
    const res = this.replyFor(ex.req, ex.channel);
    if (path === '/version') {
      sendJson(res, 200, VERSION_INFO);
      return;
    }
    if (HEALTH_PATHS.has(path)) {
      sendText(res, 200, 'ok');
      return;
    }
    sendJson(res, 200, document);
  }

  private servePods(ex: Exchange): void {
    const { info } = ex;
    if (info.namespace === '' && info.name !== '' && info.verb === 'get') {
      this.answerStatus(ex.req, ex.channel, status.noSuchResource());
      return;
    }
    if (info.subresource === '' || (info.subresource === 'status' && info.verb === 'get')) {
      this.serveObjects(ex, 'pods');
      return;
    }
    if (STREAM_KINDS.has(info.subresource)) {
      this.serveStream(ex, info.subresource as StreamKind);
      return;
    }
    this.answerStatus(ex.req, ex.channel, status.noSuchResource());
  }

  /** get / list / watch of nodes or pods, as JSON objects or meta.k8s.io Tables. */
  private serveObjects(ex: Exchange, resource: 'nodes' | 'pods'): void {
    const { info, query } = ex;
    if (!['get', 'list', 'watch'].includes(info.verb)) {
      this.answerStatus(ex.req, ex.channel, status.methodNotAllowed());
      return;
    }
    const includeObject = query.get('includeObject') ?? 'Metadata';
    if (!isIncludeObject(includeObject)) {
      this.answerStatus(
        ex.req,
        ex.channel,
        status.badRequest(`invalid includeObject: ${includeObject}`),
      );
      return;
    }
    const format = negotiateFormat(headerValue(ex.req, 'accept'), includeObject);
    if (format === null) {
      this.answerStatus(ex.req, ex.channel, status.notAcceptable());
      return;
    }
    if (info.verb === 'get') {
      this.serveOne(ex, resource, format);
      return;
    }

    let selects: Selector;
    try {
      const kind = resource === 'nodes' ? 'Node' : 'Pod';
      const selected = parseSelectors(kind, query.get('labelSelector'), query.get('fieldSelector'));
      selects = (o: ClusterObject) =>
        o.kind === kind &&
        (info.namespace === '' || (o.kind === 'Pod' && o.namespace === info.namespace)) &&
        selected(o);
    } catch (err) {
      if (!(err instanceof SelectorError)) throw err;
      this.answerStatus(ex.req, ex.channel, status.badRequest(err.message));
      return;
    }
    if (info.verb === 'watch') {
      this.serveWatch(ex, resource, format, selects);
      return;
    }

    const records =
      resource === 'nodes'
        ? this.cluster.listNodes().filter(selects)
        : this.cluster.listPods(info.namespace === '' ? null : info.namespace).filter(selects);
    const rv = this.cluster.currentResourceVersion;
    const body =
      format.kind === 'table'
        ? toTable(resource, records, rv, { ...format, withColumns: true, now: Date.now() })
        : toList(resource === 'nodes' ? 'NodeList' : 'PodList', records, rv);
    sendJson(this.replyFor(ex.req, ex.channel), 200, body);
  }

  private serveOne(ex: Exchange, resource: 'nodes' | 'pods', format: ResponseFormat): void {
    const { info } = ex;
    const record =
      resource === 'nodes'
        ? this.cluster.getNode(info.name)
        : this.cluster.getPod(info.namespace, info.name);
    if (record === undefined) {
      this.answerStatus(ex.req, ex.channel, status.notFound({ group: '', resource }, info.name));
      return;
    }
    const body =
      format.kind === 'table'
        ? toTable(resource, [record], record.resourceVersion, {
            ...format,
            withColumns: true,
            now: Date.now(),
          })
        : toKubeObject(record);
    sendJson(this.replyFor(ex.req, ex.channel), 200, body);
  }

  private serveWatch(
    ex: Exchange,
    resource: 'nodes' | 'pods',
    format: ResponseFormat,
    selected: Selector,
  ): void {
    const { info, query } = ex;
    const rv = query.get('resourceVersion') ?? '';
    if (rv !== '' && !/^\d+$/.test(rv)) {
      this.answerStatus(ex.req, ex.channel, status.badRequest(`invalid resource version: ${rv}`));
      return;
    }
    const timeout = Number.parseInt(query.get('timeoutSeconds') ?? '', 10);
    // A named watch (/api/v1/watch/…/pods/NAME) sees that one object only.
    const selects =
      info.name === '' ? selected : (o: ClusterObject) => o.name === info.name && selected(o);
    serveWatch(this.replyFor(ex.req, ex.channel), this.cluster, {
      resource,
      selects,
      sinceResourceVersion: rv === '' || rv === '0' ? null : Number(rv),
      timeoutSeconds: Number.isFinite(timeout) && timeout > 0 ? timeout : null,
      format,
    });
  }

  private serveSelfSubjectReview(ex: Exchange): void {
    if (ex.info.verb !== 'create') {
      this.answerStatus(ex.req, ex.channel, status.methodNotAllowed());
      return;
    }
    const { username, uid, groups, extra } = ex.user;
    const userInfo = {
      username,
      ...(uid === undefined || uid === '' ? {} : { uid }),
      ...(groups.length === 0 ? {} : { groups }),
      ...(Object.keys(extra).length === 0 ? {} : { extra }),
    };
    // The body (JSON or protobuf) carries nothing the answer depends on; read it to the end
    // so the HTTP/1.1 connection stays usable, then answer.
    drain(ex.req).then(
      () =>
        sendJson(this.replyFor(ex.req, ex.channel), 201, {
          kind: 'SelfSubjectReview',
          apiVersion: `${AUTHENTICATION_GROUP}/v1`,
          metadata: { creationTimestamp: timestamp(Date.now()) },
          status: { userInfo },
        }),
      () => {},
    );
  }

  /** Pod subresources: checks kube makes before the kubelet is involved, then the streaming half. */
  private serveStream(ex: Exchange, kind: StreamKind): void {
    const { info } = ex;
    const pod = this.cluster.getPod(info.namespace, info.name);
    if (pod === undefined) {
      this.answerStatus(
        ex.req,
        ex.channel,
        status.notFound({ group: '', resource: 'pods' }, info.name),
      );
      return;
    }
    const refusal = streamRefusal(pod, kind, ex.query.get('container'));
    if (refusal !== null) {
      if (refusal.kind === 'status') {
        this.answerStatus(ex.req, ex.channel, refusal.status);
        return;
      }
      sendText(this.replyFor(ex.req, ex.channel), 500, refusal.text);
      return;
    }
    const ctx = this.streamContext(ex, pod, kind);
    if (ex.channel.kind === 'upgrade') {
      this.streaming.handleUpgrade(
        ex.req as IncomingMessage,
        ex.channel.socket,
        ex.channel.head,
        ctx,
      );
    } else {
      this.streaming.handleRequest(ex.req, ex.channel.res, ctx);
    }
  }

  private streamContext(ex: Exchange, pod: PodRecord, kind: StreamKind): StreamContext {
    const logs = this.cluster.podLog(pod.namespace, pod.name);
    if (logs === undefined) throw new Error(`pod ${pod.namespace}/${pod.name} has no log`);
    return {
      request: ex.record,
      user: ex.user,
      namespace: pod.namespace,
      pod: pod.name,
      kind,
      logs,
      openSession: (transport: StreamTransport) => {
        const session: StreamSession = {
          id: this.nextSessionId++,
          requestId: ex.record.id,
          kind,
          transport,
          namespace: pod.namespace,
          pod: pod.name,
          user: ex.user,
          startedAt: Date.now(),
          endedAt: null,
          endedBy: null,
          bytesIn: 0,
          bytesOut: 0,
        };
        this.sessionList.push(session);
        return session;
      },
      endSession: (session, endedBy) => {
        // The first end wins: a session that both sides close is ended by whoever was first.
        if (session.endedAt !== null) return;
        session.endedAt = Date.now();
        session.endedBy = endedBy;
      },
    };
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

  private replyFor(req: AnyRequest, channel: Channel): Reply {
    if (channel.kind === 'http') return asReply(channel.res);
    return asReply(responseOnUpgradeSocket(req as IncomingMessage, channel.socket as Socket));
  }

  private answerStatus(req: AnyRequest, channel: Channel, body: status.KubeStatus): void {
    if (channel.kind === 'http' && channel.res.headersSent) {
      channel.res.destroy();
      return;
    }
    sendStatus(this.replyFor(req, channel), body);
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

type StreamRefusal =
  | { readonly kind: 'status'; readonly status: status.KubeStatus }
  | { readonly kind: 'kubelet'; readonly text: string };

/**
 * Why kube would not let this subresource request reach a session. Container checks are the
 * apiserver's (registry/core/pod: 400 BadRequest). A pod that does not run is refused by the
 * kubelet, whose plain-text 500 the apiserver relays as is: kubectl then prints
 * "unable to upgrade connection: container not found (\"app\")". (For WebSocket exec the
 * 1.30+ apiserver would instead upgrade and report the same error on the error channel;
 * that belongs to the streaming protocol, so the fake answers the SPDY-era way.)
 */
function streamRefusal(
  pod: PodRecord,
  kind: StreamKind,
  requested: string | null,
): StreamRefusal | null {
  let container = requested ?? '';
  if (kind !== 'portforward') {
    if (container === '' && pod.containers.length > 1) {
      const names = pod.containers.join(' ');
      return {
        kind: 'status',
        status: status.badRequest(
          `a container name must be specified for pod ${pod.name}, choose one of: [${names}]`,
        ),
      };
    }
    if (container === '') container = pod.containers[0] ?? '';
    if (!pod.containers.includes(container)) {
      return {
        kind: 'status',
        status: status.badRequest(`container ${container} is not valid for pod ${pod.name}`),
      };
    }
  }
  if (kind === 'log') {
    if (pod.phase !== 'Pending') return null;
    const waiting = `container "${container}" in pod "${pod.name}" is waiting to start: ContainerCreating`;
    return { kind: 'status', status: status.badRequest(waiting) };
  }
  if (pod.phase === 'Running') return null;
  if (kind === 'portforward') return { kind: 'kubelet', text: `pod ${pod.name} is not running` };
  return { kind: 'kubelet', text: `container not found ("${container}")` };
}

function internalError(message: string): status.KubeStatus {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${message}`,
    reason: 'InternalError',
    details: {},
    code: 500,
  };
}

function authenticationConfig(opts: FakeApiserverOptions): AuthenticationConfig {
  const rh = opts.requestheader;
  return {
    clientCARoots:
      opts.clientCA === undefined ? null : readCertificateBundle(opts.clientCA, 'clientCA'),
    requestheader:
      rh === undefined
        ? null
        : {
            roots: readCertificateBundle(rh.clientCA, 'requestheader.clientCA'),
            allowedNames: rh.allowedNames ?? ['front-proxy-client'],
            usernameHeaders: headerNames(rh.usernameHeaders ?? ['X-Remote-User']),
            uidHeaders: headerNames(rh.uidHeaders ?? []),
            groupHeaders: headerNames(rh.groupHeaders ?? ['X-Remote-Group']),
            extraHeadersPrefix: headerNames(rh.extraHeadersPrefix ?? ['X-Remote-Extra-']),
          },
    tokens: new Map(Object.entries(opts.tokens ?? {})),
    anonymous: opts.anonymousAuth ?? true,
  };
}

/** Header names compare case-insensitively; blank entries are ignored, as kube trims them. */
function headerNames(names: readonly string[]): string[] {
  return names.map((n) => n.trim().toLowerCase()).filter((n) => n !== '');
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
  const http1 = server as unknown as { requestTimeout: number; timeout: number };
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

function headerValue(req: AnyRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function isIncludeObject(value: string): value is IncludeObject {
  return value === 'None' || value === 'Metadata' || value === 'Object';
}

async function drain(req: AnyRequest): Promise<void> {
  for await (const _chunk of req as Readable) {
    // discard
  }
}
