/**
 * Test helpers for the fake apiserver and the tests that drive it: kubeconfigs in temp
 * directories, the real kubectl with its own discovery cache, and raw HTTP/1.1 and HTTP/2
 * clients that can send repeated header lines.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as http2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { type KubeconfigCredentials, kubeconfigFor } from '../../src/demo/kubeconfig.js';
import type { IssuedCert } from '../../src/demo/pki-factory.js';

export const KUBECTL = '/usr/bin/kubectl';

/** A directory under the OS temp dir, removed by `remove()` (call it from t.after). */
export class TempDir {
  private constructor(readonly path: string) {}

  static async create(prefix = 'fake-apiserver-test-'): Promise<TempDir> {
    return new TempDir(await mkdtemp(join(tmpdir(), prefix)));
  }

  file(name: string): string {
    return join(this.path, name);
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}

export type KubeconfigUser = KubeconfigCredentials;

/** A kubeconfig with everything embedded (-data fields), written into `dir`. */
export async function writeKubeconfig(
  dir: TempDir,
  server: string,
  caPem: string,
  user: KubeconfigUser,
  name = 'kubeconfig',
): Promise<string> {
  const path = dir.file(name);
  await writeFile(path, kubeconfigFor(server, caPem, 'user', user, 'fake'), { mode: 0o600 });
  return path;
}

export interface KubectlEnv {
  readonly kubeconfig: string;
  /** Its own discovery/HTTP cache, never ~/.kube/cache. */
  readonly cacheDir: string;
  readonly home: string;
  readonly http1?: boolean;
}

let kubectlEnvs = 0;

/**
 * A kubectl environment of its own in `dir`: a new kubeconfig for `user` against `server`, and
 * a new (cold) discovery cache unless `cacheDir` names one to share.
 */
export async function newKubectlEnv(
  dir: TempDir,
  server: string,
  caPem: string,
  user: KubeconfigUser,
  options: { cacheDir?: string; http1?: boolean } = {},
): Promise<KubectlEnv> {
  kubectlEnvs++;
  return {
    kubeconfig: await writeKubeconfig(dir, server, caPem, user, `kubeconfig-${kubectlEnvs}`),
    cacheDir: options.cacheDir ?? dir.file(`cache-${kubectlEnvs}`),
    home: dir.path,
    ...(options.http1 === true ? { http1: true } : {}),
  };
}

function kubectlEnv(env: KubectlEnv): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: env.home,
    KUBECONFIG: env.kubeconfig,
    KUBECACHEDIR: env.cacheDir,
    ...(env.http1 === true ? { DISABLE_HTTP2: '1' } : {}),
  };
}

export interface KubectlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs kubectl to completion, killed after `timeoutMs`. */
export function runKubectl(
  env: KubectlEnv,
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawnKubectl(env, args);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`kubectl ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`),
      );
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export function spawnKubectl(
  env: KubectlEnv,
  args: readonly string[],
): ChildProcessWithoutNullStreams {
  return spawn(KUBECTL, ['--kubeconfig', env.kubeconfig, '--cache-dir', env.cacheDir, ...args], {
    env: kubectlEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Collects a child's stdout and resolves when some line matches, or rejects on timeout. */
export class OutputWatcher {
  private text = '';
  private readonly waiting = new Set<() => void>();

  constructor(child: ChildProcessWithoutNullStreams) {
    child.stdout.on('data', (d: Buffer) => {
      this.text += d.toString();
      for (const check of [...this.waiting]) check();
    });
  }

  get output(): string {
    return this.text;
  }

  waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = this.text.split('\n').find((l) => pattern.test(l));
        if (line === undefined) return;
        this.waiting.delete(check);
        clearTimeout(timer);
        resolve(line);
      };
      const timer = setTimeout(() => {
        this.waiting.delete(check);
        reject(
          new Error(`no output line matched ${pattern} within ${timeoutMs} ms:\n${this.text}`),
        );
      }, timeoutMs);
      this.waiting.add(check);
      check();
    });
  }
}

/** Stops a child process for good and waits until it has exited. */
export async function killChild(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

export interface ClientOptions {
  readonly ca: string;
  readonly cert?: IssuedCert;
  readonly method?: string;
  /** Header lines in order; a name may repeat (each entry is sent as its own line). */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body?: string;
  readonly timeoutMs?: number;
}

export interface ClientResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** Groups repeated names into arrays: both Node clients send an array as separate lines. */
function headerObject(lines: ReadonlyArray<readonly [string, string]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of lines) out[name] = [...(out[name] ?? []), value];
  return out;
}

/** One HTTP/1.1 request on a fresh TLS connection. */
export function requestH1(url: string, opts: ClientOptions): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, {
      method: opts.method ?? 'GET',
      ca: opts.ca,
      ...(opts.cert === undefined ? {} : { cert: opts.cert.certPem, key: opts.cert.keyPem }),
      headers: headerObject(opts.headers ?? []),
      agent: false,
      timeout: opts.timeoutMs ?? 10_000,
    });
    req.on('timeout', () => req.destroy(new Error(`${url} timed out`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.end(opts.body);
  });
}

/** One HTTP/2 request on a fresh session. */
export function requestH2(url: string, opts: ClientOptions): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const session = http2Connect(target.origin, {
      ca: opts.ca,
      ...(opts.cert === undefined ? {} : { cert: opts.cert.certPem, key: opts.cert.keyPem }),
    });
    const fail = (err: Error) => {
      session.destroy();
      reject(err);
    };
    session.on('error', fail);
    const timer = setTimeout(() => fail(new Error(`${url} timed out`)), opts.timeoutMs ?? 10_000);
    const stream = session.request({
      ':method': opts.method ?? 'GET',
      ':path': `${target.pathname}${target.search}`,
      ...headerObject(opts.headers ?? []),
    });
    let body = '';
    let head: Record<string, string | string[] | undefined> = {};
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      head = h;
    });
    stream.on('data', (d: string) => {
      body += d;
    });
    stream.on('error', fail);
    stream.on('end', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status: Number(head[':status']), headers: head, body });
    });
    stream.end(opts.body);
  });
}

/** A TLS connection to `url`, offering `alpn` when given, once its handshake is done. */
export function connectTls(
  url: string,
  ca: string,
  cert?: IssuedCert,
  alpn?: string[],
): Promise<TLSSocket> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: target.hostname,
      port: Number(target.port),
      ca,
      ...(alpn === undefined ? {} : { ALPNProtocols: alpn }),
      ...(cert === undefined ? {} : { cert: cert.certPem, key: cert.keyPem }),
    });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A raw TLS connection (no ALPN, like kubectl's upgrade dialers) that keeps what it reads. */
export class RawTlsClient {
  private received = Buffer.alloc(0);
  private readonly waiting = new Set<() => void>();
  readonly closed: Promise<void>;

  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      for (const check of [...this.waiting]) check();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async connect(url: string, ca: string, cert?: IssuedCert): Promise<RawTlsClient> {
    return new RawTlsClient(await connectTls(url, ca, cert));
  }

  get text(): string {
    return this.received.toString('latin1');
  }

  /** Resolves once the bytes read so far satisfy `done`. */
  waitFor(done: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done(this.text)) return;
        this.waiting.delete(check);
        clearTimeout(timer);
        resolve(this.text);
      };
      const timer = setTimeout(() => {
        this.waiting.delete(check);
        reject(
          new Error(`raw client: condition not met within ${timeoutMs} ms; got:\n${this.text}`),
        );
      }, timeoutMs);
      this.waiting.add(check);
      check();
    });
  }

  /** Resolves when a whole Content-Length response has been read. */
  waitForResponse(timeoutMs = 10_000): Promise<string> {
    return this.waitFor((text) => {
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
      return length === null || text.length >= end + 4 + Number(length[1]);
    }, timeoutMs);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** An HTTP/1.1 WebSocket upgrade request head, as gorilla (kubectl) writes it. */
export function websocketUpgradeHead(
  path: string,
  host: string,
  protocol = 'v5.channel.k8s.io',
): string {
  return [
    `GET ${path} HTTP/1.1`,
    `Host: ${host}`,
    'User-Agent: kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Protocol: ${protocol}`,
    '',
    '',
  ].join('\r\n');
}
