/**
 * `kube-crl-proxy demo` as a new user meets it (issue 19.6): the real binary starts the demo,
 * and the commands it prints are run as printed — kubectl, `crl revoke`, the deny file line
 * through /bin/sh — and what it says the user will see is what kubectl prints.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { killChild, OutputWatcher, TempDir } from '../fake-apiserver/testkit.js';
import { PATH_WITH_TEST_NODE, spawnBin } from '../support/proxy-process.js';

const REVOKED_ALERT = 'Unable to connect to the server: remote error: tls: revoked certificate';
const DENIED_ALERT = 'Unable to connect to the server: remote error: tls: access denied';

let tmp: TempDir;
let demo: ReturnType<typeof spawnBin>;
let demoExit: Promise<number | null>;
let printed = '';
const children: ChildProcessWithoutNullStreams[] = [];

/** A terminal of the user's: its own HOME and kubectl cache, the test's node on PATH. */
function shellEnv(): NodeJS.ProcessEnv {
  return { PATH: PATH_WITH_TEST_NODE, HOME: tmp.path, KUBECACHEDIR: tmp.file('kube-cache') };
}

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** One printed line, pasted into a shell. */
function sh(line: string): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      '/bin/sh',
      ['-c', line],
      { env: shellEnv(), timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : Number(err.code ?? 1), stdout, stderr });
      },
    );
  });
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}

/** The printed line that `pick` finds (indented commands are compared without the indent). */
function line(pick: (l: string) => boolean, what: string): string {
  const found = printed
    .split('\n')
    .map((l) => l.trim())
    .find(pick);
  assert.ok(found !== undefined, `the demo prints ${what}:\n${printed}`);
  return found;
}

before(async () => {
  tmp = await TempDir.create('kcp-demo-');
  // TMPDIR: the demo's directory goes under the test's, removed even if the demo is killed.
  demo = spawnBin(['demo'], { TMPDIR: tmp.path });
  demoExit = new Promise((resolve) => demo.once('exit', (code) => resolve(code)));
  let stderr = '';
  demo.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the demo printed no commands within 60 s:\n${printed}\n${stderr}`)),
      60_000,
    );
    demo.stdout.on('data', (d: Buffer) => {
      printed += d.toString();
      if (printed.includes('Ctrl-C stops the demo')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void demoExit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited with ${code}:\n${printed}\n${stderr}`));
    });
  });
});

after(async () => {
  for (const child of children) await killChild(child);
  if (demo !== undefined && demo.exitCode === null && demo.signalCode === null) {
    demo.kill('SIGKILL');
    await demoExit;
  }
  await tmp?.remove();
});

describe('npm run demo', () => {
  test('revoke alice while she watches, deny bob, the admin still gets in, as printed', {
    timeout: 180_000,
  }, async () => {
    const dir = /^ {2}files in (\S+): /m.exec(printed)?.[1];
    assert.ok(dir !== undefined, printed);
    assert.ok(dir.startsWith(tmp.path), dir);
    const aliceSerial = /^ {2}alice +\(.*\) +serial ([0-9A-F]+)$/m.exec(printed)?.[1];
    assert.ok(aliceSerial !== undefined, printed);

    const whoami = line((l) => l.endsWith('/alice.kubeconfig auth whoami'), "alice's whoami");
    const watch = line((l) => l.endsWith('/alice.kubeconfig get pods -w'), "alice's watch");
    const revoke = line((l) => l.includes(' crl revoke '), 'the crl revoke line');
    const checkCert = line((l) => l.includes(' check-cert '), 'the check-cert line');
    const denyBob = line((l) => l.startsWith("echo '- { spki: "), 'the deny line for bob');
    const bob = line((l) => l.endsWith('/bob.kubeconfig get pods'), "bob's kubectl");
    const admin = line((l) => l.endsWith('/admin.kubeconfig get pods'), "the admin's kubectl");
    const mallory = line((l) => l.endsWith('/mallory.kubeconfig get pods'), "mallory's kubectl");
    // What the demo says the user will see.
    const watchEnd = line((l) => l.startsWith('Failure   Unauthorized   '), 'how the watch ends');
    assert.ok(watchEnd.endsWith(', revoked …)'), watchEnd);
    line((l) => l === REVOKED_ALERT, "alice's next command");
    line((l) => l === DENIED_ALERT, "bob's refusal");
    assert.match(revoke, /^\/\S+\/bin\/kube-crl-proxy crl revoke \/\S+\/alice\.crt /);

    // Before: alice and bob get in, mallory (revoked in ca.crl) does not.
    const before = await sh(whoami);
    assert.equal(before.code, 0, before.stderr);
    assert.match(
      before.stdout,
      /^ATTRIBUTE\s+VALUE\nUsername\s+alice\nGroups\s+\[developers oncall/,
    );
    assert.equal((await sh(bob)).code, 0);
    const refused = await sh(mallory);
    assert.equal(refused.code, 1);
    assert.equal(lastLine(refused.stderr), REVOKED_ALERT);

    // alice's watch, open in "a second terminal", then the revoke line.
    const watcher = spawn('/bin/sh', ['-c', `exec ${watch}`], { env: shellEnv() });
    children.push(watcher);
    const watched = new OutputWatcher(watcher);
    const watchExit = new Promise<number | null>((resolve) => watcher.once('close', resolve));
    await watched.waitFor(/^web-1\s/);
    const revoked = await sh(revoke);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(
      revoked.stdout,
      new RegExp(`^revoked ${aliceSerial} \\(.*\\), reason keyCompromise\\n`),
    );
    const watchCode = await Promise.race([
      watchExit,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`alice's watch still runs:\n${watched.output}`)), 15_000),
      ),
    ]);
    assert.equal(watchCode, 0);
    const ended = watched.output.split('\n').slice(-3);
    assert.equal(ended[0], 'STATUS    REASON         MESSAGE');
    assert.match(
      ended[1] ?? '',
      new RegExp(
        `^Failure   Unauthorized   client certificate revoked \\(serial ${aliceSerial}, issuer CN=kubernetes, revoked \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\)$`,
      ),
    );
    assert.ok(ended[1]?.startsWith(watchEnd.slice(0, -'…)'.length)), `${ended[1]}\n${watchEnd}`);
    assert.equal(ended[2], '');

    // Her next commands, and check-cert.
    for (const next of [whoami, watch.replace(/ -w$/, '')]) {
      const result = await sh(next);
      assert.equal(result.code, 1, next);
      assert.equal(lastLine(result.stderr), REVOKED_ALERT);
    }
    const checked = await sh(checkCert);
    assert.equal(checked.code, 1, checked.stderr);
    assert.match(
      checked.stdout,
      new RegExp(`^refused \\(revoked\\): client certificate revoked \\(serial ${aliceSerial}, `),
    );

    // The deny line for bob; the proxy reloads the file by itself.
    const denied = await sh(denyBob);
    assert.equal(denied.code, 0, denied.stderr);
    assert.ok(!existsSync(`${dir}/deny.yaml.new`));
    let bobNow = await sh(bob);
    for (let i = 0; i < 100 && bobNow.code === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      bobNow = await sh(bob);
    }
    assert.equal(bobNow.code, 1, bobNow.stdout);
    assert.equal(lastLine(bobNow.stderr), DENIED_ALERT);

    // The admin still gets in.
    const adminNow = await sh(admin);
    assert.equal(adminNow.code, 0, adminNow.stderr);
    assert.match(adminNow.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
    assert.match(adminNow.stdout, /^web-1\s/m);

    // Ctrl-C (SIGINT) stops the demo and removes its files.
    demo.kill('SIGINT');
    assert.equal(await demoExit, 0);
    assert.ok(printed.includes(`removed ${dir}\n`), printed);
    assert.equal(existsSync(dir), false);
  });
});
