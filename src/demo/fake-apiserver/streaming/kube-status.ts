/**
 * metav1.Status bodies exactly as kube-apiserver and the kubelet serialise them, and the raw
 * HTTP answers the fake writes on a socket that was never upgraded.
 *
 * Field order follows the Go struct (kind, apiVersion, metadata, status, message, reason,
 * details, code) because Go's encoding/json writes fields in declaration order; byte-level
 * tests of the proxy compare these bodies.
 */
import type { Duplex } from 'node:stream';

export interface StatusCause {
  /** Go's StatusCause.Type, serialised as "reason". */
  readonly reason?: string;
  readonly message: string;
}

export interface KubeStatus {
  readonly kind?: 'Status';
  readonly apiVersion?: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Success' | 'Failure';
  readonly message?: string;
  readonly reason?: string;
  readonly details?: { readonly causes: readonly StatusCause[] };
  readonly code?: number;
}

/** What the kubelet writes on the error channel when the command exited 0. */
export function successStatus(): KubeStatus {
  return { metadata: {}, status: 'Success' };
}

/**
 * The error-channel Status for a non-zero exit. `message` differs by path: the kubelet
 * (SPDY) wraps the runtime's error, the apiserver's stream translator (WebSocket) wraps the
 * SPDY client's "command terminated with exit code N".
 */
export function nonZeroExitStatus(exitCode: number, message: string): KubeStatus {
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: ${message}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** apierrors.NewInternalError(err) without TypeMeta, as the error channel carries it. */
export function internalErrorStatus(error: string): KubeStatus {
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${error}`,
    reason: 'InternalError',
    details: { causes: [{ message: error }] },
    code: 500,
  };
}

/** apierrors.NewBadRequest as the apiserver's responder writes it (with TypeMeta). */
export function badRequestStatus(message: string): KubeStatus {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: 'BadRequest',
    code: 400,
  };
}

const REASON_PHRASES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/**
 * Answers an upgrade request that will not be upgraded, then closes the socket: the
 * connection is never reused after a refused upgrade (the CVE-2018-1002105 lesson applies to
 * servers too: no second request on that socket).
 */
export function refuseUpgrade(
  socket: Duplex,
  code: number,
  body: KubeStatus | string,
  extraHeaders: Readonly<Record<string, string>> = {},
): void {
  const json = typeof body !== 'string';
  const text = json ? JSON.stringify(body) : `${body}\n`;
  const head = [
    `HTTP/1.1 ${code} ${REASON_PHRASES[code] ?? 'Error'}`,
    `Content-Type: ${json ? 'application/json' : 'text/plain; charset=utf-8'}`,
    `Content-Length: ${Buffer.byteLength(text)}`,
    'Connection: close',
    ...Object.entries(extraHeaders).map(([name, value]) => `${name}: ${value}`),
  ];
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`${head.join('\r\n')}\r\n\r\n${text}`);
  // A client that keeps the socket open after the answer must not pin it forever.
  setTimeout(() => socket.destroy(), 5_000).unref();
}

/** What a Status answer needs of ServerResponse and Http2ServerResponse alike. */
export interface StatusResponse {
  writeHead(statusCode: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
}

/** Answers a plain (non-upgrade) request with a Status body. */
export function respondStatus(res: StatusResponse, status: KubeStatus): void {
  res.writeHead(status.code ?? 500, { 'content-type': 'application/json' });
  res.end(JSON.stringify(status));
}
