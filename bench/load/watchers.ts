/**
 * Many concurrent watches (a child on the load core): `watches` HTTP/2 streams spread over
 * connections of `streamsPerConnection` each, all watching the pods of one namespace. Events
 * are counted by their terminating newline. After `go`, it reports when `expected` events
 * have arrived (or `timeoutMs` passed).
 */
import { getHeaderBlock, H2Connection } from './h2-connection.js';
import { childMain, type FromChild, nextMessage } from './ipc.js';
import { type ClientIdentity, LOAD_HOST, tlsOptions } from './tls-client.js';

export interface WatchersConfig {
  readonly identity: ClientIdentity;
  readonly path: string;
  readonly watches: number;
  readonly streamsPerConnection: number;
}

export interface WatchersResult {
  readonly events: number;
  readonly seconds: number;
  readonly streamsOpen: number;
  readonly streamsEnded: number;
  readonly generatorCpuSeconds: number;
}

async function run(config: WatchersConfig, send: (msg: FromChild<unknown>) => void) {
  const options = tlsOptions(config.identity, 'h2');
  const block = getHeaderBlock(config.path, `${LOAD_HOST}:${config.identity.port}`);
  let events = 0;
  let ok = 0;
  let ended = 0;
  let lastEventAt = 0;
  let onEvent: (() => void) | null = null;
  const connections: H2Connection[] = [];
  let remaining = config.watches;
  let allOpen!: () => void;
  const opened = new Promise<void>((r) => {
    allOpen = r;
  });
  while (remaining > 0) {
    const streams = Math.min(remaining, config.streamsPerConnection);
    remaining -= streams;
    connections.push(
      new H2Connection(options, {
        onReady(c) {
          for (let i = 0; i < streams; i++) c.request(block);
          c.flush();
        },
        onHeaders(_id, status) {
          if (status === 200 && ++ok === config.watches) allOpen();
        },
        onData(_id, payload) {
          let at = payload.indexOf(10);
          while (at >= 0) {
            events++;
            at = payload.indexOf(10, at + 1);
          }
          lastEventAt = performance.now();
          onEvent?.();
        },
        onEnd() {
          ended++;
        },
        onReadDone() {},
        onClose() {},
      }),
    );
  }
  await opened;
  // Let the initial ADDED events of every watch arrive before counting.
  await new Promise((r) => setTimeout(r, 500));
  const go = nextMessage<WatchersConfig>('command');
  send({ type: 'ready', info: { open: ok } });
  const command = await go;
  const { expected, timeoutMs } = (command.type === 'command' ? command.args : {}) as {
    expected: number;
    timeoutMs: number;
  };
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  events = 0;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    onEvent = () => {
      if (events >= expected) {
        clearTimeout(timer);
        resolve();
      }
    };
  });
  onEvent = null;
  const cpu = process.cpuUsage(cpuBefore);
  const result: WatchersResult = {
    events,
    seconds: (Math.max(lastEventAt, startedAt) - startedAt) / 1000,
    streamsOpen: ok - ended,
    streamsEnded: ended,
    generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  send({ type: 'done', result });
  for (const c of connections) c.close();
}

childMain<WatchersConfig>(run);
