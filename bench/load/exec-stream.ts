/**
 * Upgrade byte throughput (a child on the load core), `parallel` sessions at once:
 * - exec: kubectl-style exec sessions (WebSocket, v5.channel.k8s.io, client certificate)
 *   each running `head -c BYTES /dev/zero` in the fake pod; counts the stdout bytes;
 * - port-forward: kubectl-style port-forward over SPDY/3.1, each sending BYTES to the fake's
 *   echo server and counting what comes back (every byte crosses the proxy twice).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { childMain, type FromChild, nextMessage } from './ipc.js';
import { openPortForward } from './port-forward.js';
import { type ClientIdentity, LOAD_HOST } from './tls-client.js';

export interface ExecStreamConfig {
  readonly mode: 'exec' | 'port-forward';
  readonly identity: ClientIdentity;
  readonly podPath: string;
  readonly bytesPerSession: number;
  readonly parallel: number;
}

export interface ExecStreamResult {
  readonly bytes: number;
  readonly seconds: number;
  readonly failed: number;
  /** Why sessions failed (the first few distinct reasons). */
  readonly errors: readonly string[];
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
  const errors: string[] = [];
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
  /** Writes BYTES in 64 KB DATA frames and counts the echo (not kept). */
  const forwardSession = async () => {
    let got = 0;
    try {
      const { socket, spdy } = await openPortForward({
        port: config.identity.port,
        podPath: config.podPath,
        tls,
      });
      const headers = { port: '8080', requestid: '0' };
      await spdy.open({ streamtype: 'error', ...headers }, true);
      const data = await spdy.open({ streamtype: 'data', ...headers });
      data.discard = true;
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      for (let sent = 0; sent < config.bytesPerSession; sent += chunk.length) {
        data.write(chunk.subarray(0, Math.min(chunk.length, config.bytesPerSession - sent)));
        // The test client does no SPDY flow control: the socket's own backpressure bounds it.
        if (socket.writableNeedDrain) await once(socket, 'drain');
      }
      await data.whenReceived(config.bytesPerSession, 120_000);
      got = data.receivedBytes;
      spdy.close();
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\r\n')[0] : String(err);
      if (errors.length < 3 && !errors.includes(why as string)) errors.push(why as string);
    }
    bytes += got;
    if (got < config.bytesPerSession) failed++;
  };
  await Promise.all(
    Array.from({ length: config.parallel }, config.mode === 'exec' ? session : forwardSession),
  );
  const cpu = process.cpuUsage(cpuBefore);
  const result: ExecStreamResult = {
    bytes,
    seconds: (performance.now() - started) / 1000,
    failed,
    errors,
    generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  send({ type: 'done', result });
}

childMain<ExecStreamConfig>(run);
