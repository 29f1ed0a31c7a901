/**
 * The fake kube-apiserver: the one stand-in for kube-apiserver 1.32 used by the proxy's
 * tests, the benchmarks and the `demo` subcommand. Real kubectl works against it directly.
 * Protocol facts it follows: /work/shared/reference/kube-protocol.md.
 */
import type { AddNodeOptions, AddPodOptions } from './cluster.js';
import { startFakeApiserverWith } from './server.js';
import { createStreamingHandlers } from './streaming/index.js';
import type { RecordedRequest, StreamSession } from './types.js';

export type * from './types.js';

export interface FakeApiserverOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** Serving certificate and key, PEM. */
  tls: { cert: string; key: string };
  /** PEM bundle for x509 client-certificate authentication (kube's --client-ca-file). */
  clientCA?: string;
  /** kube's --requestheader-* flags. */
  requestheader?: {
    /** PEM: --requestheader-client-ca-file. */
    clientCA: string;
    /** Default ['front-proxy-client']; [] = any certificate from clientCA. */
    allowedNames?: string[];
    /** Default ['X-Remote-User']. */
    usernameHeaders?: string[];
    /** Default [] (1.32: alpha, off). */
    uidHeaders?: string[];
    /** Default ['X-Remote-Group']. */
    groupHeaders?: string[];
    /** Default ['X-Remote-Extra-']. */
    extraHeadersPrefix?: string[];
  };
  /** Static bearer tokens (kube's --token-auth-file). */
  tokens?: Record<string, { username: string; uid?: string; groups?: string[] }>;
  /** Default true, like kube. */
  anonymousAuth?: boolean;
  /**
   * Keep only the newest N recorded requests (long benchmark runs); ids keep counting.
   * Default: keep every request.
   */
  maxRecordedRequests?: number;
}

/** What an upgradeOverride answers with: a raw HTTP/1.1 response with a Content-Length body. */
export interface UpgradeAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface FakeApiserver {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** Every request, in arrival order, recorded before it was answered. */
  readonly requests: readonly RecordedRequest[];
  /** Exec/attach/port-forward/log sessions, filled by the streaming half. */
  readonly sessions: readonly StreamSession[];
  /** Resolves with the first recorded request (past or future) matching `pred`. */
  waitForRequest(
    pred: (r: RecordedRequest) => boolean,
    timeoutMs?: number,
  ): Promise<RecordedRequest>;
  /** Cluster state; every change is a watch event with the next resourceVersion. */
  addNode(name: string, opts?: AddNodeOptions): void;
  addPod(name: string, opts?: AddPodOptions): void;
  setPodPhase(name: string, phase: string, namespace?: string): void;
  deletePod(name: string, namespace?: string): void;
  /** Feeds StreamContext.logs of the pod. */
  appendLog(pod: string, line: string, namespace?: string): void;
  /**
   * Test hook: answer upgrade requests with this instead of handing them to the streaming
   * half (issue: non-101 answers). Applied right after the request is recorded, before
   * authentication decides anything.
   */
  upgradeOverride: ((req: RecordedRequest) => UpgradeAnswer | null) | null;
  /**
   * Bytes the fake received on a connection beyond the upgrade request itself after
   * answering that upgrade through upgradeOverride (must stay 0 through the proxy).
   */
  bytesAfterRejectedUpgrade(): number;
  /** Live client connections right now. */
  readonly openConnections: number;
  /** TLS connections accepted since start (a dial that was never made is not counted). */
  readonly connectionsAccepted: number;
  /** Closes the listener, every connection, watch and streaming session. */
  close(): Promise<void>;
}

export function startFakeApiserver(opts: FakeApiserverOptions): Promise<FakeApiserver> {
  return startFakeApiserverWith(opts, createStreamingHandlers);
}
