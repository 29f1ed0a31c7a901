/**
 * The fake kube-apiserver in its own process on the load core (so its CPU stays out of the
 * suite's and the proxy's): x509 client authentication with the cluster CA (the direct path)
 * and requestheader authentication with the front-proxy CA (the proxies). Commands over IPC
 * change pods, which every matching watch receives as an event.
 */
import { readFileSync } from 'node:fs';
import {
  type FakeApiserver,
  type RecordedRequest,
  startFakeApiserver,
} from '../../src/demo/fake-apiserver/index.js';
import { childMain, type FromChild, type ToChild } from '../load/ipc.js';

export interface FakeApiserverConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile: string;
  readonly frontProxyCaFile: string;
  readonly namespace: string;
  readonly pods: number;
  /** A Running pod no change ever touches (exec and port-forward need a Running pod). */
  readonly streamPod?: string;
  /** Keep only the newest N recorded requests (long runs); `audit` has seen every one. */
  readonly maxRecordedRequests?: number;
}

export interface BurstArgs {
  readonly updates: number;
}

/** Pod changes per second from now on (0 stops); the reply is the changes made so far. */
export interface SteadyArgs {
  readonly perSecond: number;
}

/**
 * What the fake received, tallied from every recorded request. Requests tagged
 * `soak-probe=<kind>` in the query are the soak's new-connection probes; `cn=<name>` is the
 * identity a good probe presented.
 */
export interface FakeAudit {
  readonly requests: number;
  /** Requests per authenticated username. */
  readonly byUser: Readonly<Record<string, number>>;
  /** Probe requests per kind (a `revoked` or `unknown` one must never arrive). */
  readonly probes: Readonly<Record<string, number>>;
  /** Good probes that arrived under another username than their certificate's CN. */
  readonly probeIdentityMismatches: number;
  /** Anonymous probes that arrived with an identity (a user or an X-Remote-* header). */
  readonly anonymousWithIdentity: number;
}

/** Tallies requests as they are recorded (polled: the recorded list may be trimmed). */
class RequestAudit {
  private lastId = 0;
  private requests = 0;
  private readonly byUser: Record<string, number> = {};
  private readonly probes: Record<string, number> = {};
  private probeIdentityMismatches = 0;
  private anonymousWithIdentity = 0;

  constructor(private readonly server: FakeApiserver) {}

  poll(): void {
    const list = this.server.requests;
    let first = list.length;
    while (first > 0 && (list[first - 1]?.id ?? 0) > this.lastId) first--;
    for (let i = first; i < list.length; i++) this.count(list[i] as RecordedRequest);
  }

  private count(r: RecordedRequest): void {
    this.lastId = r.id;
    this.requests++;
    const user = r.user?.username ?? '(unauthenticated)';
    this.byUser[user] = (this.byUser[user] ?? 0) + 1;
    const query = new URLSearchParams(r.query);
    const probe = query.get('soak-probe');
    if (probe === null) return;
    this.probes[probe] = (this.probes[probe] ?? 0) + 1;
    if (probe === 'good' && user !== query.get('cn')) this.probeIdentityMismatches++;
    if (
      probe === 'anonymous' &&
      (user !== 'system:anonymous' || r.rawHeaders.some(([name]) => name.startsWith('x-remote-')))
    )
      this.anonymousWithIdentity++;
  }

  result(): FakeAudit {
    this.poll();
    return {
      requests: this.requests,
      byUser: { ...this.byUser },
      probes: { ...this.probes },
      probeIdentityMismatches: this.probeIdentityMismatches,
      anonymousWithIdentity: this.anonymousWithIdentity,
    };
  }
}

async function run(config: FakeApiserverConfig, send: (msg: FromChild<unknown>) => void) {
  const server = await startFakeApiserver({
    tls: { cert: readFileSync(config.certFile, 'utf8'), key: readFileSync(config.keyFile, 'utf8') },
    clientCA: readFileSync(config.clientCaFile, 'utf8'),
    requestheader: { clientCA: readFileSync(config.frontProxyCaFile, 'utf8') },
    ...(config.maxRecordedRequests === undefined
      ? {}
      : { maxRecordedRequests: config.maxRecordedRequests }),
  });
  const audit = new RequestAudit(server);
  const auditTimer = setInterval(() => audit.poll(), 100);
  for (let i = 0; i < config.pods; i++)
    server.addPod(`pod-${i}`, { namespace: config.namespace, phase: 'Running' });
  if (config.streamPod !== undefined)
    server.addPod(config.streamPod, { namespace: config.namespace, phase: 'Running' });
  const phases = new Map<string, string>();
  let changes = 0;
  let next = 0;
  // Every change flips a phase, so every one is a real change and an event.
  const change = () => {
    const pod = `pod-${next++ % config.pods}`;
    const phase = phases.get(pod) === 'Pending' ? 'Running' : 'Pending';
    phases.set(pod, phase);
    server.setPodPhase(pod, phase, config.namespace);
    changes++;
  };
  let steady: NodeJS.Timeout | null = null;
  process.on('message', async (msg: ToChild<FakeApiserverConfig>) => {
    if (msg.type !== 'command') return;
    if (msg.name === 'burst') {
      const { updates } = msg.args as BurstArgs;
      const started = performance.now();
      for (let i = 0; i < updates; i++) {
        change();
        // Let the writes of this event go out before the next one is made.
        await new Promise((r) => setImmediate(r));
      }
      send({ type: 'reply', name: 'burst', value: (performance.now() - started) / 1000 });
    } else if (msg.name === 'steady') {
      const { perSecond } = msg.args as SteadyArgs;
      if (steady !== null) clearInterval(steady);
      steady = perSecond > 0 ? setInterval(change, 1000 / perSecond) : null;
      send({ type: 'reply', name: 'steady', value: changes });
    } else if (msg.name === 'audit') {
      send({ type: 'reply', name: 'audit', value: audit.result() });
    }
  });
  process.once('disconnect', () => {
    clearInterval(auditTimer);
    if (steady !== null) clearInterval(steady);
    server.close().finally(() => process.exit(0));
  });
  send({ type: 'ready', info: { port: server.port } });
}

childMain<FakeApiserverConfig>(run, 60 * 60_000);
