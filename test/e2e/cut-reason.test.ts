/**
 * What the real kubectl 1.32 shows when the proxy cuts an open session because its
 * certificate is no longer accepted (issue 19.4): the exact text of each case, through the
 * real binary in front of the fake apiserver. Each case runs as its own user, revoked in the
 * CRL (or denied by the deny file) while kubectl runs.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import {
  KUBECTL,
  killChild,
  OutputWatcher,
  TempDir,
  writeKubeconfig,
} from '../fake-apiserver/testkit.js';
import { TestCluster } from '../support/cluster.js';
import { atomicWrite } from '../support/pki.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { Revoker } from '../support/revoker.js';
import { until } from '../support/wait.js';

const REVOKED_AT = new Date('2026-11-01T00:00:00Z');
/** kubectl's own note when DISABLE_HTTP2 is set, a klog line on stderr. */
const HTTP2_DISABLED = /^I\d{4} [\d:.]+ +\d+ http\.go:\d+\] HTTP2 has been explicitly disabled\n/;

const cluster = new TestCluster();
let proxy: ProxyProcess;
let tmp: TempDir;
let revoker: Revoker;
let denyFile: string;
let users = 0;

before(async () => {
  await cluster.start();
  tmp = await TempDir.create('kcp-cut-');
  revoker = new Revoker(cluster.pki, 'cut-reason.crl', REVOKED_AT);
  denyFile = cluster.pki.write('cut-reason-deny.yaml', '[]\n');
  proxy = await cluster.proxy([`--crl-file=${revoker.file}`, `--deny-file=${denyFile}`]);
});

after(async () => {
  await tmp?.remove();
  await cluster.stop();
});

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The message the proxy gives for this user's revocation or denial. */
  readonly reason: string;
}

interface Case {
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** A stdout line that shows the session is open; else: its stream session at the fake. */
  readonly ready?: RegExp;
  /** How the certificate stops being accepted: revoked in the CRL (default), or denied. */
  readonly by?: 'crl' | 'deny-file';
}

/**
 * Runs kubectl as a new user with its own kubeconfig and cache, revokes or denies the user
 * once the session is open, and returns how kubectl ended.
 */
async function cutWhileRunning(c: Case): Promise<Outcome> {
  const n = ++users;
  const user = await cluster.pki.user(`cut-${n}`, ['dev']);
  const kubeconfig = await writeKubeconfig(
    tmp,
    proxy.url,
    cluster.pki.clusterCa.certPem,
    { cert: user },
    `kubeconfig-${n}`,
  );
  const child: ChildProcessWithoutNullStreams = spawn(
    KUBECTL,
    ['--kubeconfig', kubeconfig, '--cache-dir', tmp.file(`cache-${n}`), ...c.args],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp.path, ...c.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  try {
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const output = new OutputWatcher(child);
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const sessionsBefore = cluster.fake.sessions.length;
    if (c.ready !== undefined) await output.waitFor(c.ready);
    else
      await until(
        () => cluster.fake.sessions.slice(sessionsBefore).some((s) => s.endedAt === null),
        'a stream session at the apiserver',
      );
    // The streams are set up by now on every transport (attach and exec need a moment).
    await new Promise((resolve) => setTimeout(resolve, 300));
    if (c.by === 'deny-file') await deny(`cut-${n}`, user);
    else await revoker.revoke(user, proxy);
    const code = await Promise.race([
      exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`kubectl still running:\n${stderr}`)), 10_000),
      ),
    ]);
    const reason =
      c.by === 'deny-file'
        ? `client certificate denied by --deny-file entry 1 (user cut-${n}): laptop stolen`
        : `client certificate revoked (serial ${user.serial}, issuer CN=kubernetes, revoked 2026-11-01T00:00:00Z)`;
    return { code, stdout: output.output, stderr, reason };
  } finally {
    await killChild(child);
  }
}

/** Denies user `name` (the only entry) and waits until the proxy has cut its connections. */
async function deny(name: string, user: IssuedCert): Promise<void> {
  atomicWrite(denyFile, `- {user: ${name}, reason: laptop stolen}\n`);
  await proxy.waitForLog(
    (l) => l.msg.startsWith('closing open connections') && l.serial === user.serial,
    5000,
  );
}

/** `kubectl get pods -w`'s table, then the Status the watch ended with. */
function watchOutput(reason: string): RegExp {
  const escaped = reason.replace(/[()]/g, '\\$&');
  return new RegExp(
    `^NAME   READY   STATUS    RESTARTS   AGE\\ndemo   1/1     Running   0          \\d+s\\nSTATUS    REASON         MESSAGE\\nFailure   Unauthorized   ${escaped}\\n$`,
  );
}

describe('a cut watch ends with the reason', () => {
  test('kubectl get pods -w over HTTP/2 prints the Status and exits 0', {
    timeout: 60_000,
  }, async () => {
    const out = await cutWhileRunning({ args: ['get', 'pods', '-w'], ready: /^demo\s/ });
    assert.match(out.stdout, watchOutput(out.reason));
    assert.equal(out.stderr, '');
    assert.equal(out.code, 0);
  });

  test('denied by the deny file: kubectl get pods -w prints the entry and its reason', {
    timeout: 60_000,
  }, async () => {
    const out = await cutWhileRunning({
      args: ['get', 'pods', '-w'],
      ready: /^demo\s/,
      by: 'deny-file',
    });
    assert.match(out.stdout, watchOutput(out.reason));
    assert.equal(out.code, 0);
  });

  test('kubectl get pods -w over HTTP/1.1 prints the Status and exits 0', {
    timeout: 60_000,
  }, async () => {
    const out = await cutWhileRunning({
      args: ['get', 'pods', '-w'],
      env: { DISABLE_HTTP2: '1' },
      ready: /^demo\s/,
    });
    assert.match(out.stdout, watchOutput(out.reason));
    assert.match(out.stderr, new RegExp(`${HTTP2_DISABLED.source}$`));
    assert.equal(out.code, 0);
  });
});

describe('an HTTP/2 GOAWAY carries the reason', () => {
  test('kubectl logs -f prints it with the GOAWAY and exits 1', { timeout: 60_000 }, async () => {
    cluster.fake.appendLog('demo', 'a line');
    const out = await cutWhileRunning({ args: ['logs', '-f', 'demo'], ready: /^a line$/ });
    assert.match(
      out.stderr,
      new RegExp(
        `^error: http2: server sent GOAWAY and closed the connection; LastStreamID=\\d+, ErrCode=NO_ERROR, debug="${out.reason.replace(/[()]/g, '\\$&')}"\n$`,
      ),
    );
    assert.equal(out.code, 1);
  });
});

describe('exec and attach over WebSocket get the Status on the error channel', () => {
  test('kubectl exec prints the reason and exits 1', { timeout: 60_000 }, async () => {
    const out = await cutWhileRunning({ args: ['exec', 'demo', '--', 'sleep', '100'] });
    assert.equal(out.stderr, `error: ${out.reason}\n`);
    assert.equal(out.stdout, '');
    assert.equal(out.code, 1);
    assert.equal(cluster.fake.sessions.at(-1)?.transport, 'websocket');
  });

  test('kubectl attach prints the reason and exits 1', { timeout: 60_000 }, async () => {
    const out = await cutWhileRunning({ args: ['attach', 'demo'] });
    assert.equal(
      out.stderr,
      `If you don't see a command prompt, try pressing enter.\nerror: ${out.reason}\n`,
    );
    assert.equal(out.code, 1);
    assert.equal(cluster.fake.sessions.at(-1)?.transport, 'websocket');
  });
});

describe('where the protocol has no room for the reason', () => {
  test('kubectl logs -f over HTTP/1.1: "unexpected EOF", exit 1', { timeout: 60_000 }, async () => {
    cluster.fake.appendLog('demo', 'a line');
    const out = await cutWhileRunning({
      args: ['logs', '-f', 'demo'],
      env: { DISABLE_HTTP2: '1' },
      ready: /^a line$/,
    });
    assert.match(out.stderr, new RegExp(`${HTTP2_DISABLED.source}error: unexpected EOF\\n$`));
    assert.equal(out.code, 1);
  });

  test('kubectl exec over SPDY (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false): no message, exit 0', {
    timeout: 60_000,
  }, async () => {
    const out = await cutWhileRunning({
      args: ['exec', 'demo', '--', 'sleep', '100'],
      env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
    });
    assert.deepEqual([out.stdout, out.stderr, out.code], ['', '', 0]);
    assert.equal(cluster.fake.sessions.at(-1)?.transport, 'spdy');
  });

  for (const [name, env, transport] of [
    ['SPDY over WebSocket', {}, 'spdy-over-websocket'],
    ['SPDY', { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }, 'spdy'],
  ] as const) {
    test(`kubectl port-forward (${name}): "lost connection to pod", exit 1`, {
      timeout: 60_000,
    }, async () => {
      const out = await cutWhileRunning({
        args: ['port-forward', 'pod/demo', ':8080'],
        env,
      });
      assert.equal(out.stderr, 'error: lost connection to pod\n');
      assert.equal(out.code, 1);
      assert.equal(cluster.fake.sessions.at(-1)?.transport, transport);
    });
  }
});
