/**
 * The fake kube-apiserver in its own process on the load core (so its CPU stays out of the
 * suite's and the proxy's): x509 client authentication with the cluster CA (the direct path)
 * and requestheader authentication with the front-proxy CA (the proxies). Commands over IPC
 * change pods, which every matching watch receives as an event.
 */
import { readFileSync } from 'node:fs';
import { startFakeApiserver } from '../../test/fake-apiserver/index.js';
import { childMain, type FromChild, type ToChild } from '../load/ipc.js';

export interface FakeApiserverConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile: string;
  readonly frontProxyCaFile: string;
  readonly namespace: string;
  readonly pods: number;
}

export interface BurstArgs {
  readonly updates: number;
}

async function run(config: FakeApiserverConfig, send: (msg: FromChild<unknown>) => void) {
  const server = await startFakeApiserver({
    tls: { cert: readFileSync(config.certFile, 'utf8'), key: readFileSync(config.keyFile, 'utf8') },
    clientCA: readFileSync(config.clientCaFile, 'utf8'),
    requestheader: { clientCA: readFileSync(config.frontProxyCaFile, 'utf8') },
  });
  for (let i = 0; i < config.pods; i++)
    server.addPod(`pod-${i}`, { namespace: config.namespace, phase: 'Running' });
  const phases = new Map<string, string>();
  process.on('message', async (msg: ToChild<FakeApiserverConfig>) => {
    if (msg.type !== 'command') return;
    if (msg.name === 'burst') {
      const { updates } = msg.args as BurstArgs;
      const started = performance.now();
      for (let i = 0; i < updates; i++) {
        // Every update flips a phase, so every one is a real change and an event.
        const pod = `pod-${i % config.pods}`;
        const phase = phases.get(pod) === 'Pending' ? 'Running' : 'Pending';
        phases.set(pod, phase);
        server.setPodPhase(pod, phase, config.namespace);
        // Let the writes of this event go out before the next one is made.
        await new Promise((r) => setImmediate(r));
      }
      send({ type: 'reply', name: 'burst', value: (performance.now() - started) / 1000 });
    }
  });
  process.once('disconnect', () => {
    server.close().finally(() => process.exit(0));
  });
  send({ type: 'ready', info: { port: server.port } });
}

childMain<FakeApiserverConfig>(run, 60 * 60_000);
