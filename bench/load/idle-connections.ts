/**
 * Idle client connections (a child on the load core): `count` TLS connections with a client
 * certificate (ALPN http/1.1), opened `parallel` at a time, then held open without a request
 * until the suite says `exit`. The key exchange groups offered are the runtime's default
 * unless `groups` names them (OpenSSL's list syntax, e.g. `X25519`).
 */
import type { TLSSocket } from 'node:tls';
import { childMain, type FromChild } from './ipc.js';
import { type ClientIdentity, openTls, tlsOptions } from './tls-client.js';

export interface IdleConfig {
  readonly identity: ClientIdentity;
  readonly count: number;
  readonly parallel: number;
  readonly groups?: string;
}

export interface IdleInfo {
  readonly open: number;
  readonly failed: number;
  readonly seconds: number;
}

async function run(config: IdleConfig, send: (msg: FromChild<unknown>) => void) {
  const options = {
    ...tlsOptions(config.identity, 'http/1.1'),
    ...(config.groups === undefined ? {} : { ecdhCurve: config.groups }),
  };
  const sockets: TLSSocket[] = [];
  let failed = 0;
  let next = 0;
  const started = performance.now();
  const openOne = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = openTls(options);
      socket.once('secureConnect', () => {
        sockets.push(socket);
        resolve();
      });
      socket.once('error', () => {
        failed++;
        resolve();
      });
    });
  const worker = async () => {
    while (next < config.count) {
      next++;
      await openOne();
    }
  };
  await Promise.all(Array.from({ length: config.parallel }, worker));
  const open = sockets.filter((s) => !s.destroyed).length;
  const info: IdleInfo = { open, failed, seconds: (performance.now() - started) / 1000 };
  send({ type: 'ready', info });
}

childMain<IdleConfig>(run);
