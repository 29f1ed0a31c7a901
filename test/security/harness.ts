/**
 * Shared wiring for the security batteries: the real proxy binary between test clients and
 * the fake kube-apiserver, assertions on what the fake recorded, raw HTTP/1.1 over TLS, and a
 * recording upstream for what the fake does not record (request trailers).
 */
import assert from 'node:assert/strict';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import {
  type FakeApiserver,
  type FakeApiserverOptions,
  type RecordedRequest,
  startFakeApiserver,
} from '../../src/demo/fake-apiserver/index.js';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { RawTlsClient, requestH1, requestH2 } from '../fake-apiserver/testkit.js';
import { makePki, proxyArgs, type TestPki } from '../support/pki.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';

/** Every injected identity value carries this marker: it must never show up upstream. */
export const SPOOF = 'spoof';

/** The requestheader names a proxy and the fake agree on. */
export interface IdentityNames {
  readonly user: readonly string[];
  readonly group: readonly string[];
  readonly uid: readonly string[];
  readonly extraPrefixes: readonly string[];
}

export const STANDARD_NAMES: IdentityNames = {
  user: ['X-Remote-User'],
  group: ['X-Remote-Group'],
  uid: ['X-Remote-Uid'],
  extraPrefixes: ['X-Remote-Extra-'],
};

export interface Stack {
  readonly fake: FakeApiserver;
  readonly proxy: ProxyProcess;
  readonly names: IdentityNames;
  /** Requests the fake recorded after `mark` (a value of fake.requests.length). */
  since(mark: number): RecordedRequest[];
  stop(): Promise<void>;
}

export interface StackOptions {
  readonly names?: IdentityNames;
  readonly proxyFlags?: readonly string[];
  readonly tokens?: FakeApiserverOptions['tokens'];
}

/**
 * The fake apiserver (requestheader auth with `names`) and the real proxy in front of it,
 * configured with the same names.
 */
export async function startStack(pki: TestPki, options: StackOptions = {}): Promise<Stack> {
  const names = options.names ?? STANDARD_NAMES;
  const fake = await startFakeApiserver({
    tls: { cert: pki.apiserver.certPem, key: pki.apiserver.keyPem },
    clientCA: pki.clusterCa.certPem,
    requestheader: {
      clientCA: pki.frontProxyCa.certPem,
      usernameHeaders: [...names.user],
      groupHeaders: [...names.group],
      extraHeadersPrefix: [...names.extraPrefixes],
    },
    ...(options.tokens === undefined ? {} : { tokens: options.tokens }),
  });
  const flags =
    names === STANDARD_NAMES
      ? []
      : [
          `--requestheader-username-headers=${names.user.join(',')}`,
          `--requestheader-group-headers=${names.group.join(',')}`,
          `--requestheader-uid-headers=${names.uid.join(',')}`,
          `--requestheader-extra-headers-prefix=${names.extraPrefixes.join(',')}`,
        ];
  let proxy: ProxyProcess;
  try {
    proxy = await startProxyProcess(
      proxyArgs(pki, fake.url, [...flags, ...(options.proxyFlags ?? [])]),
    );
  } catch (err) {
    await fake.close();
    throw err;
  }
  return {
    fake,
    proxy,
    names,
    since: (mark) => fake.requests.slice(mark),
    async stop() {
      await proxy.stop();
      await fake.close();
    },
  };
}

let caseNumber = 0;

/** A query parameter that tags one request, so its record is found whatever else the fake saw. */
export function nextTag(): string {
  caseNumber++;
  return `case=${caseNumber}`;
}

function normalizeName(name: string): string {
  return name.trim().toLowerCase().replaceAll('_', '-');
}

/**
 * Header lines that an apiserver (or a lenient proxy behind us) could read as identity: the
 * standard names and `names`, compared the forgiving way (case, `_` for `-`, spaces).
 */
export function identityLines(
  rec: RecordedRequest,
  names: IdentityNames = STANDARD_NAMES,
): Array<[string, string]> {
  const exact = new Set(
    [STANDARD_NAMES, names].flatMap((n) => [...n.user, ...n.group, ...n.uid]).map(normalizeName),
  );
  const prefixes = [STANDARD_NAMES, names].flatMap((n) => n.extraPrefixes).map(normalizeName);
  return rec.rawHeaders
    .filter(([name]) => {
      const n = normalizeName(name);
      return exact.has(n) || prefixes.some((p) => n.startsWith(p));
    })
    .map(([name, value]) => [name, value]);
}

/** How Node (the fake) reads header bytes: latin1. A UTF-8 name arrives as its bytes. */
export function wire(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

export interface Expected {
  readonly user: string;
  readonly groups: readonly string[];
}

/**
 * The request reached the fake as the front proxy carrying exactly the proxy's identity
 * lines — `<user header>: CN` and one `<group header>: O` per O, nothing else that reads as
 * identity — and the fake authenticated exactly that user.
 */
export function assertIdentityExactly(
  rec: RecordedRequest,
  expected: Expected,
  names: IdentityNames = STANDARD_NAMES,
  label = `${rec.method} ${rec.path}`,
): void {
  assertIdentityBytes(
    rec,
    { user: wire(expected.user), groups: expected.groups.map(wire) },
    names,
    label,
  );
}

/** assertIdentityExactly with the names given as the bytes on the wire (one char per byte). */
export function assertIdentityBytes(
  rec: RecordedRequest,
  expected: Expected,
  names: IdentityNames = STANDARD_NAMES,
  label = `${rec.method} ${rec.path}`,
): void {
  const userHeader = (names.user[0] as string).toLowerCase();
  const groupHeader = (names.group[0] as string).toLowerCase();
  assert.deepEqual(
    identityLines(rec, names),
    [
      [userHeader, expected.user],
      ...expected.groups.map((g): [string, string] => [groupHeader, g]),
    ],
    `${label}: identity header lines`,
  );
  assert.equal(rec.peerCommonName, 'front-proxy-client', `${label}: upstream client cert`);
  assert.equal(rec.authenticatedBy, 'requestheader', `${label}: authenticated by`);
  assert.deepEqual(
    rec.user,
    { username: expected.user, groups: [...expected.groups, 'system:authenticated'], extra: {} },
    `${label}: user the fake authenticated`,
  );
}

/** assertIdentityExactly, and no injected value survived anywhere in the request's headers. */
export function assertForwardedAs(
  rec: RecordedRequest,
  expected: Expected,
  names: IdentityNames = STANDARD_NAMES,
  label = `${rec.method} ${rec.path}`,
): void {
  assertIdentityExactly(rec, expected, names, label);
  assertNoSpoof(rec, label);
}

/** No header line of `rec` carries the SPOOF marker, in its name or its value. */
export function assertNoSpoof(rec: RecordedRequest, label = `${rec.method} ${rec.path}`): void {
  const leaked = rec.rawHeaders.filter(
    ([name, value]) => name.toLowerCase().includes(SPOOF) || value.toLowerCase().includes(SPOOF),
  );
  assert.deepEqual(leaked, [], `${label}: injected values reached the apiserver`);
}

/** A raw HTTP/1.1 connection (no ALPN, like kubectl's upgrade dialers) with `bytes` written. */
export async function rawH1(
  url: string,
  ca: string,
  cert: IssuedCert | undefined,
  bytes: string | Uint8Array,
): Promise<RawTlsClient> {
  const client = await RawTlsClient.connect(url, ca, cert);
  client.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  return client;
}

export interface RawResponse {
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** Whether the whole body has arrived (by Content-Length or the last chunk). */
  readonly complete: boolean;
}

/**
 * The HTTP/1.1 responses in `text`, one after the other: framed by Content-Length or chunked
 * encoding; a response with neither runs to the end of the text.
 */
export function parseResponses(text: string): RawResponse[] {
  const out: RawResponse[] = [];
  let pos = 0;
  while (pos < text.length) {
    const end = text.indexOf('\r\n\r\n', pos);
    if (end < 0) break;
    const head = text.slice(pos, end);
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let next: number;
    let complete: boolean;
    if (length !== null) {
      next = end + 4 + Number(length[1]);
      complete = next <= text.length;
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const empty = text.startsWith('0\r\n\r\n', end + 4);
      const last = text.indexOf('\r\n0\r\n\r\n', end);
      next = empty ? end + 9 : last < 0 ? text.length : last + 7;
      complete = empty || last >= 0;
    } else {
      next = text.length;
      complete = false;
    }
    out.push({ status, head, body: text.slice(end + 4, Math.min(next, text.length)), complete });
    if (!complete) break;
    pos = next;
  }
  return out;
}

/** Status codes of the responses read so far, in order. */
export function statusCodes(text: string): number[] {
  return parseResponses(text).map((r) => r.status);
}

/** How many complete responses `text` holds. */
export function completeResponses(text: string): number {
  return parseResponses(text).filter((r) => r.complete).length;
}

/** Resolves true once the connection is closed, false if it is still open after `ms`. */
export async function closedWithin(client: RawTlsClient, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const open = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([client.closed.then((): true => true), open]);
  clearTimeout(timer);
  return result;
}

/** Lets in-flight forwarding settle before asserting that nothing (more) reached the fake. */
export function settle(ms = 300): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What a recording upstream saw of one request. */
export interface UpstreamRecord {
  readonly protocol: string;
  readonly method: string;
  readonly path: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly trailers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
  /** False when the request was cut (h2 RST_STREAM, h1 connection lost mid-body). */
  readonly complete: boolean;
}

export interface RecordingUpstream {
  readonly url: string;
  readonly records: readonly UpstreamRecord[];
  /** Resolves with the first record (past or future) matching `pred`, once its body has ended. */
  waitFor(pred: (r: UpstreamRecord) => boolean, timeoutMs?: number): Promise<UpstreamRecord>;
  close(): Promise<void>;
}

function pairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2)
    out.push([(raw[i] as string).toLowerCase(), raw[i + 1] as string]);
  return out;
}

/**
 * A minimal apiserver stand-in (HTTP/2 and HTTP/1.1, the apiserver's serving cert) that
 * records each request's headers, body and trailers once the body has ended, and answers 200.
 * The fake records no trailers; this does.
 */
export async function startRecordingUpstream(pki: TestPki): Promise<RecordingUpstream> {
  const records: UpstreamRecord[] = [];
  const waiters = new Set<(r: UpstreamRecord) => void>();
  const sockets = new Set<Socket>();
  const server = createSecureServer({
    cert: pki.apiserver.certPem,
    key: pki.apiserver.keyPem,
    allowHTTP1: true,
    requestCert: true,
    rejectUnauthorized: false,
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d: string) => {
      body += d;
    });
    let aborted = false;
    req.on('aborted', () => {
      aborted = true;
    });
    req.on('end', () => {
      const cut = req.httpVersionMajor === 2 ? (req.stream.rstCode ?? 0) !== 0 : false;
      const record: UpstreamRecord = {
        protocol: req.httpVersionMajor === 2 ? 'h2' : 'http/1.1',
        method: req.method,
        path: req.url,
        headers: pairs(req.rawHeaders).filter(([n]) => !n.startsWith(':')),
        trailers: pairs(req.rawTrailers),
        body,
        complete: !aborted && !cut,
      };
      records.push(record);
      for (const waiter of [...waiters]) waiter(record);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `https://127.0.0.1:${address.port}`,
    records,
    waitFor(pred, timeoutMs = 10_000) {
      const seen = records.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = (r: UpstreamRecord) => {
          if (!pred(r)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          resolve(r);
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`recording upstream: no matching request within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/**
 * A test PKI, alice (group dev) and a stack on it, for a file or a describe: start() from its
 * before(), stop() from its after().
 */
export class AliceStack {
  private started: { readonly pki: TestPki; readonly alice: IssuedCert; stack?: Stack } | undefined;

  constructor(private readonly options: StackOptions = {}) {}

  get pki(): TestPki {
    return this.running().pki;
  }

  get alice(): IssuedCert {
    return this.running().alice;
  }

  get stack(): Stack {
    const { stack } = this.running();
    if (stack === undefined) throw new Error('the stack did not start');
    return stack;
  }

  async start(): Promise<void> {
    const pki = await makePki();
    this.started = { pki, alice: await pki.user('alice', ['dev']) };
    this.started.stack = await startStack(pki, this.options);
  }

  async stop(): Promise<void> {
    await this.started?.stack?.stop();
    this.started?.pki.cleanup();
  }

  /**
   * The proxy process is alive and still forwards an HTTP/1.1 and an HTTP/2 request for `path`
   * with alice's certificate.
   */
  async assertServing(path: string): Promise<void> {
    assert.equal(this.stack.proxy.child.exitCode, null, 'the proxy process is alive');
    for (const request of [requestH1, requestH2]) {
      const res = await request(`${this.stack.proxy.url}${path}`, {
        ca: this.pki.clusterCa.certPem,
        cert: this.alice,
      });
      assert.equal(res.status, 200, res.body);
    }
  }

  private running(): { readonly pki: TestPki; readonly alice: IssuedCert; stack?: Stack } {
    if (this.started === undefined) throw new Error('the stack is used before start()');
    return this.started;
  }
}

export interface RecordedProxy {
  readonly recorder: RecordingUpstream;
  readonly proxy: ProxyProcess;
  stop(): Promise<void>;
}

/** The real proxy in front of a recording upstream. */
export async function startRecordedProxy(pki: TestPki): Promise<RecordedProxy> {
  const recorder = await startRecordingUpstream(pki);
  let proxy: ProxyProcess;
  try {
    proxy = await startProxyProcess(proxyArgs(pki, recorder.url));
  } catch (err) {
    await recorder.close();
    throw err;
  }
  return {
    recorder,
    proxy,
    async stop() {
      await proxy.stop();
      await recorder.close();
    },
  };
}
