/**
 * Kubernetes Status bodies for the answers the proxy gives itself (rejections, upstream
 * failures), shaped as kube-apiserver writes them so kubectl prints their message.
 */
import { STATUS_CODES } from '../node-http.js';
export type StatusReason =
  | 'Unauthorized'
  | 'ServiceUnavailable'
  | 'BadRequest'
  | 'BadGateway'
  | 'InternalError'
  | 'Timeout';

export interface StatusResponse {
  readonly code: number;
  /** The Status's message (also in the body), for the places that carry only text. */
  readonly message: string;
  readonly body: string;
}

/**
 * A metav1.Status failure with its fields in the order kube-apiserver writes them; `details`
 * only when given.
 */
export function failureStatus<Details extends object>(
  code: number,
  reason: string,
  message: string,
  details?: Details,
) {
  return {
    kind: 'Status' as const,
    apiVersion: 'v1' as const,
    metadata: {} as Record<string, never>,
    status: 'Failure' as const,
    message,
    reason,
    ...(details === undefined ? {} : { details }),
    code,
  };
}

export function statusResponse(
  code: number,
  reason: StatusReason,
  message: string,
): StatusResponse {
  return { code, message, body: JSON.stringify(failureStatus(code, reason, message)) };
}

export function unauthorized(message: string): StatusResponse {
  return statusResponse(401, 'Unauthorized', message);
}

export function upstreamUnavailable(detail: string): StatusResponse {
  return statusResponse(
    503,
    'ServiceUnavailable',
    `kube-crl-proxy: the apiserver is unavailable: ${detail}`,
  );
}

export function badGateway(detail: string): StatusResponse {
  return statusResponse(502, 'BadGateway', `kube-crl-proxy: ${detail}`);
}

export function badRequest(detail: string): StatusResponse {
  return statusResponse(400, 'BadRequest', `kube-crl-proxy: ${detail}`);
}

/** A Status as a whole HTTP/1.1 response, for the paths that write raw bytes. */
export function rawStatusResponse(status: StatusResponse, close: boolean): string {
  return (
    `HTTP/1.1 ${status.code} ${STATUS_CODES[status.code] ?? 'Error'}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(status.body)}\r\n` +
    `${close ? 'Connection: close\r\n' : ''}\r\n${status.body}`
  );
}
