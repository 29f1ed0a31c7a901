/**
 * The real kubectl 1.32.4 streaming through `via`: straight to the fake apiserver, or through
 * kube-crl-proxy in front of it. exec, attach, port-forward and logs on kubectl's default
 * transports (WebSocket v5, SPDY inside WebSocket) and on the SPDY fallbacks
 * (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, KUBECTL_PORT_FORWARD_WEBSOCKETS=false), each
 * asserting from fake.sessions which transport actually carried it and, through the proxy,
 * that every upgrade arrived as the certificate's user with all its groups.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, type TestContext, test } from 'node:test';
import {
  type FakeApiserver,
  type StreamSession,
  startFakeApiserver,
} from '../../src/demo/fake-apiserver/index.js';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import {
  KUBECTL,
  killChild,
  OutputWatcher,
  TempDir,
  writeKubeconfig,
} from '../fake-apiserver/testkit.js';
import { makePki, proxyArgs, type TestPki } from './pki.js';
import { startProxyProcess } from './proxy-process.js';
import { until } from './wait.js';

const TEST_TIMEOUT = 120_000;
const MB = 1024 * 1024;

interface Transport {
  readonly name: string;
  readonly env: Readonly<Record<string, string>>;
  readonly exec: StreamSession['transport'];
  readonly portForward: StreamSession['transport'];
}

const TRANSPORTS: readonly Transport[] = [
  { name: 'WebSocket (default)', env: {}, exec: 'websocket', portForward: 'spdy-over-websocket' },
  {
    name: 'SPDY (fallback)',
    env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false', KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' },
    exec: 'spdy',
    portForward: 'spdy',
  },
];

export type Via = 'direct' | 'proxy';

interface Kubectl {
  readonly fake: FakeApiserver;
  /** Runs kubectl to completion (bounded), feeding `stdin` and collecting raw stdout. */
  run(args: readonly string[], options?: RunOptions): Promise<Result>;
  /** Starts kubectl; the caller waits on its output. Killed in t.after. */
  start(
    args: readonly string[],
    options?: { env?: Record<string, string> },
  ): ChildProcessWithoutNullStreams;
  /** argv for running kubectl with this setup's kubeconfig (for wrappers like script). */
  argv(args: readonly string[]): string[];
  readonly env: NodeJS.ProcessEnv;
}

interface RunOptions {
  readonly stdin?: Buffer | string;
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
}

interface Result {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Polls until `done` holds; fails after `timeoutMs`. */
function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** One local connection through `kubectl port-forward`: sends `data`, reads the echo to EOF. */
function echoThrough(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`echo through :${port} incomplete after 60 s`));
    }, 60_000);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    // Written in pieces so both directions run at once, as a real client would.
    let offset = 0;
    const writeMore = (): void => {
      while (offset < data.length) {
        const piece = data.subarray(offset, offset + 256 * 1024);
        offset += piece.length;
        if (!socket.write(piece)) {
          socket.once('drain', writeMore);
          return;
        }
      }
      socket.end();
    };
    socket.once('connect', writeMore);
  });
}

/** Defines the streaming tests, kubectl talking to the fake `via` the proxy or directly. */
export function defineStreamingTests(via: Via): void {
  let pki: TestPki;
  let cert: IssuedCert;

  before(async () => {
    pki = await makePki();
    cert = await pki.user('alice', ['dev', 'ops']);
  });
  after(() => pki?.cleanup());

  async function setup(t: TestContext, transport: Transport): Promise<Kubectl> {
    const fake = await startFakeApiserver({
      tls: { cert: pki.apiserver.certPem, key: pki.apiserver.keyPem },
      clientCA: pki.clusterCa.certPem,
      requestheader: { clientCA: pki.frontProxyCa.certPem },
    });
    t.after(() => fake.close());
    let server = fake.url;
    if (via === 'proxy') {
      const proxy = await startProxyProcess(proxyArgs(pki, fake.url));
      t.after(() => proxy.stop());
      server = proxy.url;
    }
    const dir = await TempDir.create('kubectl-streaming-');
    t.after(() => dir.remove());
    const kubeconfig = await writeKubeconfig(dir, server, pki.clusterCa.certPem, { cert });
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir.path,
      KUBECONFIG: kubeconfig,
      KUBECACHEDIR: dir.file('cache'),
      ...transport.env,
    };
    const argv = (args: readonly string[]): string[] => [
      KUBECTL,
      '--kubeconfig',
      kubeconfig,
      '--cache-dir',
      dir.file('cache'),
      ...args,
    ];
    const children: ChildProcessWithoutNullStreams[] = [];
    t.after(async () => {
      await Promise.all(children.map((child) => killChild(child)));
      assertIdentityOfUpgrades(fake);
    });
    const start = (args: readonly string[], options: { env?: Record<string, string> } = {}) => {
      const [command, ...rest] = argv(args);
      const child = spawn(command as string, rest, {
        env: { ...env, ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      children.push(child);
      return child;
    };
    const run = (args: readonly string[], options: RunOptions = {}): Promise<Result> =>
      new Promise((resolve, reject) => {
        const child = start(args, options.env ? { env: options.env } : {});
        const stdout: Buffer[] = [];
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => stdout.push(d));
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        const timeoutMs = options.timeoutMs ?? 30_000;
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`kubectl ${args.join(' ')}: no exit within ${timeoutMs} ms\n${stderr}`));
        }, timeoutMs);
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout: Buffer.concat(stdout), stderr });
        });
        child.stdin.on('error', () => undefined);
        child.stdin.end(options.stdin ?? '');
      });
    return { fake, run, start, argv, env };
  }

  /** Every exec/attach/port-forward/log request arrived as the certificate's user and groups. */
  function assertIdentityOfUpgrades(fake: FakeApiserver): void {
    const streaming = fake.requests.filter((r) => /\/(exec|attach|portforward|log)$/.test(r.path));
    for (const request of streaming) {
      assert.equal(request.user?.username, 'alice', `${request.method} ${request.path}`);
      assert.deepEqual(request.user?.groups, ['dev', 'ops', 'system:authenticated']);
      assert.equal(request.authenticatedBy, via === 'proxy' ? 'requestheader' : 'x509');
      if (via === 'proxy') assert.equal(request.peerCommonName, 'front-proxy-client');
    }
  }

  function onlySession(fake: FakeApiserver): StreamSession {
    assert.equal(fake.sessions.length, 1, JSON.stringify(fake.sessions));
    return fake.sessions[0] as StreamSession;
  }

  for (const transport of TRANSPORTS) {
    test(`${transport.name}: kubectl exec prints the command's output as the request's user`, {
      timeout: TEST_TIMEOUT,
    }, async (t) => {
      const k = await setup(t, transport);
      const echo = await k.run(['exec', 'demo', '--', 'echo', 'hi']);
      assert.equal(echo.code, 0, echo.stderr);
      assert.equal(echo.stdout.toString(), 'hi\n');
      const session = onlySession(k.fake);
      assert.equal(session.transport, transport.exec);
      assert.equal(session.kind, 'exec');
      assert.equal(session.endedBy, 'server');
      const id = await k.run(['exec', 'demo', '--', 'sh', '-c', 'id -un; echo to-stderr >&2']);
      assert.equal(id.code, 0, id.stderr);
      assert.equal(id.stdout.toString(), 'alice\n');
      assert.match(id.stderr, /^to-stderr$/m);
    });

    test(`${transport.name}: kubectl exec -i cat returns 10 MB of stdin byte for byte`, {
      timeout: TEST_TIMEOUT,
    }, async (t) => {
      const k = await setup(t, transport);
      const input = randomBytes(10 * MB);
      const result = await k.run(['exec', '-i', 'demo', '--', 'cat'], {
        stdin: input,
        timeoutMs: 60_000,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.length, input.length);
      assert.equal(sha256(result.stdout), sha256(input));
      const session = onlySession(k.fake);
      assert.equal(session.transport, transport.exec);
      assert.equal(session.bytesIn, input.length);
    });

    test(`${transport.name}: kubectl exec exits with the command's exit code`, {
      timeout: TEST_TIMEOUT,
    }, async (t) => {
      const k = await setup(t, transport);
      const result = await k.run(['exec', 'demo', '--', 'sh', '-c', 'exit 3']);
      assert.equal(result.code, 3);
      assert.match(result.stderr, /command terminated with exit code 3/);
      const script = await k.run(['exec', 'demo', '--', 'sh', '-c', 'echo X; exit 42']);
      assert.equal(script.code, 42);
      assert.equal(script.stdout.toString(), 'X\n');
      assert.equal(k.fake.sessions[0]?.transport, transport.exec);
    });

    test(`${transport.name}: kubectl exec of a missing executable fails like containerd`, {
      timeout: TEST_TIMEOUT,
    }, async (t) => {
      const k = await setup(t, transport);
      const result = await k.run(['exec', 'demo', '--', 'nosuch']);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        /^error: Internal error occurred: .*OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": executable file not found in \$PATH: unknown$/m,
      );
    });

    test(`${transport.name}: kubectl attach -i shows new log lines and echoes stdin`, {
      timeout: TEST_TIMEOUT,
    }, async (t) => {
      const k = await setup(t, transport);
      k.fake.appendLog('demo', 'history, not shown by attach');
      const child = k.start(['attach', '-i', 'demo']);
      const output = new OutputWatcher(child);
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      await until(() => k.fake.sessions.length === 1, 'attach session');
      // Attach shows output from the moment the process is attached, which (on SPDY) is once
      // kubectl has opened all its streams: tick until the first line comes through.
      const ticker = setInterval(() => k.fake.appendLog('demo', 'tick'), 100);
      try {
        await output.waitFor(/^tick$/);
      } finally {
        clearInterval(ticker);
      }
      k.fake.appendLog('demo', 'appended while attached');
      await output.waitFor(/^appended while attached$/);
      child.stdin.write('hello from stdin\n');
      await output.waitFor(/^hello from stdin$/);
      child.stdin.end();
      assert.equal(await exited, 0);
      assert.doesNotMatch(output.output, /history/);
      const session = onlySession(k.fake);
      assert.equal(session.kind, 'attach');
      assert.equal(session.transport, transport.exec);
    });

    test(`${transport.name}: kubectl port-forward moves 10 MB each way over 3 connections at once`, {
      timeout: TEST_TIMEOUT,
    }, async (t) => {
      const k = await setup(t, transport);
      const child = k.start(['port-forward', 'pod/demo', ':8080']);
      const line = await new OutputWatcher(child).waitFor(
        /^Forwarding from 127\.0\.0\.1:\d+ -> 8080$/,
      );
      const port = Number(/:(\d+) ->/.exec(line)?.[1]);
      const inputs = [randomBytes(10 * MB), randomBytes(10 * MB), randomBytes(10 * MB)];
      const echoes = await Promise.all(inputs.map((input) => echoThrough(port, input)));
      echoes.forEach((echo, i) => {
        assert.equal(echo.length, (inputs[i] as Buffer).length, `connection ${i}`);
        assert.equal(sha256(echo), sha256(inputs[i] as Buffer), `connection ${i}`);
      });
      const session = onlySession(k.fake);
      assert.equal(session.transport, transport.portForward);
      assert.equal(session.kind, 'portforward');
      assert.equal(session.bytesIn, 30 * MB);
      assert.equal(session.bytesOut, 30 * MB);
      assert.equal(session.endedAt, null);
      await killChild(child);
      await until(() => session.endedBy === 'client', 'port-forward session end', 2_000);
    });

    test(`${transport.name}: a killed kubectl ends its exec session (as the client) within a second`, {
      timeout: TEST_TIMEOUT,
    }, async (t) => {
      const k = await setup(t, transport);
      const child = k.start(['exec', '-i', 'demo', '--', 'sleep', '100']);
      await until(() => k.fake.sessions.length === 1, 'exec session');
      const session = onlySession(k.fake);
      // The process runs once the streams exist; give kubectl that moment before killing it.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const killedAt = Date.now();
      await killChild(child);
      await until(() => session.endedAt !== null, 'session end', 2_000);
      assert.equal(session.endedBy, 'client');
      assert.ok(
        (session.endedAt ?? 0) - killedAt < 1_000,
        `${(session.endedAt ?? 0) - killedAt} ms`,
      );
    });

    test(`${transport.name}: kubectl exec -it gets a terminal of the client's size`, {
      timeout: TEST_TIMEOUT,
      skip: existsSync('/usr/bin/script') ? false : 'needs script(1) for a pty',
    }, async (t) => {
      const k = await setup(t, transport);
      const quoted = k
        .argv(['exec', '-it', 'demo', '--', 'stty', 'size'])
        .map((a) => `'${a.replaceAll("'", "'\\''")}'`);
      const child = spawn(
        '/usr/bin/script',
        ['-qfec', `stty cols 123 rows 45; ${quoted.join(' ')}`, '/dev/null'],
        {
          env: { ...k.env, TERM: 'xterm' },
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      t.after(() => killChild(child));
      const output = new OutputWatcher(child);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 0, output.output);
      assert.match(output.output, /^45 123\r$/m);
      assert.equal(onlySession(k.fake).transport, transport.exec);
    });
  }

  for (const http1 of [false, true]) {
    test(`kubectl logs -f over ${http1 ? 'HTTP/1.1' : 'HTTP/2'} shows lines appended after it started`, {
      timeout: TEST_TIMEOUT,
    }, async (t) => {
      const k = await setup(t, TRANSPORTS[0] as Transport);
      k.fake.appendLog('demo', 'first line');
      const child = k.start(['logs', '-f', 'demo'], http1 ? { env: { DISABLE_HTTP2: '1' } } : {});
      const output = new OutputWatcher(child);
      await output.waitFor(/^first line$/);
      k.fake.appendLog('demo', 'appended later');
      await output.waitFor(/^appended later$/);
      const session = onlySession(k.fake);
      assert.equal(session.kind, 'log');
      assert.equal(session.transport, 'http');
      const logRequest = k.fake.requests.find((r) => r.path.endsWith('/log'));
      assert.equal(logRequest?.protocol, http1 ? 'http/1.1' : 'h2');
      assert.match(logRequest?.query ?? '', /follow=true/);
      await killChild(child);
      await until(() => session.endedBy === 'client', 'log session end', 2_000);

      const plain = await k.run(['logs', 'demo']);
      assert.equal(plain.stdout.toString(), 'first line\nappended later\n');
    });
  }
}
