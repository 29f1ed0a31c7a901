/**
 * The request load generator (a child process on the load core): `connections` TLS
 * connections with a client certificate, HTTP/1.1 keep-alive or HTTP/1.0 with `Connection:
 * keep-alive` (one request in flight each; a connection the server closes is opened again) or
 * HTTP/2 (`streams` in flight each), GETs of one path, closed loop. Bounded by time and count.
 * Reports completions, latency percentiles and its own CPU time for the measured window.
 */

import { getRequest, H1Connection, type H1Version } from './h1-connection.js';
import { getHeaderBlock, H2Connection } from './h2-connection.js';
import { childMain, type FromChild, nextMessage } from './ipc.js';
import { type ClientIdentity, LOAD_HOST, tlsOptions } from './tls-client.js';

export interface HttpLoadConfig {
  readonly protocol: 'h1' | 'h1.0' | 'h2';
  readonly identity: ClientIdentity;
  readonly path: string;
  readonly connections: number;
  /** Requests in flight per connection (HTTP/2 only; HTTP/1.x is always 1). */
  readonly streams: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly maxRequests: number;
}

export interface HttpLoadResult {
  readonly requests: number;
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** CPU seconds the generator itself used in the window. */
  readonly generatorCpuSeconds: number;
  /** Connections opened again after the server (or an error) closed one. */
  readonly reconnects: number;
}

/** Decides whether another request may start and records the ones that finish. */
class Controller {
  measuring = false;
  stopping = false;
  inFlight = 0;
  ok = 0;
  failed = 0;
  private count = 0;
  private deadline = Number.POSITIVE_INFINITY;
  private readonly latencies: Float64Array;
  private onDrained: (() => void) | null = null;

  constructor(private readonly config: HttpLoadConfig) {
    this.latencies = new Float64Array(config.maxRequests);
  }

  begin(): number {
    if (this.stopping) return -1;
    if (
      this.measuring &&
      (this.count >= this.config.maxRequests || performance.now() >= this.deadline)
    ) {
      this.stopping = true;
      this.checkDrained();
      return -1;
    }
    this.inFlight++;
    return performance.now();
  }

  end(startedAt: number, ok: boolean): void {
    this.inFlight--;
    if (this.measuring && this.count < this.latencies.length) {
      this.latencies[this.count++] = performance.now() - startedAt;
      if (ok) this.ok++;
      else this.failed++;
    }
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.stopping && this.inFlight === 0) this.onDrained?.();
  }

  startWindow(): void {
    this.measuring = true;
    this.count = 0;
    this.ok = 0;
    this.failed = 0;
    this.deadline = performance.now() + this.config.durationMs;
  }

  drained(): Promise<void> {
    if (this.stopping && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.onDrained = resolve;
    });
  }

  percentiles(): { p50: number; p99: number; max: number } {
    const sorted = this.latencies.slice(0, this.count).sort();
    const at = (p: number) =>
      sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
    return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? Number.NaN };
  }

  get requests(): number {
    return this.count;
  }
}

interface Driver {
  /** Resolves when every connection is up and has sent its first requests. */
  readonly started: Promise<void>;
  readonly reconnects: () => number;
  closeAll(): void;
}

/** A driver's connections: counts them up, replaces the ones that close, closes them at the end. */
class Fleet<C extends { close(): void }> implements Driver {
  readonly started: Promise<void>;
  readonly live = new Set<C>();
  private up = 0;
  private replaced = 0;
  private resolveStarted: () => void = () => {};

  constructor(
    private readonly ctl: Controller,
    private readonly connections: number,
  ) {
    this.started = new Promise<void>((r) => {
      this.resolveStarted = r;
    });
  }

  readonly reconnects = (): number => this.replaced;

  /** A connection is up: the fleet has started once every one has been. */
  connectionUp(): void {
    if (++this.up === this.connections) this.resolveStarted();
  }

  /** A connection closed: returns whether to open another (not once the load is stopping). */
  closed(c: C): boolean {
    this.live.delete(c);
    if (this.ctl.stopping) return false;
    this.replaced++;
    return true;
  }

  closeAll(): void {
    this.ctl.stopping = true;
    for (const c of this.live) c.close();
  }
}

function driveH1(config: HttpLoadConfig, ctl: Controller, version: H1Version): Driver {
  const options = tlsOptions(config.identity, 'http/1.1');
  const request = getRequest(config.path, `${LOAD_HOST}:${config.identity.port}`, version);
  const startedAt = new WeakMap<H1Connection, number>();
  const fleet = new Fleet<H1Connection>(ctl, config.connections);
  const issue = (c: H1Connection) => {
    const t = ctl.begin();
    if (t < 0) return;
    startedAt.set(c, t);
    c.send(request);
  };
  const handlers = {
    onReady(c: H1Connection) {
      fleet.connectionUp();
      issue(c);
    },
    onResponse(c: H1Connection, status: number) {
      ctl.end(startedAt.get(c) ?? performance.now(), status === 200);
      if (!c.socket.destroyed && !c.socket.writableEnded) issue(c);
    },
    onClose(c: H1Connection, _error: Error | null, inFlight: boolean) {
      if (inFlight) ctl.end(startedAt.get(c) ?? performance.now(), false);
      if (fleet.closed(c)) fleet.live.add(new H1Connection(options, handlers, version));
    },
  };
  for (let i = 0; i < config.connections; i++)
    fleet.live.add(new H1Connection(options, handlers, version));
  return fleet;
}

function driveH2(config: HttpLoadConfig, ctl: Controller): Driver {
  const options = tlsOptions(config.identity, 'h2');
  const block = getHeaderBlock(config.path, `${LOAD_HOST}:${config.identity.port}`);
  const startedAt = new Map<H2Connection, Map<number, number>>();
  const status = new Map<H2Connection, Map<number, number>>();
  const fleet = new Fleet<H2Connection>(ctl, config.connections);
  const fill = (c: H2Connection) => {
    const times = startedAt.get(c);
    if (times === undefined) return;
    while (c.canOpenStream && c.open.size < config.streams) {
      const t = ctl.begin();
      if (t < 0) return;
      times.set(c.request(block), t);
    }
  };
  const open = () => {
    let conn: H2Connection | null = null;
    conn = new H2Connection(options, {
      onReady(c) {
        fleet.connectionUp();
        fill(c);
        c.flush();
      },
      onHeaders(id, code) {
        if (conn !== null) status.get(conn)?.set(id, code);
      },
      onData() {},
      onEnd(id, ok) {
        if (conn === null) return;
        const times = startedAt.get(conn);
        const t = times?.get(id);
        times?.delete(id);
        const code = status.get(conn)?.get(id);
        status.get(conn)?.delete(id);
        if (t !== undefined) ctl.end(t, ok && code === 200);
      },
      onReadDone(c) {
        fill(c);
      },
      onClose(c) {
        startedAt.delete(c);
        status.delete(c);
        if (fleet.closed(c)) open();
      },
    });
    startedAt.set(conn, new Map());
    status.set(conn, new Map());
    fleet.live.add(conn);
  };
  for (let i = 0; i < config.connections; i++) open();
  return fleet;
}

async function run(config: HttpLoadConfig, send: (msg: FromChild<unknown>) => void) {
  const ctl = new Controller(config);
  const driver =
    config.protocol === 'h2'
      ? driveH2(config, ctl)
      : driveH1(config, ctl, config.protocol === 'h1' ? '1.1' : '1.0');
  await driver.started;
  await new Promise((r) => setTimeout(r, config.warmupMs));
  const go = nextMessage('go');
  send({ type: 'ready' });
  await go;
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  ctl.startWindow();
  await ctl.drained();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const p = ctl.percentiles();
  const result: HttpLoadResult = {
    requests: ctl.requests,
    ok: ctl.ok,
    failed: ctl.failed,
    seconds,
    p50Ms: p.p50,
    p99Ms: p.p99,
    maxMs: p.max,
    generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
    reconnects: driver.reconnects(),
  };
  send({ type: 'done', result });
  driver.closeAll();
}

childMain<HttpLoadConfig>(run);
