/**
 * The one owner of the inputs: loads them (CRLs in a worker thread), watches them, and
 * publishes each new valid snapshot. A load that fails never replaces the snapshot in force:
 * it is logged once per distinct state of the files, counted, and retried when they change.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Config } from '../config/config.js';
import { errorMessage, InputError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  crlEntries,
  crlLastSuccess,
  crlNextUpdate,
  crlReloads,
  snapshotGeneration,
  snapshotLoadDuration,
} from '../metrics/metrics.js';
import { parseCertificate } from '../pki/certificate.js';
import { type Credentials, loadCredentials } from '../pki/credentials.js';
import type { TrustData } from '../pki/trust.js';
import { TrustLoader } from '../pki/trust-loader.js';
import { fingerprintInputs, InputWatcher } from '../watcher/input-watcher.js';

/** Everything that changes at run time, as plain data (sent as is to cluster workers). */
export interface SnapshotData {
  readonly generation: number;
  readonly credentials: Credentials;
  readonly trust: TrustData;
  /** Session ticket keys, new with every snapshot: no session survives a swap unjudged. */
  readonly ticketKeys: Buffer;
  readonly loadedAt: number;
}

export type ReloadCause = 'watch' | 'signal';

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
    } catch (err) {
      crlReloads.inc({ result: 'failure' });
      await this.loader.close();
      throw err instanceof InputError ? err.toConfigError() : err;
    }
    crlReloads.inc({ result: 'success' });
    this.watcher = new InputWatcher({
      paths: this.paths,
      onSignal: () => this.reload('watch'),
      log: this.log,
    });
    await this.watcher.start();
    return this.snapshot;
  }

  /**
   * Loads again if the files changed since the last attempt (always, for a signal). Calls
   * during a load are coalesced into one more load after it.
   */
  reload(cause: ReloadCause): Promise<void> {
    if (this.running !== null) {
      if (this.again !== 'signal') this.again = cause;
      return this.running;
    }
    this.running = this.reloadOnce(cause).finally(() => {
      this.running = null;
      const next = this.again;
      this.again = null;
      if (next !== null) void this.reload(next);
    });
    return this.running;
  }

  private async reloadOnce(cause: ReloadCause): Promise<void> {
    const fingerprint = fingerprintInputs(this.paths);
    if (cause === 'watch' && fingerprint === this.attempted) return;
    this.attempted = fingerprint;
    try {
      const next = await this.load(this.snapshot);
      crlReloads.inc({ result: 'success' });
      this.snapshot = next;
      this.emit('snapshot', next);
    } catch (err) {
      crlReloads.inc({ result: 'failure' });
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
      ticketKeys: randomBytes(48),
      loadedAt: Date.now(),
    };
    const seconds = (performance.now() - started) / 1000;
    recordSnapshotMetrics(snapshot, seconds);
    for (const warning of [...credentials.warnings, ...trust.warnings])
      this.log.warn({ generation: snapshot.generation }, warning);
    this.log.info(
      {
        generation: snapshot.generation,
        loadSeconds: Number(seconds.toFixed(3)),
        crls: trust.crls.map((c) => ({
          file: c.file,
          issuer: c.issuer,
          number: c.crlNumber,
          entries: c.entries,
        })),
      },
      'inputs loaded',
    );
    return snapshot;
  }

  async close(): Promise<void> {
    await this.watcher?.close();
    await this.loader.close();
  }
}

function recordSnapshotMetrics(snapshot: SnapshotData, seconds: number): void {
  crlEntries.reset();
  crlNextUpdate.reset();
  const trust = snapshot.trust;
  const byCa = new Map(trust.issuers.map((i) => [i.caIndex, i]));
  trust.caDers.forEach((der, caIndex) => {
    const issuer = parseCertificate(Buffer.from(der)).subject;
    const revocations = byCa.get(caIndex);
    crlEntries.set({ issuer }, revocations?.set.count ?? 0);
    if (revocations?.nextUpdate != null)
      crlNextUpdate.set({ issuer }, revocations.nextUpdate / 1000);
  });
  crlLastSuccess.set(snapshot.loadedAt / 1000);
  snapshotLoadDuration.set(seconds);
  snapshotGeneration.set(snapshot.generation);
}
