/**
 * The admin listener (--metrics-listen), separate from the client port: /metrics for
 * Prometheus, /healthz (the process is alive), /readyz (a revocation snapshot is in force and
 * the apiserver answered recently; otherwise 503 with the reason).
 */
import type { Server } from 'node:http';
import type { HostPort } from '../config/config.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { createServer } from '../node-http.js';

export interface Readiness {
  /** null when ready, else why not. */
  check(): Promise<string | null>;
}

export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export class AdminServer {
  private readonly server: Server;

  constructor(
    private readonly address: HostPort,
    metricsSource: MetricsSource,
    readiness: Readiness,
    log: Logger,
  ) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const reply = (code: number, type: string, body: string) => {
        res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        reply(405, 'text/plain', 'method not allowed\n');
        return;
      }
      if (path === '/metrics') {
        metricsSource.metrics().then(
          (body) => reply(200, metricsSource.contentType, body),
          (err) => {
            log.error({ err: errorMessage(err) }, 'collecting metrics failed');
            reply(500, 'text/plain', `collecting metrics failed: ${errorMessage(err)}\n`);
          },
        );
      } else if (path === '/healthz' || path === '/livez') {
        reply(200, 'text/plain', 'ok\n');
      } else if (path === '/readyz') {
        readiness.check().then(
          (problem) =>
            problem === null
              ? reply(200, 'text/plain', 'ok\n')
              : reply(503, 'text/plain', `not ready: ${problem}\n`),
          (err) => reply(503, 'text/plain', `not ready: ${errorMessage(err)}\n`),
        );
      } else {
        reply(404, 'text/plain', 'not found: try /metrics, /healthz, /readyz\n');
      }
    });
  }

  listen(): Promise<HostPort> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.address.port, this.address.host, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        if (address === null || typeof address === 'string')
          throw new Error('admin listener has no address');
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
