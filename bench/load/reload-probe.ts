/**
 * The outside view of a CRL change (a child on the load core):
 * - a probe: a good client on one keep-alive HTTP/1.1 connection, one GET every ~1 ms,
 *   every latency recorded with its send time (the proxy's event-loop stalls show up here);
 * - a victim's open keep-alive connection, one GET every 10 ms: when does it get cut?
 * - a victim's new connections, one every 20 ms after the change: when is it refused?
 * The suite changes the CRL and then sends `command`; this process starts its new-connection
 * attempts, observes for `observeMs`, and reports epoch-millisecond timestamps (the same
 * clock as the suite's: performance.timeOrigin + performance.now()).
 */
import { getRequest, H1Connection } from './h1-connection.js';
import { childMain, type FromChild, nextMessage } from './ipc.js';
import { type ClientIdentity, LOAD_HOST, tlsOptions } from './tls-client.js';

export interface ReloadProbeConfig {
  readonly probe: ClientIdentity;
  readonly victim: ClientIdentity;
  readonly path: string;
  readonly baselineMs: number;
  readonly observeMs: number;
}

export interface ReloadProbeResult {
  /** Epoch ms when this process heard of the change. */
  readonly changedAt: number;
  /** [sendTime (epoch ms), latency ms] of every probe request. */
  readonly probes: ReadonlyArray<readonly [number, number]>;
  readonly probeFailures: number;
  /** When the victim's open connection was closed by the server (null: it never was). */
  readonly openCutAt: number | null;
  /** Last 200 on the victim's open connection. */
  readonly openLastOkAt: number | null;
  /** When a new victim connection was first refused (non-200, or closed before an answer). */
  readonly newRefusedAt: number | null;
  /** Start of the last new victim connection that was still served. */
  readonly newLastOkAt: number | null;
  readonly newAttempts: number;
}

const epochNow = () => performance.timeOrigin + performance.now();

async function run(config: ReloadProbeConfig, send: (msg: FromChild<unknown>) => void) {
  const request = getRequest(config.path, `${LOAD_HOST}:${config.probe.port}`);
  const probeOptions = tlsOptions(config.probe, 'http/1.1');
  const victimOptions = tlsOptions(config.victim, 'http/1.1');
  const probes: Array<[number, number]> = [];
  let probeFailures = 0;
  let stopped = false;

  // The probe: next GET 1 ms after the previous one was sent, or at once if it took longer.
  let probeSentAt = 0;
  let probeReady!: () => void;
  const probeUp = new Promise<void>((r) => {
    probeReady = r;
  });
  const sendProbe = (c: H1Connection) => {
    if (stopped) return;
    probeSentAt = epochNow();
    c.send(request);
  };
  const openProbe = () =>
    new H1Connection(probeOptions, {
      onReady: (c) => {
        probeReady();
        sendProbe(c);
      },
      onResponse: (c, status) => {
        const now = epochNow();
        probes.push([probeSentAt, now - probeSentAt]);
        if (status !== 200) probeFailures++;
        const wait = probeSentAt + 1 - now;
        if (wait <= 0) sendProbe(c);
        else setTimeout(() => sendProbe(c), wait);
      },
      onClose: () => {
        probeFailures++;
        if (!stopped) openProbe();
      },
    });
  openProbe();

  // The victim's open connection.
  let openCutAt: number | null = null;
  let openLastOkAt: number | null = null;
  let victimUp!: () => void;
  const victimReady = new Promise<void>((r) => {
    victimUp = r;
  });
  new H1Connection(victimOptions, {
    onReady: (c) => {
      victimUp();
      c.send(request);
    },
    onResponse: (c, status) => {
      if (status === 200) openLastOkAt = epochNow();
      else openCutAt ??= epochNow();
      setTimeout(() => {
        if (!stopped && !c.socket.destroyed) c.send(request);
      }, 10);
    },
    onClose: () => {
      if (!stopped) openCutAt ??= epochNow();
    },
  });
  await Promise.all([probeUp, victimReady]);
  await new Promise((r) => setTimeout(r, config.baselineMs));

  const go = nextMessage<ReloadProbeConfig>('command');
  send({ type: 'ready' });
  await go;
  const changedAt = epochNow();

  // New victim connections, one every 20 ms, until one is refused.
  let newRefusedAt: number | null = null;
  let newLastOkAt: number | null = null;
  let newAttempts = 0;
  const tryNew = () => {
    if (stopped || newRefusedAt !== null) return;
    newAttempts++;
    const startedAt = epochNow();
    let answered = false;
    new H1Connection(victimOptions, {
      onReady: (c) => c.send(request),
      onResponse: (c, status) => {
        answered = true;
        if (status === 200) newLastOkAt = startedAt;
        else newRefusedAt ??= epochNow();
        c.close();
      },
      onClose: () => {
        if (!answered) newRefusedAt ??= epochNow();
      },
    });
    setTimeout(tryNew, 20);
  };
  tryNew();

  await new Promise((r) => setTimeout(r, config.observeMs));
  stopped = true;
  const result: ReloadProbeResult = {
    changedAt,
    probes,
    probeFailures,
    openCutAt,
    openLastOkAt,
    newRefusedAt,
    newLastOkAt,
    newAttempts,
  };
  send({ type: 'done', result });
}

childMain<ReloadProbeConfig>(run);
