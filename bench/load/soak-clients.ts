/**
 * The soak's clients (a child on the load core), each session knowing whether it was asked to
 * end:
 * - good watches held open over HTTP/2 (`streamsPerConnection` per connection) and HTTP/1.1
 *   (one per connection, as client-go), spread over the good certificates, events counted by
 *   their newline;
 * - victims: one session each (an HTTP/2 watch, an HTTP/1.1 watch or a WebSocket exec left
 *   running), `victimsAhead` of them open at any time for the suite to revoke;
 * - churn: exec sessions (WebSocket v5.channel.k8s.io, `cat` echoing a payload) and
 *   port-forward sessions (SPDY/3.1, the fake's echo server), a few at all times;
 * - probes: a new connection every `probeIntervalMs`, in turn a good user, a revoked one, an
 *   unknown CA's and no certificate, tagged `soak-probe=<kind>` for the fake's audit.
 * Times are epoch milliseconds on the suite's clock (performance.timeOrigin + now).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import type { SpdyTestClient } from '../../test/fake-apiserver/streaming/spdy-test-client.js';
import { getHeaderBlock, H2Connection } from './h2-connection.js';
import { childMain, type FromChild, type ToChild } from './ipc.js';
import { openPortForward, type PortForwardTunnel } from './port-forward.js';
import { LOAD_HOST } from './tls-client.js';

export interface SoakCert {
  /** The certificate's CN (the username the fake must see, or never see). */
  readonly name: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface SoakClientsConfig {
  readonly port: number;
  readonly caFile: string;
  readonly good: readonly SoakCert[];
  readonly victims: readonly SoakCert[];
  readonly unknownCa: SoakCert;
  readonly namespace: string;
  readonly pod: string;
  readonly h2Watches: number;
  readonly h1Watches: number;
  readonly streamsPerConnection: number;
  readonly execConcurrency: number;
  readonly portForwardConcurrency: number;
  readonly payloadBytes: number;
  readonly probeIntervalMs: number;
  readonly victimsAhead: number;
}

/** `revoked`: the CRL revoking these victims was renamed into place at `changedAt`. */
export interface RevokedArgs {
  readonly victims: readonly number[];
}

export type VictimKind = 'h2-watch' | 'h1-watch' | 'exec';

export interface VictimReport {
  readonly index: number;
  readonly kind: VictimKind;
  readonly openedAt: number | null;
  /** When its session ended (null: still open when the clients stopped). */
  readonly endedAt: number | null;
  /** It failed to open at all (refused, error before 200/101). */
  readonly failedToOpen: boolean;
}

export interface ProbeCounts {
  readonly attempts: number;
  /** As expected: good 200, revoked 401 naming the revocation, unknown refused, anonymous 200. */
  readonly ok: number;
  /** Revoked or unknown-CA probes answered 2xx. */
  readonly failOpen: number;
  /** Anything else (a good probe refused, a revoked probe with the wrong answer, errors). */
  readonly unexpected: number;
  readonly examples: readonly string[];
}

export interface SessionCounts {
  readonly completed: number;
  /** Did not open, or the echo differed, or it timed out. */
  readonly failed: number;
  /** Ended by the other side before the echo was complete, after opening. */
  readonly dropped: number;
  readonly bytes: number;
  readonly examples: readonly string[];
}

export interface SoakClientsResult {
  readonly watchesAtStart: number;
  readonly watchesOpenAtEnd: number;
  /** Good watches that ended without being asked to. */
  readonly watchDrops: number;
  readonly watchDropExamples: readonly string[];
  /** Events received by the good watches since `go`. */
  readonly events: number;
  readonly minEventsPerWatch: number;
  readonly maxEventsPerWatch: number;
  readonly exec: SessionCounts;
  readonly portForward: SessionCounts;
  readonly probes: Readonly<Record<string, ProbeCounts>>;
  readonly victims: readonly VictimReport[];
  readonly generatorCpuSeconds: number;
}

const epochNow = () => performance.timeOrigin + performance.now();
const EXAMPLES = 5;
const SESSION_TIMEOUT_MS = 15_000;
const WS_STDIN = 0;
const WS_STDOUT = 1;
const WS_ERROR = 3;
const WS_CLOSE = 255;

interface Tls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

class Counter {
  completed = 0;
  failed = 0;
  dropped = 0;
  bytes = 0;
  readonly examples: string[] = [];

  note(what: string): void {
    if (this.examples.length < EXAMPLES) this.examples.push(what);
  }

  report(): SessionCounts {
    return {
      completed: this.completed,
      failed: this.failed,
      dropped: this.dropped,
      bytes: this.bytes,
      examples: this.examples,
    };
  }
}

/** How a session ended, and why when it did not complete. */
type Outcome = 'completed' | 'failed' | 'dropped';
interface Ended {
  readonly outcome: Outcome;
  readonly why?: string;
}

async function run(config: SoakClientsConfig, send: (msg: FromChild<unknown>) => void) {
  const ca = readFileSync(config.caFile);
  const tlsOf = (cert: SoakCert): Tls => ({
    cert: readFileSync(cert.certFile),
    key: readFileSync(cert.keyFile),
    ca,
  });
  const good = config.good.map(tlsOf);
  const authority = `${LOAD_HOST}:${config.port}`;
  const watchPath = `/api/v1/namespaces/${config.namespace}/pods?watch=true`;
  const podPath = `/api/v1/namespaces/${config.namespace}/pods/${config.pod}`;
  let stopping = false;

  // Good watches.
  const watchEvents: number[] = [];
  const watchOpen: boolean[] = [];
  let watchDrops = 0;
  const watchDropExamples: string[] = [];
  const watchEnded = (w: number, how: string) => {
    if (!watchOpen[w]) return;
    watchOpen[w] = false;
    if (stopping) return;
    watchDrops++;
    if (watchDropExamples.length < EXAMPLES)
      watchDropExamples.push(`watch ${w} (${config.good[w % good.length]?.name}): ${how}`);
  };
  let opened = 0;
  let allOpen!: () => void;
  const allOpened = new Promise<void>((r) => {
    allOpen = r;
  });
  const total = config.h2Watches + config.h1Watches;
  const watchUp = (w: number) => {
    watchOpen[w] = true;
    if (++opened === total) allOpen();
  };
  const countLines = (payload: Buffer) => {
    let n = 0;
    let at = payload.indexOf(10);
    while (at >= 0) {
      n++;
      at = payload.indexOf(10, at + 1);
    }
    return n;
  };
  const h2Connections: H2Connection[] = [];
  const block = getHeaderBlock(watchPath, authority);
  for (let first = 0; first < config.h2Watches; first += config.streamsPerConnection) {
    const count = Math.min(config.streamsPerConnection, config.h2Watches - first);
    const owner = (first / config.streamsPerConnection) % good.length;
    const byStream = new Map<number, number>();
    h2Connections.push(
      new H2Connection(h2Options(config, good[owner] as Tls), {
        onReady(c) {
          for (let i = 0; i < count; i++) byStream.set(c.request(block), first + i);
          c.flush();
        },
        onHeaders(id, status) {
          const w = byStream.get(id);
          if (w === undefined) return;
          if (status === 200) watchUp(w);
          else watchEnded(w, `status ${status}`);
        },
        onData(id, payload) {
          const w = byStream.get(id);
          if (w !== undefined) watchEvents[w] = (watchEvents[w] ?? 0) + countLines(payload);
        },
        onEnd(id, ok) {
          const w = byStream.get(id);
          if (w !== undefined) watchEnded(w, ok ? 'END_STREAM' : 'reset or connection closed');
        },
        onReadDone() {},
        onClose() {},
      }),
    );
  }
  const h1Requests: Array<{ destroy(): void }> = [];
  for (let i = 0; i < config.h1Watches; i++) {
    const w = config.h2Watches + i;
    const tls = good[i % good.length] as Tls;
    h1Requests.push(
      h1Stream(config, tls, watchPath, {
        onOpen: (status) => (status === 200 ? watchUp(w) : watchEnded(w, `status ${status}`)),
        onData: (payload) => {
          watchEvents[w] = (watchEvents[w] ?? 0) + countLines(payload);
        },
        onEnd: (how) => watchEnded(w, how),
      }),
    );
  }
  const openTimer = setTimeout(() => allOpen(), 60_000);
  await allOpened;
  clearTimeout(openTimer);
  const watchesAtStart = watchOpen.filter(Boolean).length;
  // The initial ADDED events of every watch arrive before counting starts.
  await new Promise((r) => setTimeout(r, 1_000));

  // Victims: opened ahead, each once; the suite revokes the ones that are open.
  const victims = config.victims.map((cert, index) => ({
    index,
    tls: tlsOf(cert),
    kind: (['h2-watch', 'h1-watch', 'exec'] as const)[index % 3] as VictimKind,
    openedAt: null as number | null,
    endedAt: null as number | null,
    failedToOpen: false,
    started: false,
    revoked: false,
    close: null as (() => void) | null,
  }));
  type Victim = (typeof victims)[number];
  const victimEnded = (v: Victim) => {
    v.endedAt ??= epochNow();
    if (v.openedAt === null) v.failedToOpen = true;
    if (!stopping) openVictims();
  };
  const openVictim = (v: Victim) => {
    v.started = true;
    const up = () => {
      v.openedAt ??= epochNow();
    };
    if (v.kind === 'h2-watch') {
      let streamId = -1;
      const c = new H2Connection(h2Options(config, v.tls), {
        onReady(conn) {
          streamId = conn.request(block);
          conn.flush();
        },
        onHeaders(id, status) {
          if (id === streamId && status === 200) up();
          else if (id === streamId) victimEnded(v);
        },
        onData() {},
        onEnd(id) {
          if (id === streamId) victimEnded(v);
        },
        onReadDone() {},
        onClose() {
          victimEnded(v);
        },
      });
      v.close = () => c.close();
    } else if (v.kind === 'h1-watch') {
      const r = h1Stream(config, v.tls, watchPath, {
        onOpen: (status) => (status === 200 ? up() : victimEnded(v)),
        onData: () => {},
        onEnd: () => victimEnded(v),
      });
      v.close = () => r.destroy();
    } else {
      const ws = new WebSocket(
        `wss://${authority}${podPath}/exec?command=cat&stdin=true&stdout=true&stderr=true`,
        ['v5.channel.k8s.io'],
        { ...v.tls, perMessageDeflate: false },
      );
      ws.on('open', up);
      ws.on('error', () => {});
      ws.on('close', () => victimEnded(v));
      v.close = () => ws.terminate();
    }
  };
  const openVictims = () => {
    let ahead = victims.filter((v) => v.started && !v.revoked && v.endedAt === null).length;
    for (const v of victims) {
      if (ahead >= config.victimsAhead) return;
      if (v.started) continue;
      openVictim(v);
      ahead++;
    }
  };

  // Churn and probes, from `go` to `stop`.
  const exec = new Counter();
  const portForward = new Counter();
  const probeKinds = ['good', 'revoked', 'unknown', 'anonymous'] as const;
  type ProbeKind = (typeof probeKinds)[number];
  type MutableCounts = { -readonly [K in keyof ProbeCounts]: ProbeCounts[K] } & {
    examples: string[];
  };
  const probes = new Map<ProbeKind, MutableCounts>(
    probeKinds.map((k) => [k, { attempts: 0, ok: 0, failOpen: 0, unexpected: 0, examples: [] }]),
  );
  const revokedPool: number[] = [];
  const inFlight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    inFlight.add(p);
    p.finally(() => inFlight.delete(p));
  };
  const churn = (session: (n: number) => Promise<Ended>, counter: Counter, payload: number) => {
    let n = 0;
    const loop = async () => {
      while (!stopping) {
        const { outcome, why } = await session(n++);
        counter[outcome]++;
        if (outcome === 'completed') counter.bytes += payload;
        else counter.note(`${outcome}: ${why ?? ''}`);
      }
    };
    track(loop());
  };
  let probeN = 0;
  const probe = () => {
    if (stopping) return;
    const kind = probeKinds[probeN % probeKinds.length] as ProbeKind;
    const n = probeN++;
    track(runProbe(kind === 'revoked' && revokedPool.length === 0 ? 'unknown' : kind, n));
    setTimeout(probe, config.probeIntervalMs);
  };
  const unknownTls = tlsOf(config.unknownCa);
  const runProbe = async (kind: ProbeKind, n: number) => {
    const counts = probes.get(kind) as MutableCounts;
    counts.attempts++;
    const goodIndex = n % good.length;
    const victim = revokedPool[n % Math.max(1, revokedPool.length)] ?? 0;
    const tls: Partial<Tls> =
      kind === 'good'
        ? (good[goodIndex] as Tls)
        : kind === 'revoked'
          ? (victims[victim]?.tls as Tls)
          : kind === 'unknown'
            ? unknownTls
            : { ca };
    const path =
      kind === 'anonymous'
        ? `/version?soak-probe=anonymous&n=${n}`
        : `/api/v1/namespaces/${config.namespace}/pods?soak-probe=${kind}&n=${n}${kind === 'good' ? `&cn=${encodeURIComponent(config.good[goodIndex]?.name ?? '')}` : ''}`;
    const answer = await getOnce(config, tls, path);
    const success = answer.status >= 200 && answer.status < 300;
    let ok: boolean;
    if (kind === 'good' || kind === 'anonymous') ok = answer.status === 200;
    else if (kind === 'revoked')
      ok = answer.status === 401 && /client certificate revoked/.test(answer.body);
    else ok = !success;
    if (ok) counts.ok++;
    else if (success) counts.failOpen++;
    else counts.unexpected++;
    if (!ok && counts.examples.length < EXAMPLES)
      counts.examples.push(`${kind} #${n}: ${answer.status} ${answer.body.slice(0, 160)}`);
  };

  openVictims();
  const cpuBefore = process.cpuUsage();
  process.on('message', (msg: ToChild<SoakClientsConfig>) => {
    if (msg.type !== 'command') return;
    const reply = (value: unknown) => send({ type: 'reply', name: msg.name, value });
    switch (msg.name) {
      case 'go': {
        for (let w = 0; w < total; w++) watchEvents[w] = 0;
        for (let i = 0; i < config.execConcurrency; i++)
          churn(
            (n) => execSession(config, good[(i + n) % good.length] as Tls, podPath),
            exec,
            config.payloadBytes,
          );
        for (let i = 0; i < config.portForwardConcurrency; i++)
          churn(
            (n) => portForwardSession(config, good[(i + n) % good.length] as Tls, podPath),
            portForward,
            config.payloadBytes,
          );
        probe();
        reply(watchesAtStart);
        return;
      }
      case 'victims':
        reply(
          victims
            .filter((v) => v.openedAt !== null && v.endedAt === null && !v.revoked)
            .map((v) => v.index),
        );
        return;
      case 'revoked': {
        const args = msg.args as RevokedArgs;
        for (const index of args.victims) {
          const v = victims[index];
          if (v === undefined) continue;
          v.revoked = true;
          revokedPool.push(index);
        }
        openVictims();
        reply(null);
        return;
      }
      case 'stop': {
        stopping = true;
        const settle = Promise.all([...inFlight]);
        const bound = new Promise((r) => setTimeout(r, SESSION_TIMEOUT_MS + 5_000));
        void Promise.race([settle, bound]).then(() => {
          const cpu = process.cpuUsage(cpuBefore);
          const events = watchEvents.slice(0, total);
          const result: SoakClientsResult = {
            watchesAtStart,
            watchesOpenAtEnd: watchOpen.filter(Boolean).length,
            watchDrops,
            watchDropExamples,
            events: events.reduce((a, b) => a + b, 0),
            minEventsPerWatch: Math.min(...events),
            maxEventsPerWatch: Math.max(...events),
            exec: exec.report(),
            portForward: portForward.report(),
            probes: Object.fromEntries(probes),
            victims: victims.map((v) => ({
              index: v.index,
              kind: v.kind,
              openedAt: v.openedAt,
              endedAt: v.endedAt,
              failedToOpen: v.failedToOpen,
            })),
            generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
          };
          send({ type: 'done', result });
          for (const c of h2Connections) c.close();
          for (const r of h1Requests) r.destroy();
          for (const v of victims) v.close?.();
        });
        return;
      }
    }
  });
  send({ type: 'ready', info: { watches: watchesAtStart } });
}

function h2Options(config: SoakClientsConfig, tls: Tls): ConnectionOptions {
  // Each connection is a separate client: no session resumption between them.
  return { host: LOAD_HOST, port: config.port, ...tls, ALPNProtocols: ['h2'], session: undefined };
}

interface StreamHandlers {
  onOpen(status: number): void;
  onData(payload: Buffer): void;
  onEnd(how: string): void;
}

/** One streaming GET over HTTP/1.1 on its own connection (client-go's watch on HTTP/1.1). */
function h1Stream(
  config: SoakClientsConfig,
  tls: Partial<Tls>,
  path: string,
  handlers: StreamHandlers,
): { destroy(): void } {
  let ended = false;
  const end = (how: string) => {
    if (ended) return;
    ended = true;
    handlers.onEnd(how);
  };
  const req = httpsRequest({ ...requestOptions(config, tls), path });
  req.on('response', (res: IncomingMessage) => {
    handlers.onOpen(res.statusCode ?? 0);
    res.on('data', (d: Buffer) => handlers.onData(d));
    res.on('end', () => end('response ended'));
    res.on('error', (err) => end(err.message));
    res.on('close', () => end('connection closed'));
  });
  req.on('error', (err) => end(err.message));
  req.on('close', () => end('connection closed'));
  req.end();
  return { destroy: () => req.destroy() };
}

function requestOptions(
  config: SoakClientsConfig,
  tls: Partial<Tls>,
): RequestOptions & ConnectionOptions {
  return {
    host: LOAD_HOST,
    port: config.port,
    method: 'GET',
    agent: false,
    ...tls,
    ALPNProtocols: ['http/1.1'],
    headers: { Accept: 'application/json' },
  };
}

/** One GET on a fresh connection: status and body, or status 0 with the error. */
function getOnce(
  config: SoakClientsConfig,
  tls: Partial<Tls>,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (status: number, body: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status, body });
    };
    const req = httpsRequest({ ...requestOptions(config, tls), path });
    const timer = setTimeout(() => {
      req.destroy();
      settle(0, 'timed out');
    }, SESSION_TIMEOUT_MS);
    req.on('response', (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => settle(res.statusCode ?? 0, body));
      res.on('error', (err) => settle(0, `${res.statusCode}: ${err.message}`));
    });
    req.on('error', (err) => settle(0, err.message));
    req.end();
  });
}

/** kubectl exec over WebSocket v5: `cat` echoes a random payload byte for byte, then exits. */
function execSession(config: SoakClientsConfig, tls: Tls, podPath: string): Promise<Ended> {
  const payload = randomBytes(config.payloadBytes);
  return new Promise((resolve) => {
    const ws = new WebSocket(
      `wss://${LOAD_HOST}:${config.port}${podPath}/exec?command=cat&stdin=true&stdout=true&stderr=true`,
      ['v5.channel.k8s.io'],
      { ...tls, perMessageDeflate: false },
    );
    const chunks: Buffer[] = [];
    let got = 0;
    let opened = false;
    let status = '';
    let settled = false;
    const done = (outcome: Outcome, why?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ outcome, ...(why === undefined ? {} : { why }) });
    };
    let lastError = '';
    const timer = setTimeout(() => {
      ws.terminate();
      done('failed', `timed out after ${got} bytes`);
    }, SESSION_TIMEOUT_MS);
    ws.on('open', () => {
      opened = true;
      const half = payload.length >> 1;
      ws.send(Buffer.concat([Buffer.from([WS_STDIN]), payload.subarray(0, half)]));
      ws.send(Buffer.concat([Buffer.from([WS_STDIN]), payload.subarray(half)]));
    });
    ws.on('message', (data: Buffer) => {
      if (data[0] === WS_STDOUT && data.length > 1) {
        chunks.push(data.subarray(1));
        got += data.length - 1;
        if (got === payload.length) ws.send(Buffer.from([WS_CLOSE, WS_STDIN]));
      } else if (data[0] === WS_ERROR) {
        status += data.subarray(1).toString();
      }
    });
    ws.on('error', (err) => {
      lastError = err.message;
    });
    ws.on('close', (code) => {
      const echoed = Buffer.concat(chunks).equals(payload);
      if (echoed && code === 1000 && /"Success"/.test(status)) done('completed');
      else
        done(
          opened && !echoed ? 'dropped' : 'failed',
          `close ${code}, ${got} of ${payload.length} bytes, echo ${echoed ? 'identical' : 'differs'}, status ${status.slice(0, 120)} ${lastError}`,
        );
    });
  });
}

/** kubectl port-forward over SPDY/3.1: one forwarded connection echoing a random payload. */
function portForwardSession(config: SoakClientsConfig, tls: Tls, podPath: string): Promise<Ended> {
  const payload = randomBytes(config.payloadBytes);
  return new Promise((resolve) => {
    let settled = false;
    let tunnel: PortForwardTunnel | null = null;
    const done = (outcome: Outcome, why?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      tunnel?.spdy.close();
      resolve({ outcome, ...(why === undefined ? {} : { why }) });
    };
    const timer = setTimeout(() => done('failed', 'timed out'), SESSION_TIMEOUT_MS);
    const forward = async (spdy: SpdyTestClient, socket: TLSSocket) => {
      try {
        const headers = { port: '8080', requestid: '0' };
        const error = await spdy.open({ streamtype: 'error', ...headers }, true);
        const data = await spdy.open({ streamtype: 'data', ...headers });
        data.write(payload);
        data.end();
        await data.whenFinished(SESSION_TIMEOUT_MS);
        await error.whenFinished(SESSION_TIMEOUT_MS);
        const echoed = data.received.equals(payload) && error.received.length === 0;
        done(
          echoed ? 'completed' : 'failed',
          `${data.received.length} of ${payload.length} bytes, error stream: ${error.received.toString().slice(0, 120)}`,
        );
      } catch (err) {
        done(
          socket.destroyed ? 'dropped' : 'failed',
          err instanceof Error ? err.message : String(err),
        );
      }
    };
    openPortForward({ port: config.port, podPath, tls }).then(
      (opened) => {
        tunnel = opened;
        if (settled) {
          opened.spdy.close();
          return;
        }
        // Upgraded: from here on a close nobody asked for is a drop.
        opened.socket.once('close', () => done('dropped', 'connection closed'));
        if (opened.socket.destroyed) done('dropped', 'connection closed');
        else void forward(opened.spdy, opened.socket);
      },
      (err: unknown) => done('failed', err instanceof Error ? err.message : String(err)),
    );
  });
}

/** The suite bounds --soak-minutes well below this. */
childMain<SoakClientsConfig>(run, 60 * 60_000);
