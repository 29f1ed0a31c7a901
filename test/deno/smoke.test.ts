/**
 * kube-crl-proxy under Deno, end to end: the fake kube-apiserver runs in Node, the proxy in
 * Deno (`deno run -A bin/kube-crl-proxy`, the npm `deno` package's binary), the
 * client is the real kubectl. What Deno does differently is asserted here exactly as
 * docs/deno.md states it, so a Deno upgrade that changes it fails this test.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type FakeApiserver, startFakeApiserver } from '../../src/demo/fake-apiserver/index.js';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import {
  type KubectlEnv,
  runKubectl,
  TempDir,
  writeKubeconfig,
} from '../fake-apiserver/testkit.js';
import { makePki, proxyArgs, type TestPki } from '../support/pki.js';
import type { LogLine } from '../support/proxy-process.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DENO = join(REPO, 'node_modules/deno/deno');
const ENTRY = 'bin/kube-crl-proxy';
const REVOKED_AT = '2026-11-01T00:00:00Z';
const DAY = 86_400_000;

/** The proxy as a Deno process, with its JSON log lines. */
class DenoProxy {
  readonly logs: LogLine[] = [];
  private readonly waiters = new Set<() => void>();
  private stderr = '';
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess) {
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const text of lines) this.logs.push(parseLine(text));
      for (const check of [...this.waiters]) check();
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static start(args: readonly string[], denoDir: string): DenoProxy {
    const child = spawn(DENO, ['run', '-A', ENTRY, ...args], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        DENO_DIR: denoDir,
        DENO_NO_UPDATE_CHECK: '1',
        DENO_NO_PROMPT: '1',
      },
    });
    return new DenoProxy(child);
  }

  waitForLog(pred: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = this.logs.find(pred);
        if (line === undefined) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(line);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `no matching log line within ${timeoutMs} ms\nstderr: ${this.stderr}\nlogs: ${this.logs.map((l) => JSON.stringify(l)).join('\n')}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
      this.exited.then((code) => {
        if (!this.waiters.has(check)) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        reject(new Error(`the proxy under Deno exited with ${code}: ${this.stderr}`));
      });
      check();
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

function parseLine(text: string): LogLine {
  try {
    return JSON.parse(text) as LogLine;
  } catch {
    return { level: 'raw', msg: text };
  }
}

let pki: TestPki;
let fake: FakeApiserver;
let proxy: DenoProxy;
let proxyUrl: string;
let tmp: TempDir;
let denoDir: string;
const users: Record<string, IssuedCert> = {};

before(async () => {
  assert.ok(existsSync(DENO), `${DENO} is missing: run npm ci (deno is a devDependency)`);
  pki = await makePki();
  tmp = await TempDir.create('kcp-deno-');
  denoDir = mkdtempSync(join(tmpdir(), 'kcp-deno-dir-'));
  users.alice = await pki.user('alice', ['dev', 'ops']);
  users.bob = await pki.user('bob', ['dev']);
  users.mallory = await pki.user('mallory', ['dev']);
  users.old = await pki.user('old', [], {
    notBefore: new Date(Date.now() - 10 * DAY),
    notAfter: new Date(Date.now() - DAY),
  });
  pki.writeCrl({
    revoked: [{ serial: (users.mallory as IssuedCert).serial, revokedAt: new Date(REVOKED_AT) }],
    crlNumber: 2,
  });
  fake = await startFakeApiserver({
    tls: { cert: pki.apiserver.certPem, key: pki.apiserver.keyPem },
    clientCA: pki.clusterCa.certPem,
    requestheader: { clientCA: pki.frontProxyCa.certPem },
  });
  proxy = DenoProxy.start(proxyArgs(pki, fake.url), denoDir);
  const serving = await proxy.waitForLog((l) => l.msg === 'kube-crl-proxy serving', 60_000);
  proxyUrl = `https://127.0.0.1:${(serving.listen as { port: number }).port}`;
});

after(async () => {
  await proxy?.stop();
  await fake?.close();
  await tmp?.remove();
  if (denoDir !== undefined) rmSync(denoDir, { recursive: true, force: true });
  pki?.cleanup();
});

async function kubectlAs(name: string, options: { http1?: boolean } = {}): Promise<KubectlEnv> {
  const kubeconfig = await writeKubeconfig(
    tmp,
    proxyUrl,
    pki.clusterCa.certPem,
    { cert: users[name] as IssuedCert },
    `${name}.kubeconfig`,
  );
  return {
    kubeconfig,
    cacheDir: tmp.file(`cache-${name}`),
    home: tmp.path,
    ...(options.http1 === true ? { http1: true } : {}),
  };
}

describe('kube-crl-proxy under Deno', () => {
  test('kubectl get nodes, over HTTP/2 and HTTP/1.1, as the certificate user', async () => {
    for (const http1 of [false, true]) {
      const mark = fake.requests.length;
      const result = await runKubectl(await kubectlAs('alice', { http1 }), ['get', 'nodes']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\n\S+\s+Ready/);
      const list = fake.requests.slice(mark).find((r) => r.path === '/api/v1/nodes');
      assert.ok(list, 'the fake saw the list');
      assert.equal(list.authenticatedBy, 'requestheader');
      assert.equal(list.user?.username, 'alice');
      assert.deepEqual(list.user?.groups, ['dev', 'ops', 'system:authenticated']);
      assert.equal(list.protocol, http1 ? 'http/1.1' : 'h2');
    }
  });

  test('a revoked certificate is refused with its reason, and nothing reaches the apiserver', async () => {
    const mark = fake.requests.length;
    const result = await runKubectl(await kubectlAs('mallory'), ['get', '--raw', '/api/v1/nodes']);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr.trim(),
      `error: You must be logged in to the server (client certificate revoked (serial ${(users.mallory as IssuedCert).serial}, issuer CN=kubernetes, revoked ${REVOKED_AT}))`,
    );
    assert.equal(fake.requests.slice(mark).filter((r) => r.user?.username === 'mallory').length, 0);
  });

  test('kubectl exec (a WebSocket upgrade) through the proxy', async () => {
    const result = await runKubectl(await kubectlAs('alice'), [
      'exec',
      'demo',
      '--',
      'echo',
      'hello from deno',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'hello from deno');
  });

  test('a CRL published while running revokes at once (file watching under Deno)', async () => {
    const bob = await kubectlAs('bob');
    assert.equal((await runKubectl(bob, ['get', '--raw', '/api'])).code, 0);
    pki.writeCrl({
      revoked: [
        { serial: (users.mallory as IssuedCert).serial, revokedAt: new Date(REVOKED_AT) },
        { serial: (users.bob as IssuedCert).serial, revokedAt: new Date(REVOKED_AT) },
      ],
      crlNumber: 3,
    });
    await proxy.waitForLog((l) => l.msg === 'snapshot in force' && l.generation === 2);
    const refused = await runKubectl(bob, ['get', '--raw', '/api']);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /client certificate revoked \(serial [0-9A-F]+, issuer CN=kubernetes/,
    );
  });

  test('documented limitation: every chain failure reads as unknown_ca (docs/deno.md)', async () => {
    // Under Node this expired certificate is refused as cert_expired ("client certificate
    // expired at …"): Deno's TLS server reports UNABLE_TO_VERIFY_LEAF_SIGNATURE for every
    // chain failure. Still refused, with a less precise reason.
    const result = await runKubectl(await kubectlAs('old'), ['get', '--raw', '/api']);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr.trim(),
      'error: You must be logged in to the server (client certificate is not signed by a trusted CA (subject CN=old, issuer CN=kubernetes))',
    );
    const logged = await proxy.waitForLog((l) => l.subject === 'CN=old');
    assert.equal(logged.reason, 'unknown_ca');
  });
});
