/**
 * Contract of the fake kube-apiserver (src/demo/fake-apiserver; its tests in
 * test/fake-apiserver), shared by its REST core (server.ts and friends) and its streaming half
 * (streaming/: exec, attach, port-forward, logs). Tests, the benchmarks and the `demo`
 * subcommand use only what index.ts exports.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';

/** Who the fake decided a request came from, exactly as kube-apiserver would. */
export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

export type AuthenticatedBy = 'requestheader' | 'x509' | 'token' | 'anonymous';

/** One request as the fake received it (recorded before it is answered). */
export interface RecordedRequest {
  readonly id: number;
  /** Identifies the TCP/TLS connection the request arrived on. */
  readonly connectionId: number;
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly query: string;
  /** 'h2' or 'http/1.1'. */
  readonly protocol: 'h2' | 'http/1.1';
  /** Every header line as received, in order, names lowercased (h2 pseudo-headers excluded). */
  readonly rawHeaders: ReadonlyArray<readonly [string, string]>;
  /** CN of the TLS client certificate on the connection, if any (the proxy's front-proxy-client). */
  readonly peerCommonName: string | null;
  readonly authenticatedBy: AuthenticatedBy | null;
  /** null when authentication failed (the request was answered 401). */
  readonly user: UserInfo | null;
  /** Set when the request asked for an upgrade ('websocket' or 'spdy/3.1'). */
  readonly upgrade: string | null;
  readonly receivedAt: number;
}

export type StreamKind = 'exec' | 'attach' | 'portforward' | 'log';
export type StreamTransport = 'websocket' | 'spdy' | 'spdy-over-websocket' | 'http';

/** One exec/attach/port-forward/log session, so tests can assert what carried it and how it ended. */
export interface StreamSession {
  readonly id: number;
  readonly requestId: number;
  readonly kind: StreamKind;
  readonly transport: StreamTransport;
  readonly namespace: string;
  readonly pod: string;
  readonly user: UserInfo;
  readonly startedAt: number;
  /** Filled when the session ends. */
  endedAt: number | null;
  /** 'client' when the client side closed first, 'server' when the fake finished it. */
  endedBy: 'client' | 'server' | null;
  /** Payload bytes (not framing) the fake received from / sent to the client. */
  bytesIn: number;
  bytesOut: number;
}

/** What the REST core hands the streaming half for a pod subresource request. */
export interface StreamContext {
  readonly request: RecordedRequest;
  readonly user: UserInfo;
  readonly namespace: string;
  readonly pod: string;
  readonly kind: StreamKind;
  /** Registers a session; the streaming half updates its fields as it runs. */
  openSession(transport: StreamTransport): StreamSession;
  endSession(session: StreamSession, endedBy: 'client' | 'server'): void;
  /** Lines the test appended to the pod's log so far, and a way to follow new ones. */
  readonly logs: PodLog;
}

export interface PodLog {
  readonly lines: readonly string[];
  /** Calls `onLine` for each line appended from now on; returns the unsubscribe function. */
  follow(onLine: (line: string) => void): () => void;
}

/**
 * The streaming half. The REST core has authenticated the request, checked the pod exists
 * and is Running, and recorded it; it calls exactly one of these per request.
 */
export interface StreamingHandlers {
  /** HTTP/1.1 Upgrade requests (WebSocket or SPDY/3.1) for exec, attach and portforward. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, ctx: StreamContext): void;
  /**
   * Non-upgrade requests to exec/attach/portforward (answered 400 as kube does) and pods/log
   * (kubectl sends logs over HTTP/2 when it can, so both request types arrive here).
   */
  handleRequest(
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
    ctx: StreamContext,
  ): void;
  /** Closes every session and the port-forward echo server. */
  close(): Promise<void>;
}
