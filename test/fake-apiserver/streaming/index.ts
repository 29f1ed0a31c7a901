/**
 * Placeholder until the streaming half lands: every pod subresource answers 404.
 * Replace with the real exec/attach/port-forward/logs implementation (same export).
 */
import type { StreamingHandlers } from '../types.js';

export function createStreamingHandlers(): StreamingHandlers {
  const notFound = JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'the fake apiserver does not serve this subresource yet',
    reason: 'NotFound',
    code: 404,
  });
  return {
    handleUpgrade(_req, socket) {
      socket.end(
        `HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(notFound)}\r\nConnection: close\r\n\r\n${notFound}`,
      );
    },
    handleRequest(_req, res) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(notFound);
    },
    async close() {},
  };
}
