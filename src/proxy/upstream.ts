/**
 * Connections to the apiserver: the one place that builds upstream TLS options
 * (front-proxy-client certificate, apiserver CA, hostname/IP check), a small warm pool of
 * already-handshaken connections per protocol, and TLS session resumption.
 */
import {
  createSecureContext,
  type SecureContext,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls';
import type { UpstreamTarget } from '../config/config.js';
import { UpstreamError, type UpstreamErrorKind } from '../errors.js';
import type { Logger } from '../log.js';
import { upstreamErrors, zeroSeries } from '../metrics/metrics.js';
import type { Credentials } from '../pki/credentials.js';
import { withoutPeerCertificate } from '../tls/ssl-session.js';
import { containsFrame, FrameType } from './h2/frames.js';

export type UpstreamProtocol = 'h2' | 'http/1.1';

/**
 * Whether the connection presents the front-proxy-client certificate. Only clients with a
 * verified certificate are forwarded as the front proxy (with identity headers); anonymous and
 * bearer-token clients are forwarded on connections without a client certificate, so the
 * apiserver authenticates them exactly as it would without the proxy (kube's authenticator
 * chain answers 401, not anonymous, to a front-proxy certificate that carries no user).
 */
export type UpstreamRole = 'front-proxy' | 'anonymous';

export interface UpstreamOptions {
  readonly target: UpstreamTarget;
  readonly poolSize: number;
  readonly timeoutMs: number;
  readonly log: Logger;
}

/** The warm connections of one protocol and role. */
class Pool {
  readonly idle: Pooled[] = [];
  /** Kept warm once used (front-proxy ones from the start). */
  active: boolean;
  filling = false;

  constructor(
    readonly protocol: UpstreamProtocol,
    readonly role: UpstreamRole,
  ) {
    this.active = role === 'front-proxy';
  }
}

interface Pooled {
  readonly socket: TLSSocket;
  readonly createdAt: number;
  readonly generation: number;
  readonly onClose: () => void;
  /** What the server sent while the connection waited (read so its close is noticed). */
  readonly received: Buffer[];
  readonly onReadable: () => void;
}

/**
 * A pooled connection older than this is replaced: kube-apiserver closes connections that send
 * no request head within its ReadHeaderTimeout (32 s).
 */
const POOL_MAX_AGE_MS = 20_000;

export class Upstream {
  private contexts: Record<UpstreamRole, SecureContext> | null = null;
  private generation = 0;
  private readonly pools: Record<UpstreamProtocol, Record<UpstreamRole, Pool>> = {
    h2: { 'front-proxy': new Pool('h2', 'front-proxy'), anonymous: new Pool('h2', 'anonymous') },
    'http/1.1': {
      'front-proxy': new Pool('http/1.1', 'front-proxy'),
      anonymous: new Pool('http/1.1', 'anonymous'),
    },
  };
  /** The last TLS session of each pool's connections, offered by the next. */
  private readonly sessions = new Map<Pool, Buffer>();
  private readonly refresh: NodeJS.Timeout;
  private closed = false;
  /** When a TLS connection to the apiserver last succeeded (for readiness). */
  lastContactAt = 0;

  constructor(private readonly options: UpstreamOptions) {
    const kinds: UpstreamErrorKind[] = ['connect', 'tls', 'timeout', 'reset', 'protocol'];
    zeroSeries(
      upstreamErrors,
      kinds.map((kind) => ({ kind })),
    );
    this.refresh = setInterval(() => this.recycleStale(), POOL_MAX_AGE_MS / 2);
    this.refresh.unref();
  }

  /** New credentials apply to every connection opened from now on; pooled ones are replaced. */
  setCredentials(credentials: Credentials): void {
    this.contexts = {
      'front-proxy': createSecureContext({
        ca: credentials.upstreamCaPem,
        cert: credentials.proxyClientCertPem,
        key: credentials.proxyClientKeyPem,
      }),
      anonymous: createSecureContext({ ca: credentials.upstreamCaPem }),
    };
    this.generation++;
    this.sessions.clear();
    for (const pool of this.activePools()) {
      this.drainPool(pool);
      this.fill(pool);
    }
  }

  /** A connection for one client connection: from the warm pool when one is ready. */
  async connect(protocol: UpstreamProtocol, role: UpstreamRole): Promise<TLSSocket> {
    const pool = this.pools[protocol][role];
    pool.active = true;
    while (pool.idle.length > 0) {
      const item = pool.idle.pop() as Pooled;
      if (this.usable(item) && !saidGoodbye(protocol, Buffer.concat(item.received))) {
        item.socket.off('close', item.onClose);
        item.socket.off('readable', item.onReadable);
        // The server's opening bytes (its HTTP/2 SETTINGS) go back for the session to read.
        if (item.received.length > 0) item.socket.unshift(Buffer.concat(item.received));
        this.fill(pool);
        return item.socket;
      }
      item.socket.destroy();
    }
    this.fill(pool);
    return this.dial(pool);
  }

  /** A fresh connection that never was and never will be pooled (upgrades). */
  dialFresh(protocol: UpstreamProtocol, role: UpstreamRole): Promise<TLSSocket> {
    return this.dial(this.pools[protocol][role]);
  }

  /** Checks that the apiserver accepts a TLS connection now (readiness). */
  async probe(): Promise<void> {
    const socket = await this.dial(this.pools['http/1.1']['front-proxy']);
    socket.destroy();
  }

  private allPools(): Pool[] {
    return Object.values(this.pools).flatMap((byRole) => Object.values(byRole));
  }

  private activePools(): Pool[] {
    return this.allPools().filter((pool) => pool.active);
  }

  private usable(item: Pooled): boolean {
    return (
      item.generation === this.generation &&
      !item.socket.destroyed &&
      item.socket.readable &&
      Date.now() - item.createdAt < POOL_MAX_AGE_MS
    );
  }

  private dial(pool: Pool): Promise<TLSSocket> {
    if (this.contexts === null) {
      return Promise.reject(new UpstreamError('tls', 'no upstream credentials loaded'));
    }
    const { protocol, role } = pool;
    const context = this.contexts[role];
    const { target, timeoutMs } = this.options;
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({
        host: target.host,
        port: target.port,
        servername: isIpLiteral(target.servername) ? undefined : target.servername,
        secureContext: context,
        ALPNProtocols: [protocol],
        session: this.sessions.get(pool),
      });
      const timer = setTimeout(() => {
        fail(
          new UpstreamError('timeout', `no TLS connection to ${target.url} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      const fail = (err: UpstreamError) => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.destroy();
        upstreamErrors.inc({ kind: err.kind });
        reject(err);
      };
      const onError = (err: NodeJS.ErrnoException) => fail(classify(err, target.url));
      socket.once('error', onError);
      // Errors after the handshake belong to whoever uses the socket; this keeps an error
      // that arrives before they attach from being an uncaught exception.
      socket.on('error', ignore);
      // Kept without the apiserver's certificate: resuming then skips decoding it again.
      // Node emits 'session' only once the server verified (rejectUnauthorized stays on), so
      // no session of a server that failed verification is ever kept (upstream.test.ts).
      socket.on('session', (session: Buffer) =>
        this.sessions.set(pool, withoutPeerCertificate(session)),
      );
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        if (
          socket.alpnProtocol !== protocol &&
          !(protocol === 'http/1.1' && socket.alpnProtocol === false)
        ) {
          fail(new UpstreamError('protocol', `${target.url} did not accept ALPN ${protocol}`));
          return;
        }
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 30_000);
        this.lastContactAt = Date.now();
        resolve(socket);
      });
    });
  }

  private fill(pool: Pool): void {
    if (this.closed || this.contexts === null || pool.filling) return;
    if (pool.idle.length >= this.options.poolSize) return;
    pool.filling = true;
    const generation = this.generation;
    this.dial(pool).then(
      (socket) => {
        pool.filling = false;
        if (this.closed || generation !== this.generation) {
          socket.destroy();
          return;
        }
        const received: Buffer[] = [];
        const item: Pooled = {
          socket,
          createdAt: Date.now(),
          generation,
          onClose: () => removeItem(pool.idle, item),
          received,
          onReadable: () => {
            for (let chunk = socket.read(); chunk !== null; chunk = socket.read())
              received.push(chunk);
          },
        };
        socket.once('close', item.onClose);
        // Read while waiting: a server that says goodbye (GOAWAY, a 408, FIN) must be seen
        // here, not by the first request handed this connection. ('readable', not 'data':
        // removing it later leaves the socket to start flowing for its next reader.)
        socket.on('readable', item.onReadable);
        socket.once('end', () => socket.destroy());
        pool.idle.push(item);
        this.fill(pool);
      },
      (err: UpstreamError) => {
        pool.filling = false;
        this.options.log.debug(
          { err: err.message, protocol: pool.protocol, role: pool.role },
          'warm upstream connection failed',
        );
      },
    );
  }

  private recycleStale(): void {
    for (const pool of this.activePools()) {
      for (const item of [...pool.idle]) {
        if (!this.usable(item)) {
          removeItem(pool.idle, item);
          item.socket.destroy();
        }
      }
      this.fill(pool);
    }
  }

  private drainPool(pool: Pool): void {
    for (const item of pool.idle.splice(0)) item.socket.destroy();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.refresh);
    for (const pool of this.allPools()) this.drainPool(pool);
  }
}

function ignore(): void {}

/**
 * Whether an idle pooled connection's received bytes end it: anything at all on HTTP/1.1 (the
 * server speaks first only to close), a GOAWAY frame on HTTP/2 (after its SETTINGS).
 */
function saidGoodbye(protocol: UpstreamProtocol, received: Buffer): boolean {
  if (protocol === 'http/1.1') return received.length > 0;
  return containsFrame(received, FrameType.Goaway);
}

function removeItem(pool: Pooled[], item: Pooled): void {
  const i = pool.indexOf(item);
  if (i >= 0) pool.splice(i, 1);
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function classify(err: NodeJS.ErrnoException, url: string): UpstreamError {
  const code = err.code ?? '';
  let kind: UpstreamErrorKind = 'connect';
  if (
    code.startsWith('ERR_TLS') ||
    code.startsWith('ERR_SSL') ||
    code.includes('CERT') ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT'
  ) {
    kind = 'tls';
  } else if (code === 'ECONNRESET' || code === 'EPIPE') {
    kind = 'reset';
  } else if (code === 'ETIMEDOUT') {
    kind = 'timeout';
  }
  return new UpstreamError(kind, `${url}: ${err.message}`, { cause: err });
}
