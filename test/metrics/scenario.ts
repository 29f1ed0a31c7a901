/**
 * The world the metrics tests and the dashboard render look at: the real proxy binary in front
 * of the fake kube-apiserver, three client CAs in the bundle (CRLs due in 5½ days, 30 days and
 * one already past nextUpdate), and a load of good, revoked, unknown-CA, expired, no-cert and
 * broken clients over HTTP/1.1 and HTTP/2, with the operational events the dashboard exists
 * for: a revoked user's open connection cut, failed reloads, a refused input held for a while
 * (the front-proxy-client certificate renewed before its key), an apiserver outage and exec
 * tunnels. The serving certificate expires in SERVING_DAYS_LEFT days.
 */
import { randomBytes } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { Agent, request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { connect as tlsConnect } from 'node:tls';
import { type FakeApiserver, startFakeApiserver } from '../../src/demo/fake-apiserver/index.js';
import { Authority, crlPem, type IssuedCert } from '../../src/demo/pki-factory.js';
import { atomicWrite, makePki, proxyArgs, type TestPki } from '../support/pki.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';

const DAY_MS = 86_400_000;
/** The serving certificate's lifetime left: inside the 30-day warning of its expiry alert. */
export const SERVING_DAYS_LEFT = 20;
const CLIENT_TIMEOUT_MS = 5_000;
const PODS = '/api/v1/namespaces/default/pods';
/** Far above what the load keeps open (a dozen), low enough for a flood to reach. */
export const MAX_CONNECTIONS = 64;

export type ClientKind =
  | 'good-h1'
  | 'good-h1-keepalive'
  | 'good-h2'
  | 'no-cert'
  | 'revoked'
  | 'unknown-ca'
  | 'expired-cert'
  | 'crl-expired'
  | 'tls-garbage';

export const CLIENT_KINDS: readonly ClientKind[] = [
  'good-h1',
  'good-h1-keepalive',
  'good-h2',
  'no-cert',
  'revoked',
  'unknown-ca',
  'expired-cert',
  'crl-expired',
  'tls-garbage',
];

export type Mix = Partial<Record<ClientKind, number>>;

export type LoadEvent =
  | { readonly kind: 'cut-revoked-connection' }
  | { readonly kind: 'failed-reload' }
  | { readonly kind: 'apiserver-outage'; readonly ms: number }
  | { readonly kind: 'exec'; readonly holdMs: number }
  /**
   * The front-proxy-client certificate renewed while its key file stays the old one (kubeadm
   * certs renew and a stale key copy): the input is refused for holdMs, then the key follows.
   */
  | { readonly kind: 'refused-input'; readonly holdMs: number }
  /** More idle TCP connections than --max-connections allows, held for holdMs. */
  | { readonly kind: 'connection-flood'; readonly connections: number; readonly holdMs: number };

export interface LoadPlan {
  readonly durationMs: number;
  readonly workers: number;
  /** Pause of each worker between two clients, by progress (0..1) through the run. */
  readonly pauseMs: (progress: number) => number;
  readonly mix: (progress: number) => Mix;
  /** Run one after another, each at its fraction of the run. */
  readonly events: readonly { readonly at: number; readonly event: LoadEvent }[];
}

export interface LoadReport {
  readonly startedAt: number;
  readonly endedAt: number;
  /** Per client kind: attempts, and what came back ('200', '401', 'error', ...). */
  readonly clients: Record<ClientKind, { attempts: number; outcomes: Record<string, number> }>;
  readonly cutConnections: number;
  readonly failedReloads: number;
  /** Times the front-proxy-client input was seen refused, then accepted again. */
  readonly refusedInputs: number;
  readonly outages: number;
  /** Exec requests answered 101 by the apiserver through the proxy. */
  readonly upgrades: number;
  /** Flood connections the proxy closed at once (over --max-connections). */
  readonly dropped: number;
  readonly execRefusals: string[];
}

interface Credential {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface World {
  readonly pki: TestPki;
  readonly proxy: ProxyProcess;
  /** host:port of the proxy's admin listener (the Prometheus target). */
  readonly adminTarget: string;
  close(): Promise<void>;
}

interface WorldState {
  readonly world: World;
  readonly ca: string;
  readonly users: Record<'alice' | 'bob' | 'mallory' | 'eve' | 'old' | 'legacy', Credential>;
  readonly revoked: string[];
  crlNumber: number;
  readonly clusterNextUpdate: Date;
  readonly keepAlive: Agent;
  /** The apiserver now (replaced by an outage). */
  readonly upstream: { current: FakeApiserver };
  readonly startFake: (port?: number) => Promise<FakeApiserver>;
}

const states = new WeakMap<World, WorldState>();
/** The tail of each proxy's stderr, for the error when it dies under the load. */
const proxyStderr = new WeakMap<ProxyProcess, string>();

export async function startWorld(): Promise<World> {
  const pki = await makePki();
  const cleanups: (() => Promise<void> | void)[] = [() => pki.cleanup()];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await step();
  };
  try {
    const now = Date.now();
    const [opsCa, legacyCa, rogueCa] = await Promise.all([
      Authority.create({ commonName: 'ops-users-ca' }),
      Authority.create({ commonName: 'legacy-ca' }),
      Authority.create({ commonName: 'rogue-ca' }),
    ]);
    const [alice, bob, mallory, eve, old, legacy] = await Promise.all([
      pki.user('alice', ['developers']),
      opsCa.issue({ commonName: 'bob', organizations: ['sre'] }),
      pki.user('mallory', ['developers']),
      rogueCa.issue({ commonName: 'eve', organizations: ['system:masters'] }),
      pki.user('old-laptop', ['developers'], {
        notBefore: new Date(now - 60 * DAY_MS),
        notAfter: new Date(now - DAY_MS),
      }),
      legacyCa.issue({ commonName: 'ci-bot', organizations: ['ci'] }),
    ]);
    const clusterNextUpdate = new Date(now + 5.5 * DAY_MS);
    pki.writeCrl({
      revoked: [{ serial: mallory.serial }],
      crlNumber: 2,
      nextUpdate: clusterNextUpdate,
    });
    const opsRevoked = ['1001', '1002', '1003', '1004'].map((serial) => ({ serial }));
    const opsCrl = pki.write(
      'ops-users.crl',
      crlPem(opsCa.crl({ revoked: opsRevoked, nextUpdate: new Date(now + 30 * DAY_MS) })),
    );
    const legacyCrl = pki.write(
      'legacy.crl',
      crlPem(
        legacyCa.crl({
          thisUpdate: new Date(now - 8 * DAY_MS),
          nextUpdate: new Date(now - 2 * 3_600_000),
        }),
      ),
    );
    const bundle = pki.write(
      'client-ca-bundle.crt',
      pki.clusterCa.certPem + opsCa.certPem + legacyCa.certPem,
    );

    const startFake = (port?: number) =>
      startFakeApiserver({
        ...(port === undefined ? {} : { port }),
        tls: { cert: pki.apiserver.certPem, key: pki.apiserver.keyPem },
        clientCA: pki.clusterCa.certPem,
        requestheader: { clientCA: pki.frontProxyCa.certPem },
      });
    const fake = await startFake();
    const upstream = { current: fake };
    cleanups.push(() => upstream.current.close());
    const serving = await pki.clusterCa.issue({
      commonName: 'kube-crl-proxy',
      usage: 'server',
      ipAddresses: ['127.0.0.1', '::1'],
      dnsNames: ['localhost'],
      notAfter: new Date(now + SERVING_DAYS_LEFT * DAY_MS),
    });
    const args = proxyArgs(pki, fake.url, [
      `--max-connections=${MAX_CONNECTIONS}`,
      `--tls-cert-file=${pki.write('serving-renew-soon.crt', serving.certPem)}`,
      `--tls-private-key-file=${pki.write('serving-renew-soon.key', serving.keyPem)}`,
      `--client-ca-file=${bundle}`,
      `--crl-file=${pki.files.crl}`,
      `--crl-file=${opsCrl}`,
      `--crl-file=${legacyCrl}`,
      // The refused clients' requests are counted as 401s (requests_total).
      '--reject-mode=status',
    ]);
    const proxy = await startProxyProcess(args);
    proxy.child.stderr?.on('data', (chunk: Buffer) => {
      proxyStderr.set(proxy, ((proxyStderr.get(proxy) ?? '') + chunk.toString()).slice(-4000));
    });
    cleanups.push(async () => {
      await proxy.stop();
    });
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 2 });
    cleanups.push(() => keepAlive.destroy());

    const world: World = {
      pki,
      proxy,
      adminTarget: `127.0.0.1:${proxy.adminPort}`,
      close: cleanup,
    };
    const state: WorldState = {
      world,
      ca: pki.clusterCa.certPem,
      users: { alice, bob, mallory, eve, old, legacy },
      revoked: [mallory.serial],
      crlNumber: 2,
      clusterNextUpdate,
      keepAlive,
      upstream,
      startFake,
    };
    states.set(world, state);
    return world;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function stateOf(world: World): WorldState {
  const state = states.get(world);
  if (state === undefined) throw new Error('not a world from startWorld()');
  return state;
}

/** One HTTP/1.1 request; a new connection unless an agent is given. */
function h1Get(
  state: WorldState,
  credential: Credential | null,
  path: string,
  agent: Agent | false = false,
): Promise<string> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: state.world.proxy.port,
        path,
        ca: state.ca,
        ...(credential === null ? {} : { cert: credential.certPem, key: credential.keyPem }),
        agent,
        timeout: CLIENT_TIMEOUT_MS,
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(String(res.statusCode)));
        res.once('error', () => resolve('error'));
      },
    );
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => resolve('error'));
    req.end();
  });
}

/** One HTTP/2 connection carrying `paths` concurrently; the status of the first. */
function h2Get(
  state: WorldState,
  credential: Credential,
  paths: readonly string[],
): Promise<string> {
  return new Promise((resolve) => {
    const session = http2Connect(`https://127.0.0.1:${state.world.proxy.port}`, {
      ca: state.ca,
      cert: credential.certPem,
      key: credential.keyPem,
    });
    const timer = setTimeout(() => session.destroy(), CLIENT_TIMEOUT_MS);
    session.on('error', () => {});
    session.once('close', () => {
      clearTimeout(timer);
      resolve('error');
    });
    const statuses = paths.map(
      (path) =>
        new Promise<string>((done) => {
          const stream = session.request({ ':path': path });
          stream.on('response', (headers) => {
            stream.resume();
            stream.once('end', () => done(String(headers[':status'])));
          });
          stream.on('error', () => done('error'));
          stream.once('close', () => done('error'));
          stream.end();
        }),
    );
    Promise.all(statuses).then((all) => {
      clearTimeout(timer);
      session.close();
      resolve(all[0] ?? 'error');
    });
  });
}

/** A client that does not speak TLS at all: a failed handshake on the proxy. */
function garbage(state: WorldState): Promise<string> {
  return new Promise((resolve) => {
    const socket = netConnect(state.world.proxy.port, '127.0.0.1');
    socket.setTimeout(CLIENT_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => {});
    socket.once('connect', () => socket.write('GET / HTTP/1.1\r\nHost: kubernetes\r\n\r\n'));
    socket.once('close', () => resolve('closed'));
  });
}

function runClient(state: WorldState, kind: ClientKind, n: number): Promise<string> {
  const { users } = state;
  // Mostly lists, now and then a pod that does not exist (404).
  const path = n % 9 === 0 ? `${PODS}/no-such-pod` : n % 2 === 0 ? PODS : '/api/v1/nodes';
  switch (kind) {
    case 'good-h1':
      return h1Get(state, users.alice, path);
    case 'good-h1-keepalive':
      return h1Get(state, users.bob, path, state.keepAlive);
    case 'good-h2':
      return h2Get(state, n % 2 === 0 ? users.alice : users.bob, [path, PODS, '/api/v1/nodes']);
    case 'no-cert':
      return h1Get(state, null, '/version');
    case 'revoked':
      return n % 2 === 0 ? h1Get(state, users.mallory, PODS) : h2Get(state, users.mallory, [PODS]);
    case 'unknown-ca':
      return h1Get(state, users.eve, PODS);
    case 'expired-cert':
      return h1Get(state, users.old, PODS);
    case 'crl-expired':
      return h2Get(state, users.legacy, [PODS]);
    case 'tls-garbage':
      return garbage(state);
  }
}

/** Smooth weighted round robin: a deterministic mix with the given proportions. */
class Picker {
  private readonly current = new Map<ClientKind, number>();

  next(mix: Mix): ClientKind {
    let total = 0;
    let best: ClientKind = 'good-h1';
    let bestValue = Number.NEGATIVE_INFINITY;
    for (const kind of CLIENT_KINDS) {
      const weight = mix[kind] ?? 0;
      if (weight <= 0) continue;
      total += weight;
      const value = (this.current.get(kind) ?? 0) + weight;
      this.current.set(kind, value);
      if (value > bestValue) {
        bestValue = value;
        best = kind;
      }
    }
    this.current.set(best, bestValue - total);
    return best;
  }
}

/**
 * The proxy's /metrics, on a fresh connection each time: a pooled keep-alive connection can be
 * closed by the admin listener's idle timeout just as it is reused.
 */
export function scrape(proxy: ProxyProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet(`${proxy.adminUrl}/metrics`, { agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.once('end', () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`/metrics: ${res.statusCode}`)),
      );
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.once('error', (err) => {
      const { exitCode, signalCode } = proxy.child;
      const state = exitCode ?? signalCode ?? 'running';
      const stderr = proxyStderr.get(proxy) ?? '';
      reject(
        new Error(
          `GET ${proxy.adminUrl}/metrics: ${err.message} (proxy: ${state}; stderr: ${stderr})`,
        ),
      );
    });
  });
}

/** Sum of the samples of `name` in the proxy's /metrics whose labels include `labels`. */
export async function scrapeValue(
  proxy: ProxyProcess,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  const text = await scrape(proxy);
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((pair) => line.includes(pair)))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Polls the proxy's /metrics until `name` exceeds `than`; bounded. */
async function waitForIncrease(
  proxy: ProxyProcess,
  name: string,
  labels: Readonly<Record<string, string>>,
  than: number,
): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await scrapeValue(proxy, name, labels);
    if (value > than) return value;
    if (Date.now() > deadline) throw new Error(`${name} stayed at ${value} for 10 s`);
    await delay(50);
  }
}

function reload(state: WorldState): void {
  state.world.proxy.child.kill('SIGHUP');
}

function writeClusterCrl(state: WorldState): void {
  state.crlNumber++;
  state.world.pki.writeCrl({
    revoked: state.revoked.map((serial) => ({ serial })),
    crlNumber: state.crlNumber,
    nextUpdate: state.clusterNextUpdate,
  });
}

/** A user with an open HTTP/2 connection gets revoked: the proxy must cut it. Returns cuts. */
async function cutRevokedConnection(state: WorldState, n: number): Promise<number> {
  const user: IssuedCert = await state.world.pki.user(`contractor-${n}`, ['developers']);
  const session = http2Connect(`https://127.0.0.1:${state.world.proxy.port}`, {
    ca: state.ca,
    cert: user.certPem,
    key: user.keyPem,
  });
  session.on('error', () => {});
  const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
  try {
    const status = await new Promise<string>((resolve) => {
      const stream = session.request({ ':path': PODS });
      stream.on('response', (h) => {
        stream.resume();
        resolve(String(h[':status']));
      });
      stream.on('error', () => resolve('error'));
      stream.end();
    });
    if (status !== '200') return 0;
    const { proxy } = state.world;
    const before = await scrapeValue(proxy, 'kube_crl_proxy_revoked_connections_closed_total');
    state.revoked.push(user.serial);
    writeClusterCrl(state);
    reload(state);
    const after = await waitForIncrease(
      proxy,
      'kube_crl_proxy_revoked_connections_closed_total',
      {},
      before,
    );
    const cut = await Promise.race([closed.then(() => true), delay(5_000, false)]);
    return cut ? after - before : 0;
  } finally {
    session.destroy();
  }
}

/** Polls the proxy's /metrics until `name` with `labels` equals `value`; bounded. */
async function waitForValue(
  proxy: ProxyProcess,
  name: string,
  labels: Readonly<Record<string, string>>,
  value: number,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = await scrapeValue(proxy, name, labels);
    if (now === value) return;
    if (Date.now() > deadline) throw new Error(`${name} stayed at ${now}, not ${value}, for 10 s`);
    await delay(50);
  }
}

/**
 * A renewed front-proxy-client certificate is written while the key file keeps the old key: the
 * input is refused (its last good pair still serves) for `holdMs`, then the new key is written.
 */
async function refusedInput(state: WorldState, holdMs: number): Promise<number> {
  const { proxy, pki } = state.world;
  const renewed = await pki.frontProxyCa.issue({ commonName: 'front-proxy-client' });
  const series = 'kube_crl_proxy_input_last_reload_success';
  const input = { input: 'proxy-client' };
  atomicWrite(pki.files.proxyClientCert, renewed.certPem);
  try {
    await waitForValue(proxy, series, input, 0);
    await delay(holdMs);
  } finally {
    atomicWrite(pki.files.proxyClientKey, renewed.keyPem);
  }
  await waitForValue(proxy, series, input, 1);
  return 1;
}

/** A broken CRL is published and SIGHUP sent: the reload must fail; then the file is fixed. */
async function failedReload(state: WorldState): Promise<number> {
  const { proxy, pki } = state.world;
  const failures = { result: 'failure' };
  const before = await scrapeValue(proxy, 'kube_crl_proxy_crl_reloads_total', failures);
  pki.write('ca.crl', '-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n');
  reload(state);
  try {
    await waitForIncrease(proxy, 'kube_crl_proxy_crl_reloads_total', failures, before);
    return 1;
  } finally {
    writeClusterCrl(state);
  }
}

/** kube-apiserver goes away for `ms` (a restart) and comes back on the same port. */
async function apiserverOutage(state: WorldState, ms: number): Promise<void> {
  const port = state.upstream.current.port;
  await state.upstream.current.close();
  await delay(ms);
  for (let attempt = 1; ; attempt++) {
    try {
      state.upstream.current = await state.startFake(port);
      return;
    } catch (err) {
      if (attempt >= 10) throw err;
      await delay(200);
    }
  }
}

interface ExecTunnel {
  /** The status line the apiserver answered through the proxy. */
  readonly status: string;
  close(): void;
}

/** `kubectl exec demo -- sleep 600` over WebSocket, held open until close(). */
function openExec(state: WorldState): Promise<ExecTunnel> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: state.world.proxy.port,
      ca: state.ca,
      cert: state.users.alice.certPem,
      key: state.users.alice.keyPem,
      ALPNProtocols: ['http/1.1'],
    });
    const tunnel = (status: string): ExecTunnel => ({ status, close: () => socket.destroy() });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(tunnel('timeout'));
    }, CLIENT_TIMEOUT_MS);
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(tunnel('closed'));
    });
    socket.once('secureConnect', () => {
      socket.write(
        `GET ${PODS}/demo/exec?command=sleep&command=600&stdout=true HTTP/1.1\r\n` +
          'Host: kubernetes\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
          'Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n',
      );
    });
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      if (head.includes('\r\n')) return;
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        resolve(tunnel(head.slice(0, end)));
      }
    });
  });
}

/**
 * Opens `count` TCP connections that never start TLS and holds them: past --max-connections
 * the proxy closes new ones at once. Returns how many it closed before the hold ended.
 */
async function connectionFlood(state: WorldState, count: number, holdMs: number): Promise<number> {
  let closedEarly = 0;
  let holding = true;
  const sockets = Array.from({ length: count }, () => {
    const socket = netConnect(state.world.proxy.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.once('close', () => {
      if (holding) closedEarly++;
    });
    return socket;
  });
  await delay(holdMs);
  holding = false;
  for (const socket of sockets) socket.destroy();
  return closedEarly;
}

/** Drives `plan` against the world; never throws for a client's failure, only for a broken event. */
export async function driveLoad(world: World, plan: LoadPlan): Promise<LoadReport> {
  const state = stateOf(world);
  const startedAt = Date.now();
  const deadline = startedAt + plan.durationMs;
  const progress = () => Math.min(1, (Date.now() - startedAt) / plan.durationMs);
  const clients = Object.fromEntries(
    CLIENT_KINDS.map((k) => [k, { attempts: 0, outcomes: {} as Record<string, number> }]),
  ) as LoadReport['clients'];
  const picker = new Picker();

  const worker = async () => {
    while (Date.now() < deadline) {
      const kind = picker.next(plan.mix(progress()));
      const entry = clients[kind];
      const outcome = await runClient(state, kind, entry.attempts++);
      entry.outcomes[outcome] = (entry.outcomes[outcome] ?? 0) + 1;
      await delay(plan.pauseMs(progress()));
    }
  };

  const tunnels: ExecTunnel[] = [];
  const timers: NodeJS.Timeout[] = [];
  const report = {
    cutConnections: 0,
    failedReloads: 0,
    refusedInputs: 0,
    outages: 0,
    upgrades: 0,
    dropped: 0,
    execRefusals: [] as string[],
  };
  const events = async () => {
    let cuts = 0;
    for (const { at, event } of [...plan.events].sort((a, b) => a.at - b.at)) {
      const wait = startedAt + at * plan.durationMs - Date.now();
      if (wait > 0) await delay(wait);
      switch (event.kind) {
        case 'cut-revoked-connection':
          report.cutConnections += await cutRevokedConnection(state, ++cuts);
          break;
        case 'failed-reload':
          report.failedReloads += await failedReload(state);
          break;
        case 'refused-input':
          report.refusedInputs += await refusedInput(state, event.holdMs);
          break;
        case 'apiserver-outage':
          await apiserverOutage(state, event.ms);
          report.outages++;
          break;
        case 'connection-flood':
          report.dropped += await connectionFlood(state, event.connections, event.holdMs);
          break;
        case 'exec': {
          const tunnel = await openExec(state);
          tunnels.push(tunnel);
          if (tunnel.status.startsWith('HTTP/1.1 101')) {
            report.upgrades++;
            timers.push(setTimeout(() => tunnel.close(), event.holdMs));
          } else {
            report.execRefusals.push(tunnel.status);
            tunnel.close();
          }
          break;
        }
      }
    }
  };

  try {
    await Promise.all([events(), ...Array.from({ length: plan.workers }, worker)]);
  } finally {
    for (const timer of timers) clearTimeout(timer);
    for (const tunnel of tunnels) tunnel.close();
  }
  return { startedAt, endedAt: Date.now(), clients, ...report };
}
