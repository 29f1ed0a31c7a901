/**
 * The throughput upstream: nginx doing mTLS (only the front-proxy CA's certificates get in)
 * and answering a small kube-like JSON object from memory, so it is never the bottleneck.
 * One process (no master), on the load core.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchPki } from '../support/pki.js';
import { freePort, LOOPBACK, waitForPort } from '../support/ports.js';
import { removeDir, stopChild, trackChild, trackDir } from '../support/processes.js';
import type { Upstream } from './types.js';

/** What `GET /api/v1/namespaces/default` returns on a real cluster, trimmed. */
export const NAMESPACE_JSON =
  '{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"default","uid":"5b8f1c2e-1d2a-4c57-9f0e-3c1e2f7a9b10","resourceVersion":"42","creationTimestamp":"2026-01-01T00:00:00Z","labels":{"kubernetes.io/metadata.name":"default"}},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}';

/** The path the load requests. `/whoami` answers the identity headers (sanity check only). */
export const LOAD_PATH = '/api/v1/namespaces/default';
export const WHOAMI_PATH = '/whoami';

export async function startNginxUpstream(pki: BenchPki): Promise<Upstream & { pid: number }> {
  const dir = trackDir(mkdtempSync(join(tmpdir(), 'kcp-bench-nginx-')));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  // 1.22 has no `http2 on;` (1.25.1+): http2 is a parameter of `listen`.
  const conf = `
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} warn;
events { worker_connections 19000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_requests 10000000;
  keepalive_timeout 600s;
  http2_max_concurrent_streams 250;
  server {
    listen ${LOOPBACK}:${port} ssl http2 backlog=4096;
    ssl_certificate ${pki.upstreamCertFile};
    ssl_certificate_key ${pki.upstreamKeyFile};
    ssl_client_certificate ${pki.frontProxyCaFile};
    ssl_verify_client on;
    ssl_session_cache shared:SSL:10m;
    ssl_protocols TLSv1.2 TLSv1.3;
    default_type application/json;
    location = ${WHOAMI_PATH} {
      return 200 '{"user":"$http_x_remote_user","group":"$http_x_remote_group","client":"$ssl_client_s_dn"}';
    }
    location / {
      return 200 '${NAMESPACE_JSON}';
    }
  }
}
`;
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  let stderr = '';
  const child = trackChild(
    spawn('nginx', ['-p', dir, '-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] }),
  );
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d;
  });
  const failed = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`nginx exited with ${code}: ${stderr}`))),
  );
  await Promise.race([waitForPort(port), failed]);
  failed.catch(() => {});
  return {
    port,
    url: `https://${LOOPBACK}:${port}`,
    pid: child.pid as number,
    directClient: pki.frontProxyClient,
    async stop() {
      await stopChild(child);
      removeDir(dir);
    },
  };
}
