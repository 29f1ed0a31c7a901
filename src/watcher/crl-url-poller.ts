/**
 * The CRLs of --crl-url: each is fetched at start, every --crl-url-interval, and more often as
 * its nextUpdate nears, and goes through the CRL checks as a --crl-file does.
 *
 * Each URL has a cached copy in --crl-cache-dir — its last good CRL — that the trust load reads
 * as the URL's CRL. A fetched CRL is written beside it (`<hash>.fetched`) and read instead in the
 * next load; it replaces the cached copy only if that load put it in force (its bytes' digest is
 * in the trust data's crlDigests: signature, issuer, rollback and every other check passed).
 * Otherwise it is discarded and the copy in force stays. So a restart while the server is down,
 * or serves something wrong, starts from a CRL that was in force.
 *
 * Files per URL, named by the SHA-256 of the URL: `<hash>.crl` (the copy), `<hash>.json`
 * (what it is: URL, digest, validators, fetch time), `<hash>.fetched` (a fetch awaiting its load).
 */
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { CrlUrls } from '../config/config.js';
import { ConfigError, errorMessage, InputError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  crlUrlFetches,
  crlUrlLastFetchSuccess,
  crlUrlLastSuccess,
  zeroSeries,
} from '../metrics/metrics.js';
import { readInput, syncDirectory } from '../pki/files.js';
import type { CrlUrlSource, TrustData } from '../pki/trust.js';
import { FetchError, fetchCrl, type Validators } from './crl-fetch.js';

/** setTimeout cannot wait longer than this. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Fetches of one URL are never closer than this, however short its CRL's life. */
const MIN_FETCH_GAP_MS = 10_000;

/** What the cached copy of a URL is. */
interface CacheMeta {
  readonly url: string;
  readonly sha256: string;
  readonly etag: string | null;
  readonly lastModified: string | null;
  /** When the fetch that gave it (or last confirmed it with a 304) was made (ms). */
  readonly fetchedAt: number;
}

/**
 * 'idle': nothing pending; 'fetching': a request in flight; 'staged': a fetched CRL waits for a
 * load to judge it (no new fetch of this URL until then: the file it waits in must not change).
 */
type Phase = 'idle' | 'fetching' | 'staged';

interface UrlState {
  readonly url: string;
  readonly copy: string;
  readonly metaFile: string;
  readonly staging: string;
  meta: CacheMeta | null;
  phase: Phase;
  staged: {
    readonly sha256: string;
    readonly bytes: number;
    readonly validators: Validators;
  } | null;
  /** Why the URL's latest CRL was refused (kept until it serves one that is put in force). */
  refusal: InputError | null;
  /** At start: its cached copy was refused; a fetched CRL is tried instead. */
  copyDistrusted: boolean;
  /** The fetch problem last logged ('' when the last fetch worked): each is logged once. */
  logged: string;
  lastAttempt: number;
  /** Of the CRL in force from this URL. */
  freshness: { readonly thisUpdate: number; readonly nextUpdate: number | null } | null;
  timer: NodeJS.Timeout | null;
}

export class CrlUrlPoller {
  private readonly states: UrlState[];
  private readonly abort = new AbortController();
  private started = false;

  constructor(
    private readonly settings: CrlUrls,
    private readonly log: Logger,
    /** Called when a fetched CRL waits for a load, or a URL's state changed without one. */
    private readonly onChange: () => void,
  ) {
    zeroSeries(crlUrlFetches, [
      { result: 'success' },
      { result: 'not_modified' },
      { result: 'failure' },
    ]);
    this.states = settings.urls.map((url) => {
      const copy = cachedCopyPath(settings.cacheDir, url);
      const base = copy.slice(0, -'.crl'.length);
      return {
        url,
        copy,
        metaFile: `${base}.json`,
        staging: `${base}.fetched`,
        meta: null,
        phase: 'idle',
        staged: null,
        refusal: null,
        copyDistrusted: false,
        logged: '',
        lastAttempt: 0,
        freshness: null,
        timer: null,
      };
    });
  }

  /**
   * Prepares the cache directory and fetches every URL once. A URL that gave no CRL and has no
   * cached copy is a ConfigError, as a missing --crl-file is; one with a copy starts from it.
   */
  async start(): Promise<void> {
    const dir = this.settings.cacheDir;
    try {
      mkdirSync(dir, { recursive: true });
      accessSync(dir, constants.R_OK | constants.W_OK);
    } catch (err) {
      throw new ConfigError('crl-cache-dir', `${dir}: ${errorMessage(err)}`);
    }
    for (const state of this.states) {
      state.meta = existsSync(state.copy) ? readMeta(state) : null;
      removeQuietly(state.staging);
    }
    await Promise.all(this.states.map((state) => this.fetch(state)));
    for (const state of this.states) {
      const fetchedAt = state.meta?.fetchedAt ?? null;
      if (fetchedAt !== null) crlUrlLastSuccess.set({ url: state.url }, fetchedAt / 1000);
      if (state.phase === 'staged') continue;
      if (!existsSync(state.copy)) {
        throw new ConfigError(
          'crl-url',
          `${state.url}: ${state.logged || 'no CRL'}, and ${dir} holds no copy of it`,
        );
      }
      if (state.logged !== '') {
        this.log.warn(
          {
            url: state.url,
            copy: state.copy,
            fetchedAt: fetchedAt === null ? null : new Date(fetchedAt).toISOString(),
          },
          `starting with the cached CRL of ${state.url}: the fetch failed (${state.logged})`,
        );
      }
    }
    this.started = true;
  }

  /**
   * Where the trust load reads each URL's CRL: a fetched one waiting to be judged, else the
   * cached copy. `preferCopy` (the first load): the cached copy whenever there is a usable one,
   * so that it is the baseline a fetched CRL is checked against (rollback).
   */
  sources(preferCopy: boolean): { sources: CrlUrlSource[]; staged: string[] } {
    const staged: string[] = [];
    const sources = this.states.map((state) => {
      const copyUsable = !state.copyDistrusted && existsSync(state.copy);
      if (state.phase === 'staged' && !(preferCopy && copyUsable)) {
        staged.push(state.url);
        return { url: state.url, path: state.staging };
      }
      return { url: state.url, path: state.copy };
    });
    return { sources, staged };
  }

  /**
   * First load only: the cached copies it refused, of URLs with a fetched CRL waiting, are set
   * aside for that CRL. True when the load should be tried again.
   */
  distrustRefusedCopies(problems: readonly InputError[]): boolean {
    let again = false;
    for (const state of this.states) {
      if (state.phase !== 'staged' || state.copyDistrusted) continue;
      const refused = problems.find((p) => p.flag === 'crl-url' && p.file === state.url);
      if (refused === undefined) continue;
      this.log.warn(
        { url: state.url, copy: state.copy },
        `the cached CRL of ${state.url} is refused (${refused.problem}); trying the one just fetched`,
      );
      state.copyDistrusted = true;
      again = true;
    }
    return again;
  }

  /**
   * After a load that read the fetched CRLs of `staged`: each one the load put in force
   * becomes the URL's cached copy; any other is discarded, and the problem that refused it
   * (if the load named one) stays reported until the URL serves a CRL that is put in force.
   */
  settle(staged: readonly string[], data: TrustData | null, problems: readonly InputError[]): void {
    for (const state of this.states) {
      if (!staged.includes(state.url) || state.phase !== 'staged' || state.staged === null)
        continue;
      const fetched = state.staged;
      state.staged = null;
      state.phase = 'idle';
      if (data?.crlDigests[state.url] === fetched.sha256) {
        this.keep(state, fetched);
      } else {
        removeQuietly(state.staging);
        state.refusal = problems.find((p) => p.flag === 'crl-url' && p.file === state.url) ?? null;
        crlUrlFetches.inc({ result: 'failure' });
        crlUrlLastFetchSuccess.set({ url: state.url }, 0);
        if (state.refusal === null) {
          this.log.warn(
            { url: state.url },
            `the CRL fetched from ${state.url} was not put in force (another CRL of its CA was refused); the one in force stays`,
          );
        }
      }
      this.schedule(state);
    }
  }

  /** Whether a fetched CRL waits for a load. */
  get waiting(): boolean {
    return this.states.some((s) => s.phase === 'staged');
  }

  /** The refusals of the URLs' latest CRLs, to report with every load. */
  refusals(): InputError[] {
    return this.states.flatMap((s) => (s.refusal === null ? [] : [s.refusal]));
  }

  /** The trust data now in force: when each URL's CRL expires, to fetch ahead of it. */
  inForce(data: TrustData): void {
    for (const state of this.states) {
      const crls = data.crls.filter((c) => c.file === state.url);
      const nextUpdates = crls.map((c) => c.nextUpdate).filter((t): t is number => t !== null);
      state.freshness =
        crls.length === 0
          ? null
          : {
              thisUpdate: Math.max(...crls.map((c) => c.thisUpdate)),
              nextUpdate: nextUpdates.length === 0 ? null : Math.min(...nextUpdates),
            };
      if (state.phase === 'idle') this.schedule(state);
    }
  }

  /** Fetches every URL now (SIGHUP). */
  refresh(): void {
    for (const state of this.states) void this.fetch(state);
  }

  close(): void {
    this.abort.abort();
    for (const state of this.states) if (state.timer !== null) clearTimeout(state.timer);
  }

  private async fetch(state: UrlState): Promise<void> {
    if (state.phase !== 'idle' || this.abort.signal.aborted) return;
    state.phase = 'fetching';
    state.lastAttempt = Date.now();
    if (state.timer !== null) clearTimeout(state.timer);
    state.timer = null;
    try {
      const result = await fetchCrl(state.url, {
        caPem: this.caPem(state.url),
        timeoutMs: this.settings.timeoutMs,
        maxBytes: this.settings.maxBytes,
        validators: state.meta !== null && existsSync(state.copy) ? state.meta : null,
        destination: state.staging,
        signal: this.abort.signal,
      });
      this.fetchWorked(state);
      if (result.kind === 'fetched') {
        state.phase = 'staged';
        state.staged = result;
        this.log.info(
          { url: state.url, bytes: result.bytes, sha256: result.sha256 },
          `fetched a CRL from ${state.url}; checking it`,
        );
        if (this.started) this.onChange();
        return;
      }
      this.confirm(state);
    } catch (err) {
      if (this.abort.signal.aborted) return;
      // Runs from a timer: whatever went wrong costs this fetch, never the process.
      const problem = err instanceof FetchError ? err.message : `unexpected: ${errorMessage(err)}`;
      state.phase = 'idle';
      crlUrlFetches.inc({ result: 'failure' });
      crlUrlLastFetchSuccess.set({ url: state.url }, 0);
      if (state.logged !== problem) {
        state.logged = problem;
        this.log.error(
          { url: state.url, problem },
          `CRL fetch failed, the CRL in force stays: ${state.url}: ${problem}`,
        );
      }
    }
    if (state.phase === 'idle') this.schedule(state);
  }

  /** A 304: the cached copy is what the server has. */
  private confirm(state: UrlState): void {
    state.phase = 'idle';
    const meta = { ...(state.meta as CacheMeta), fetchedAt: state.lastAttempt };
    this.writeMeta(state, meta);
    crlUrlFetches.inc({ result: 'not_modified' });
    crlUrlLastFetchSuccess.set({ url: state.url }, 1);
    crlUrlLastSuccess.set({ url: state.url }, state.lastAttempt / 1000);
    if (state.refusal !== null) {
      state.refusal = null;
      if (this.started) this.onChange();
    }
  }

  /** A fetched CRL put in force becomes the cached copy. */
  private keep(state: UrlState, fetched: NonNullable<UrlState['staged']>): void {
    try {
      renameSync(state.staging, state.copy);
      syncDirectory(this.settings.cacheDir);
      this.writeMeta(state, {
        url: state.url,
        sha256: fetched.sha256,
        ...fetched.validators,
        fetchedAt: state.lastAttempt,
      });
    } catch (err) {
      this.log.error(
        { url: state.url, copy: state.copy, err: errorMessage(err) },
        `the CRL of ${state.url} is in force but could not be cached`,
      );
    }
    state.refusal = null;
    state.copyDistrusted = false;
    crlUrlFetches.inc({ result: 'success' });
    crlUrlLastFetchSuccess.set({ url: state.url }, 1);
    crlUrlLastSuccess.set({ url: state.url }, state.lastAttempt / 1000);
    this.log.info(
      { url: state.url, bytes: fetched.bytes, sha256: fetched.sha256 },
      `the CRL fetched from ${state.url} is in force and cached`,
    );
  }

  private fetchWorked(state: UrlState): void {
    if (state.logged === '') return;
    state.logged = '';
    this.log.info({ url: state.url }, `CRL fetch works again: ${state.url}`);
  }

  /** The CAs of https:// servers, read at each fetch (a renewed bundle applies at once). */
  private caPem(url: string): string | null {
    const file = this.settings.caFile;
    if (!url.startsWith('https:') || file === null) return null;
    try {
      return readInput('crl-url-ca-file', file).toString('utf8');
    } catch (err) {
      throw new FetchError(err instanceof InputError ? err.message : errorMessage(err));
    }
  }

  private schedule(state: UrlState): void {
    if (this.abort.signal.aborted) return;
    if (state.timer !== null) clearTimeout(state.timer);
    const due = nextFetchAt(state.lastAttempt, this.settings.intervalMs, state.freshness);
    const delay = Math.min(Math.max(due - Date.now(), 0), MAX_TIMER_MS);
    state.timer = setTimeout(() => void this.fetch(state), delay);
    state.timer.unref();
  }

  private writeMeta(state: UrlState, meta: CacheMeta): void {
    const temporary = `${state.metaFile}.${process.pid}.tmp`;
    try {
      writeFileSync(temporary, `${JSON.stringify(meta)}\n`);
      renameSync(temporary, state.metaFile);
      state.meta = meta;
    } catch (err) {
      removeQuietly(temporary);
      this.log.error(
        { url: state.url, file: state.metaFile, err: errorMessage(err) },
        'cannot write the cache metadata of a CRL URL; its next fetch is unconditional',
      );
    }
  }
}

/**
 * When to fetch a URL next: --crl-url-interval after the last attempt; but once the CRL in
 * force from it is in the last tenth of its lifetime (thisUpdate → nextUpdate), or past it, at
 * least every twentieth of that lifetime (never closer than MIN_FETCH_GAP_MS), the first time
 * as that tenth begins.
 */
export function nextFetchAt(
  lastAttempt: number,
  intervalMs: number,
  freshness: { readonly thisUpdate: number; readonly nextUpdate: number | null } | null,
): number {
  const due = lastAttempt + intervalMs;
  if (freshness?.nextUpdate == null) return due;
  const lifetime = Math.max(freshness.nextUpdate - freshness.thisUpdate, 0);
  const lastTenth = freshness.nextUpdate - lifetime / 10;
  if (lastAttempt < lastTenth) return Math.min(due, lastTenth);
  return Math.min(due, lastAttempt + Math.max(lifetime / 20, MIN_FETCH_GAP_MS));
}

/** The file that holds the last good CRL of `url` (a --crl-url, as Config normalises it). */
export function cachedCopyPath(cacheDir: string, url: string): string {
  return join(cacheDir, `${createHash('sha256').update(url).digest('hex')}.crl`);
}

/** The cached copy's metadata; null when absent or not ours (then the next fetch is unconditional). */
function readMeta(state: UrlState): CacheMeta | null {
  try {
    const meta = JSON.parse(readFileSync(state.metaFile, 'utf8')) as Partial<CacheMeta>;
    if (meta.url !== state.url || typeof meta.fetchedAt !== 'number') return null;
    return {
      url: meta.url,
      sha256: String(meta.sha256),
      etag: typeof meta.etag === 'string' ? meta.etag : null,
      lastModified: typeof meta.lastModified === 'string' ? meta.lastModified : null,
      fetchedAt: meta.fetchedAt,
    };
  } catch {
    return null;
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Not there: nothing to remove.
  }
}
