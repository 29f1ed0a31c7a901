/**
 * The one owner of the inputs: loads them (CRLs in a worker thread), watches them, and
 * publishes each new valid snapshot. A load that fails never replaces the snapshot in force:
 * it is logged once per distinct state of the files, counted, and retried when they change.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/config.js';
import { errorMessage, InputError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  crlEntries,
  crlLastReloadSuccess,
  crlLastSuccess,
  crlNextUpdate,
  crlReloads,
  snapshotGeneration,
  snapshotLoadDuration,
  zeroSeries,
} from '../metrics/metrics.js';
import { type Credentials, loadCredentials } from '../pki/credentials.js';
import { sameDers, type TrustData } from '../pki/trust.js';
import { TrustLoader } from '../pki/trust-loader.js';
import { fingerprintInputs, InputWatcher, type WatchSignal } from '../watcher/input-watcher.js';

/** Everything that changes at run time, as plain data (sent as is to cluster workers). */
export interface SnapshotData {
  readonly generation: number;
  readonly credentials: Credentials;
  readonly trust: TrustData;
  readonly loadedAt: number;
  /** Wall time the load took (read, parse, verify, index). */
  readonly loadSeconds: number;
}

/** 'event': the watcher saw a change; 'poll': its periodic check; 'signal': SIGHUP. */
export type ReloadCause = WatchSignal | 'signal';

interface SourceEvents {
  snapshot: [SnapshotData];
}

export class SnapshotSource extends EventEmitter<SourceEvents> {
  private readonly loader = new TrustLoader();
  private readonly paths: readonly string[];
  private watcher: InputWatcher | null = null;
  private snapshot: SnapshotData | null = null;
  /** Fingerprint of the files at the last load attempt, good or bad. */
  private attempted = '';
  private running: Promise<void> | null = null;
  private again: ReloadCause | null = null;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    super();
    zeroSeries(crlReloads, [{ result: 'success' }, { result: 'failure' }]);
    const f = config.files;
    this.paths = [
      f.tlsCertFile,
      f.tlsPrivateKeyFile,
      f.clientCaFile,
      ...f.crlFiles,
      f.upstreamCaFile,
      f.proxyClientCertFile,
      f.proxyClientKeyFile,
    ];
  }

  get current(): SnapshotData {
    if (this.snapshot === null) throw new Error('no snapshot loaded yet');
    return this.snapshot;
  }

  /** First load (a failure is a ConfigError: nothing may listen), then watching. */
  async start(): Promise<SnapshotData> {
    this.attempted = fingerprintInputs(this.paths);
    try {
      this.snapshot = await this.load(null);
      recordSnapshotMetrics(this.snapshot);
      this.log.info(
        {
          generation: this.snapshot.generation,
          loadSeconds: this.snapshot.loadSeconds,
          crls: crlSummary(this.snapshot.trust),
        },
        'inputs loaded',
      );
    } catch (err) {
      crlReloads.inc({ result: 'failure' });
      crlLastReloadSuccess.set(0);
      await this.loader.close();
      throw err instanceof InputError ? err.toConfigError() : err;
    }
    crlReloads.inc({ result: 'success' });
    crlLastReloadSuccess.set(1);
    this.watcher = new InputWatcher({
      paths: this.paths,
      onSignal: (signal) => this.reload(signal),
      log: this.log,
    });
    await this.watcher.start();
    return this.snapshot;
  }

  /**
   * Loads again (for a poll, only if the files' fingerprint changed since the last attempt).
   * Calls during a load are coalesced into one more load after it, so the last state wins.
   */
  reload(cause: ReloadCause): Promise<void> {
    if (this.running !== null) {
      if (this.again === null || this.again === 'poll') this.again = cause;
      return this.running;
    }
    this.running = this.reloadOnce(cause).finally(() => {
      this.running = null;
      const next = this.again;
      this.again = null;
      // In a task of its own: the load just applied ran its swap in this one.
      if (next !== null) setImmediate(() => void this.reload(next));
    });
    return this.running;
  }

  private async reloadOnce(cause: ReloadCause): Promise<void> {
    const fingerprint = fingerprintInputs(this.paths);
    if (cause === 'poll' && fingerprint === this.attempted) return;
    this.attempted = fingerprint;
    try {
      const next = await this.load(this.snapshot);
      crlReloads.inc({ result: 'success' });
      crlLastReloadSuccess.set(1);
      if (this.snapshot !== null && sameContent(this.snapshot, next)) {
        this.log.debug({ cause }, 'inputs unchanged; the snapshot in force stays');
        return;
      }
      recordSnapshotMetrics(next);
      this.log.info(
        {
          generation: next.generation,
          loadSeconds: next.loadSeconds,
          crls: crlSummary(next.trust),
        },
        'inputs loaded',
      );
      this.snapshot = next;
      this.emit('snapshot', next);
    } catch (err) {
      crlReloads.inc({ result: 'failure' });
      crlLastReloadSuccess.set(0);
      const fields =
        err instanceof InputError
          ? { flag: err.flag, file: err.file, problem: err.problem }
          : { err: errorMessage(err) };
      this.log.error(
        { ...fields, cause },
        `reload refused, the last good snapshot stays in force: ${errorMessage(err)}`,
      );
    }
  }

  private async load(previous: SnapshotData | null): Promise<SnapshotData> {
    const started = performance.now();
    const credentials = loadCredentials(this.config.files);
    const { data: trust } = await this.loader.load(
      {
        clientCaFile: this.config.files.clientCaFile,
        crlFiles: this.config.files.crlFiles,
        crlMissingPolicy: this.config.crlMissingPolicy,
      },
      previous?.trust ?? null,
    );
    const snapshot: SnapshotData = {
      generation: (previous?.generation ?? 0) + 1,
      credentials,
      trust,
      loadedAt: Date.now(),
      loadSeconds: Number(((performance.now() - started) / 1000).toFixed(3)),
    };
    for (const warning of [...credentials.warnings, ...trust.warnings]) {
      this.log.warn({ generation: snapshot.generation }, warning);
    }
    return snapshot;
  }

  async close(): Promise<void> {
    await this.watcher?.close();
    await this.loader.close();
  }
}

function crlSummary(trust: TrustData) {
  return trust.crls.map((c) => ({
    file: c.file,
    issuer: c.issuer,
    number: c.crlNumber,
    entries: c.entries,
  }));
}

/** Whether a load found exactly what is in force (then no new generation is made). */
function sameContent(a: SnapshotData, b: SnapshotData): boolean {
  const ca = a.credentials;
  const cb = b.credentials;
  if (
    ca.servingCertPem !== cb.servingCertPem ||
    ca.servingKeyPem !== cb.servingKeyPem ||
    ca.proxyClientCertPem !== cb.proxyClientCertPem ||
    ca.proxyClientKeyPem !== cb.proxyClientKeyPem ||
    ca.upstreamCaPem !== cb.upstreamCaPem
  ) {
    return false;
  }
  const ta = a.trust;
  const tb = b.trust;
  if (ta.issuers.length !== tb.issuers.length || !sameDers(ta.caDers, tb.caDers)) return false;
  return ta.issuers.every((ia, i) => {
    const ib = tb.issuers[i];
    return (
      ib !== undefined &&
      ia.caIndex === ib.caIndex &&
      ia.crlNumber === ib.crlNumber &&
      ia.thisUpdate === ib.thisUpdate &&
      ia.nextUpdate === ib.nextUpdate &&
      ia.set.width === ib.set.width &&
      Buffer.compare(ia.set.serials, ib.set.serials) === 0 &&
      Buffer.compare(
        new Uint8Array(ia.set.revokedAt.buffer),
        new Uint8Array(ib.set.revokedAt.buffer),
      ) === 0
    );
  });
}

function recordSnapshotMetrics(snapshot: SnapshotData): void {
  crlEntries.reset();
  crlNextUpdate.reset();
  const trust = snapshot.trust;
  const byCa = new Map(trust.issuers.map((i) => [i.caIndex, i]));
  trust.caSubjects.forEach((issuer, caIndex) => {
    const revocations = byCa.get(caIndex);
    crlEntries.set({ issuer }, revocations?.set.count ?? 0);
    if (revocations?.nextUpdate != null)
      crlNextUpdate.set({ issuer }, revocations.nextUpdate / 1000);
  });
  crlLastSuccess.set(snapshot.loadedAt / 1000);
  snapshotLoadDuration.set(snapshot.loadSeconds);
  snapshotGeneration.set(snapshot.generation);
}
