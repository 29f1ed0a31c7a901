/**
 * Exec byte throughput (a child on the load core): `parallel` kubectl-style exec sessions
 * (WebSocket, v5.channel.k8s.io, client certificate) each running `head -c BYTES /dev/zero`
 * in the fake pod; counts the stdout bytes that arrive until every session closes.
 */
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { childMain, type FromChild, nextMessage } from './ipc.js';
import { type ClientIdentity, LOAD_HOST } from './tls-client.js';

export interface ExecStreamConfig {
  readonly identity: ClientIdentity;
  readonly podPath: string;
  readonly bytesPerSession: number;
  readonly parallel: number;
}

export interface ExecStreamResult {
  readonly bytes: number;
  readonly seconds: number;
  readonly failed: number;
  readonly generatorCpuSeconds: number;
}

const STDOUT = 1;

async function run(config: ExecStreamConfig, send: (msg: FromChild<unknown>) => void) {
  const tls = {
    cert: readFileSync(config.identity.certFile),
    key: readFileSync(config.identity.keyFile),
    ca: readFileSync(config.identity.caFile),
  };
  const query = ['head', '-c', String(config.bytesPerSession), '/dev/zero']
    .map((c) => `command=${encodeURIComponent(c)}`)
    .join('&');
  const url = `wss://${LOAD_HOST}:${config.identity.port}${config.podPath}/exec?${query}&stdout=true&stderr=true`;
  const go = nextMessage<ExecStreamConfig>('go');
  send({ type: 'ready' });
  await go;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let bytes = 0;
  let failed = 0;
  const session = () =>
    new Promise<void>((resolve) => {
      const ws = new WebSocket(url, ['v5.channel.k8s.io'], { ...tls, perMessageDeflate: false });
      let got = 0;
      ws.on('message', (data: Buffer) => {
        if (data[0] === STDOUT) got += data.length - 1;
      });
      ws.on('error', () => {});
      ws.on('close', () => {
        bytes += got;
        if (got < config.bytesPerSession) failed++;
        resolve();
      });
    });
  await Promise.all(Array.from({ length: config.parallel }, session));
  const cpu = process.cpuUsage(cpuBefore);
  const result: ExecStreamResult = {
    bytes,
    seconds: (performance.now() - started) / 1000,
    failed,
    generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  send({ type: 'done', result });
}

childMain<ExecStreamConfig>(run);
