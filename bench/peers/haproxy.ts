/**
 * HAProxy from Debian with the seed's configuration: TLS with `verify optional` against the
 * client CA and its CRL, identity from the certificate's CN and O, client-supplied X-Remote-*
 * removed, upstream over mTLS with the front-proxy-client certificate. One thread, pinned to
 * the proxy core, foreground (-db) so its PID is the one measured.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROXY_CORE, pinnedCommand } from '../support/cores.js';
import type { BenchPki } from '../support/pki.js';
import { freePort, LOOPBACK, waitForPort } from '../support/ports.js';
import { removeDir, stopChild, trackChild, trackDir } from '../support/processes.js';
import type { ProxyPeer } from './types.js';

export interface HaproxyOptions {
  /** The upstream's port on loopback. */
  readonly upstreamPort: number;
  /** Connections HAProxy accepts (global and frontend maxconn). */
  readonly maxconn?: number;
}

export function haproxyConfig(pki: BenchPki, port: number, options: HaproxyOptions): string {
  const maxconn = options.maxconn ?? 4000;
  const files = pki.test.files;
  return `global
  nbthread 1
  maxconn ${maxconn}
  log stderr format raw local0 err

defaults
  mode http
  log global
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout tunnel 1h
  timeout http-keep-alive 600s

frontend kube-apiserver
  bind ${LOOPBACK}:${port} ssl crt ${pki.haproxyServingPem} ca-file ${files.clientCa} verify optional crl-file ${files.crl} alpn h2,http/1.1
  maxconn ${maxconn}
  http-request del-header X-Remote-User
  http-request del-header X-Remote-Group
  http-request del-header X-Remote-Uid
  http-request del-header ^X-Remote-Extra- -m reg
  http-request set-header X-Remote-User %[ssl_c_s_dn(cn)] if { ssl_c_used }
  http-request set-header X-Remote-Group %[ssl_c_s_dn(o)] if { ssl_c_used }
  default_backend apiserver

backend apiserver
  server apiserver ${LOOPBACK}:${options.upstreamPort} ssl verify required ca-file ${files.upstreamCa} crt ${pki.frontProxyClientPem} alpn h2,http/1.1
`;
}

export async function startHaproxy(
  pki: BenchPki,
  options: HaproxyOptions,
): Promise<ProxyPeer & { readonly configFile: string }> {
  const dir = trackDir(mkdtempSync(join(tmpdir(), 'kcp-bench-haproxy-')));
  const port = await freePort();
  const configFile = join(dir, 'haproxy.cfg');
  writeFileSync(configFile, haproxyConfig(pki, port, options));
  const [command, args] = pinnedCommand(PROXY_CORE, 'haproxy', ['-db', '-f', configFile]);
  let output = '';
  const child = trackChild(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const collect = (d: Buffer) => {
    output += d;
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const failed = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`haproxy exited with ${code}: ${output}`))),
  );
  await Promise.race([waitForPort(port), failed]);
  failed.catch(() => {});
  return {
    name: 'haproxy',
    port,
    pid: child.pid as number,
    client: pki.user,
    configFile,
    async stop() {
      await stopChild(child);
      removeDir(dir);
    },
  };
}
