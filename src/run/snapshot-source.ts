/**
 * The one owner of the inputs: loads them (CRLs and the deny file in a worker thread), watches
 * them, and publishes each new snapshot. Each input — the client CA bundle, the CRLs, the
 * serving pair, the front-proxy-client pair, the upstream CA bundle, the deny file — is loaded
 * and checked on its own: one
 * that is refused keeps its last good value while the others' changes apply, so no single bad
 * file can freeze revocation. A refusal is logged once per distinct problem, counted, and
 * retried when the files change.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/config.js';
import { ConfigErrors, errorMessage, INPUTS, InputError, type InputName } from '../errors.js';
import type { Logger } from '../log.js';
import {
  certificateExpiry,
  crlEntries,
  crlLastReloadSuccess,
  crlLastSuccess,
  crlNextUpdate,
  crlReloads,
  crlThisUpdate,
  inputLastReloadSuccess,
  inputLastSuccess,
  snapshotGeneration,
  snapshotLoadDuration,
  zeroSeries,
} from '../metrics/metrics.js';
import {
  type Credentials,
  reloadCredentials,
  sameServing,
  sameUpstreamSide,
} from '../pki/credentials.js';
import { type DenyData, denyWarnings } from '../pki/deny-list.js';
import { sameDers, type TrustData } from '../pki/trust.js';
import { TrustLoader } from '../pki/trust-loader.js';
import { CrlUrlPoller } from '../watcher/crl-url-poller.js';
import { fingerprintInputs, InputWatcher, type WatchSignal } from '../watcher/input-watcher.js';

/** Everything that changes at run time, as plain data (sent as is to cluster workers). */
export interface SnapshotData {
  readonly generation: number;
  readonly credentials: Credentials;
  readonly trust: TrustData;
  /** The deny list in force; null without --deny-file. */
  readonly deny: DenyData | null;
  readonly loadedAt: number;
  /** Wall time the load took (read, parse, verify, index). */
  readonly loadSeconds: number;
}

/**
 * 'event': the watcher saw a change; 'poll': its periodic check; 'signal': SIGHUP; 'fetch': a
 * --crl-url gave a CRL to check (or its state changed).
 */
export type ReloadCause = WatchSignal | 'signal' | 'fetch';

interface SourceEvents {
  snapshot: [SnapshotData];
}

/** One load of every input: what to put in force, and what was refused. */
interface Loaded {
  readonly credentials: Credentials | null;
  readonly trust: TrustData | null;
  readonly deny: DenyData | null;
  readonly problems: readonly InputError[];
  readonly loadSeconds: number;
}

export class SnapshotSource extends EventEmitter<SourceEvents> {
  private readonly loader = new TrustLoader();
  private readonly paths: readonly string[];
  private readonly urls: CrlUrlPoller | null;
  private watcher: InputWatcher | null = null;
  private snapshot: SnapshotData | null = null;
  /** Fingerprint of the files at the last load attempt, good or bad. */
  private attempted = '';
  private running: Promise<void> | null = null;
  private again: ReloadCause | null = null;
  /** The trust inputs' problems as of their last read (kept while the files are unchanged). */
  private trustProblems: readonly InputError[] = [];
  /** Per input, the problems last logged ('' when accepted): each is logged once. */
  private readonly logged = new Map<InputName, string>();

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
      ...(f.denyFile === null ? [] : [f.denyFile]),
      f.upstreamCaFile,
      f.proxyClientCertFile,
      f.proxyClientKeyFile,
    ];
    this.urls =
      config.crlUrls === null
        ? null
        : new CrlUrlPoller(config.crlUrls, log, () => void this.reload('fetch'));
  }

  get current(): SnapshotData {
    if (this.snapshot === null) throw new Error('no snapshot loaded yet');
    return this.snapshot;
  }

  /**
   * First load, then watching. Every refused input is a ConfigError here, all of them at once
   * (ConfigErrors): nothing is in force to fall back on, and kube-apiserver too refuses to start
   * on an input it cannot use.
   */
  async start(): Promise<SnapshotData> {
    this.attempted = fingerprintInputs(this.paths);
    await this.urls?.start();
    let loaded = await this.load(null, true);
    if (this.urls?.distrustRefusedCopies(loaded.problems) === true) {
      loaded = await this.load(null, true);
    }
    if (loaded.problems.length > 0 || loaded.credentials === null || loaded.trust === null) {
      crlReloads.inc({ result: 'failure' });
      crlLastReloadSuccess.set(0);
      this.urls?.close();
      await this.loader.close();
      const problems =
        loaded.problems.length > 0
          ? loaded.problems
          : [new InputError('client-ca-file', null, 'nothing loaded')];
      throw new ConfigErrors(problems.map((p) => p.toConfigError()));
    }
    this.snapshot = this.publishable(loaded, null) as SnapshotData;
    this.record(loaded, 'start');
    this.announce(this.snapshot);
    // CRLs fetched at start for URLs that had a cached copy: checked against it (rollback).
    if (this.urls?.waiting === true) await this.reload('fetch');
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
    if (cause === 'signal') this.urls?.refresh();
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
    const loaded = await this.load(this.snapshot);
    this.record(loaded, cause);
    const next = this.publishable(loaded, this.snapshot);
    if (next === null) {
      this.log.debug({ cause }, 'inputs unchanged; the snapshot in force stays');
      return;
    }
    this.announce(next);
    this.snapshot = next;
    this.emit('snapshot', next);
  }

  private announce(snapshot: SnapshotData): void {
    recordSnapshotMetrics(snapshot);
    this.urls?.inForce(snapshot.trust);
    const { generation, loadSeconds, trust, credentials, deny } = snapshot;
    this.log.info(
      {
        generation,
        loadSeconds,
        crls: crlSummary(trust),
        ...(deny === null ? {} : { deny: { file: deny.file, entries: deny.entries.length } }),
      },
      'inputs loaded',
    );
    const denied = deny === null ? [] : denyWarnings(deny, trust.caSubjects, Date.now());
    for (const warning of [...credentials.warnings, ...trust.warnings, ...denied]) {
      this.log.warn({ generation }, warning);
    }
  }

  /**
   * Reads every input; each refused one falls back on its value in `previous`. `preferCopies`:
   * a --crl-url is read from its cached copy even when a fetched CRL waits (the first load).
   */
  private async load(previous: SnapshotData | null, preferCopies = false): Promise<Loaded> {
    const started = performance.now();
    const { credentials, problems } = reloadCredentials(
      this.config.files,
      previous?.credentials ?? null,
    );
    let trust: TrustData | null = previous?.trust ?? null;
    const urls = this.urls?.sources(preferCopies) ?? { sources: [], staged: [] };
    try {
      const loaded = await this.loader.load(
        {
          clientCaFile: this.config.files.clientCaFile,
          crlFiles: this.config.files.crlFiles,
          crlUrls: urls.sources,
          crlMissingPolicy: this.config.crlMissingPolicy,
        },
        previous?.trust ?? null,
      );
      trust = loaded.data;
      if (!loaded.unchanged) this.trustProblems = loaded.problems;
    } catch (err) {
      this.trustProblems = [
        err instanceof InputError
          ? err
          : new InputError('crl-file', null, `trust loader failed: ${errorMessage(err)}`),
      ];
    }
    this.urls?.settle(urls.staged, trust, this.trustProblems);
    const { deny, problems: denyProblems } = await this.loadDeny(previous?.deny ?? null);
    const known = new Set(this.trustProblems.map((p) => p.message));
    const urlProblems = (this.urls?.refusals() ?? []).filter((p) => !known.has(p.message));
    return {
      credentials,
      trust,
      deny,
      problems: [...problems, ...this.trustProblems, ...urlProblems, ...denyProblems],
      loadSeconds: Number(((performance.now() - started) / 1000).toFixed(3)),
    };
  }

  /** The deny list to put in force: the file's, or `previous` when it is refused. */
  private async loadDeny(
    previous: DenyData | null,
  ): Promise<{ deny: DenyData | null; problems: InputError[] }> {
    const file = this.config.files.denyFile;
    if (file === null) return { deny: null, problems: [] };
    try {
      return { deny: await this.loader.loadDeny(file, previous), problems: [] };
    } catch (err) {
      const problem =
        err instanceof InputError
          ? err
          : new InputError('deny-file', file, `deny loader failed: ${errorMessage(err)}`);
      return { deny: previous, problems: [problem] };
    }
  }

  /** The snapshot to put in force after `previous`, or null when nothing changed. */
  private publishable(loaded: Loaded, previous: SnapshotData | null): SnapshotData | null {
    const { credentials, trust, deny } = loaded;
    if (credentials === null || trust === null) return null;
    if (
      previous !== null &&
      previous.deny?.digest === deny?.digest &&
      sameContent(previous, credentials, trust)
    ) {
      return null;
    }
    return {
      generation: (previous?.generation ?? 0) + 1,
      credentials,
      trust,
      deny,
      loadedAt: Date.now(),
      loadSeconds: loaded.loadSeconds,
    };
  }

  /** Per-input metrics and logs of one load: each distinct problem logged once. */
  private record(loaded: Loaded, cause: ReloadCause | 'start'): void {
    const now = Date.now() / 1000;
    crlLastReloadSuccess.set(loaded.problems.length === 0 ? 1 : 0);
    let newlyRefused = false;
    for (const input of INPUTS) {
      if (input === 'deny' && this.config.files.denyFile === null) continue;
      const refused = loaded.problems.filter((p) => p.input === input);
      inputLastReloadSuccess.set({ input }, refused.length === 0 ? 1 : 0);
      if (refused.length === 0) {
        inputLastSuccess.set({ input }, now);
        if (input === 'crl') crlLastSuccess.set(now);
      }
      const state = refused.map((p) => p.message).join('\n');
      const before = this.logged.get(input) ?? '';
      if (state === before) continue;
      this.logged.set(input, state);
      if (refused.length === 0) {
        this.log.info({ input, cause }, `input ${input} accepted again`);
        continue;
      }
      newlyRefused = true;
      for (const problem of refused) {
        this.log.error(
          { input, flag: problem.flag, file: problem.file, problem: problem.problem, cause },
          `input refused, its last good value stays in force: ${problem.message}`,
        );
      }
    }
    // A failure is a refusal not reported before: the same files seen again count once.
    if (newlyRefused) crlReloads.inc({ result: 'failure' });
    else if (loaded.problems.length === 0) crlReloads.inc({ result: 'success' });
  }

  async close(): Promise<void> {
    this.urls?.close();
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
function sameContent(a: SnapshotData, cb: Credentials, tb: TrustData): boolean {
  if (!sameServing(a.credentials, cb) || !sameUpstreamSide(a.credentials, cb)) return false;
  const ta = a.trust;
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
  crlThisUpdate.reset();
  const trust = snapshot.trust;
  const byCa = new Map(trust.issuers.map((i) => [i.caIndex, i]));
  trust.caSubjects.forEach((issuer, caIndex) => {
    const revocations = byCa.get(caIndex);
    crlEntries.set({ issuer }, revocations?.set.count ?? 0);
    if (revocations !== undefined) crlThisUpdate.set({ issuer }, revocations.thisUpdate / 1000);
    if (revocations?.nextUpdate != null)
      crlNextUpdate.set({ issuer }, revocations.nextUpdate / 1000);
  });
  const { credentials } = snapshot;
  certificateExpiry.set({ input: 'serving' }, credentials.servingNotAfter / 1000);
  certificateExpiry.set({ input: 'proxy-client' }, credentials.proxyClientNotAfter / 1000);
  certificateExpiry.set({ input: 'upstream-ca' }, credentials.upstreamCaNotAfter / 1000);
  certificateExpiry.set({ input: 'client-ca' }, Math.min(...trust.caNotAfter) / 1000);
  snapshotLoadDuration.set(snapshot.loadSeconds);
  snapshotGeneration.set(snapshot.generation);
}
