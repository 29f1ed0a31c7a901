/**
 * A serving process: the client listener, the proxy layer and the upstream connections, all
 * reading one current snapshot (trust store and deny list) that `apply` replaces by reference. After each swap — and
 * when a CRL passes its nextUpdate, and every few seconds for certificates that expire — the
 * open connections are judged again and those now refused are closed.
 */
import type { Config, HostPort } from '../config/config.js';
import { type Logger, RateLimitedLog } from '../log.js';
import { sameUpstreamSide } from '../pki/credentials.js';
import { DenyList } from '../pki/deny-list.js';
import { TrustStore } from '../pki/trust-store.js';
import { ProxyLayer } from '../proxy/proxy.js';
import { Upstream } from '../proxy/upstream.js';
import { ClientListener } from '../tls/listener.js';
import { checkCertificate, type VerifyPolicy } from '../tls/verify.js';
import type { SnapshotData } from './snapshot-source.js';

/** Open connections are judged again at least this often (certificates expire). */
const REVERIFY_INTERVAL_MS = 5_000;
/** setTimeout cannot wait longer than this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ProxyServer {
  private trust: TrustStore;
  private deny: DenyList;
  private data: SnapshotData;
  private readonly listener: ClientListener;
  private readonly proxy: ProxyLayer;
  readonly upstream: Upstream;
  private readonly policy: VerifyPolicy;
  private readonly rejectLog: RateLimitedLog;
  private readonly timers: NodeJS.Timeout[] = [];
  private expiryTimer: NodeJS.Timeout | null = null;

  private constructor(
    config: Config,
    data: SnapshotData,
    private readonly log: Logger,
  ) {
    this.data = data;
    this.trust = new TrustStore(data.trust);
    this.deny = new DenyList(data.deny);
    this.policy = {
      requireClientCert: config.requireClientCert,
      crlMissingPolicy: config.crlMissingPolicy,
      crlExpiredPolicy: config.crlExpiredPolicy,
    };
    this.upstream = new Upstream({
      target: config.upstream,
      poolSize: config.upstreamPoolSize,
      timeoutMs: config.upstreamTimeoutMs,
      log,
    });
    this.upstream.setCredentials(data.credentials);
    this.proxy = new ProxyLayer(config, this.upstream, log);
    this.rejectLog = new RateLimitedLog(log, 10, 50);
    this.listener = new ClientListener(
      {
        address: config.listen,
        limits: config.limits,
        tls: config.tls,
        policy: this.policy,
        rejectMode: config.rejectMode,
        trust: () => this.trust,
        deny: () => this.deny,
        handler: this.proxy,
        log,
        rejectLog: this.rejectLog,
      },
      data.credentials,
      this.trust,
    );
    const reverify = setInterval(() => this.closeRefused('periodic'), REVERIFY_INTERVAL_MS);
    const reportSuppressed = setInterval(
      () => this.rejectLog.flush('rejected clients not logged (rate limit)'),
      10_000,
    );
    for (const timer of [reverify, reportSuppressed]) {
      timer.unref();
      this.timers.push(timer);
    }
    this.scheduleExpiry();
  }

  /** Builds and listens; a listen failure is thrown as is (the caller names the flag). */
  static async start(
    config: Config,
    data: SnapshotData,
    log: Logger,
  ): Promise<{ server: ProxyServer; address: HostPort }> {
    const server = new ProxyServer(config, data, log);
    try {
      const address = await server.listener.listen();
      return { server, address };
    } catch (err) {
      server.upstream.close();
      for (const timer of server.timers) clearInterval(timer);
      throw err;
    }
  }

  get generation(): number {
    return this.data.generation;
  }

  /** Swaps in a new snapshot and closes the connections it refuses. */
  apply(data: SnapshotData): void {
    const previous = this.data;
    this.data = data;
    this.trust = new TrustStore(data.trust, this.trust);
    if (data.deny?.digest !== this.deny.data?.digest) this.deny = new DenyList(data.deny);
    this.listener.update(data.credentials, this.trust);
    if (!sameUpstreamSide(data.credentials, previous.credentials)) {
      this.upstream.setCredentials(data.credentials);
    }
    const closed = this.closeRefused('snapshot');
    this.scheduleExpiry();
    this.log.info({ generation: data.generation, closedConnections: closed }, 'snapshot in force');
  }

  private closeRefused(cause: 'snapshot' | 'crl-expiry' | 'periodic'): number {
    const { trust, deny } = this;
    const closed = this.proxy.closeRefused((peer) =>
      checkCertificate(peer, trust, deny, this.policy, Date.now()),
    );
    if (closed > 0 && cause !== 'snapshot')
      this.log.info({ cause, closedConnections: closed }, 'closed connections no longer accepted');
    return closed;
  }

  /** At the next nextUpdate of a CRL in force, --crl-expired-policy applies to open connections too. */
  private scheduleExpiry(): void {
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    if (this.policy.crlExpiredPolicy !== 'reject') return;
    const now = Date.now();
    const upcoming = this.data.trust.issuers
      .map((i) => i.nextUpdate)
      .filter((t): t is number => t !== null && t > now)
      .sort((a, b) => a - b)[0];
    if (upcoming === undefined) return;
    this.expiryTimer = setTimeout(
      () => {
        this.closeRefused('crl-expiry');
        this.scheduleExpiry();
      },
      Math.min(upcoming - now + 1, MAX_TIMER_MS),
    );
    this.expiryTimer.unref();
  }

  /**
   * Graceful stop: no new connection; HTTP/2 sessions get GOAWAY; watches and logs -f end as
   * complete responses; in-flight requests finish; idle connections close. Whatever is still
   * open after `graceMs` (typically exec and port-forward tunnels) is closed then.
   */
  async drain(graceMs: number): Promise<void> {
    this.stopTimers();
    this.listener.stopAccepting();
    const open = this.proxy.registry.connections();
    for (const connection of open) connection.drain();
    const finished = await this.proxy.registry.waitUntilEmpty(graceMs);
    const leftover = this.proxy.registry.connections();
    for (const connection of leftover)
      connection.terminate({ reason: 'shutdown grace period over', status: null });
    this.upstream.close();
    this.log.info(
      { connections: open.length, closedAtDeadline: finished ? 0 : leftover.length, graceMs },
      'drained',
    );
  }

  /** Immediate stop: every connection closed now. */
  close(): void {
    this.stopTimers();
    this.listener.stopAccepting();
    for (const connection of this.proxy.registry.connections())
      connection.terminate({ reason: 'shutting down', status: null });
    this.upstream.close();
  }

  private stopTimers(): void {
    for (const timer of this.timers) clearInterval(timer);
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
  }

  get openConnections(): number {
    return this.proxy.registry.size;
  }
}
