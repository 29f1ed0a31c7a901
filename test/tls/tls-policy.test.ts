/**
 * The client-facing TLS policy as kube-apiserver's (issue 17): TLS versions and cipher suites
 * chosen by `--tls-min-version` and `--tls-cipher-suites` and preferred in Go's order,
 * renegotiation refused and the connection closed, and the session tickets OpenSSL sends,
 * which never resume a session. Every check is a real `openssl s_client` against the real
 * binary.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  DEFAULT_TLS_CIPHER_SUITES,
  parseTlsCipherSuites,
  resolveTlsPolicy,
} from '../../src/config/tls-policy.js';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { TestCluster } from '../support/cluster.js';
import { proxyArgs } from '../support/pki.js';
import { type ProxyProcess, runBin } from '../support/proxy-process.js';

const cluster = new TestCluster();
interface Identity {
  readonly cert: string;
  readonly key: string;
  readonly issued: IssuedCert;
}
let alice: Identity;

before(async () => {
  await cluster.start();
  alice = await identity('alice');
});

after(() => cluster.stop());

async function identity(name: string): Promise<Identity> {
  const issued = await cluster.pki.user(name, ['dev']);
  return {
    cert: cluster.pki.write(`${name}.crt`, issued.certPem),
    key: cluster.pki.write(`${name}.key`, issued.keyPem),
    issued,
  };
}

function proxyWith(extra: string[] = []): Promise<ProxyProcess> {
  return cluster.proxy(['--upstream-pool-size=0', ...extra]);
}

interface SClient {
  readonly child: ChildProcess;
  /** stdout and stderr so far (-msg lines included). */
  output(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  readonly exited: Promise<number | null>;
}

/** `openssl s_client -msg` against 127.0.0.1:port, with `who`'s certificate (none: null). */
function sClient(port: number, args: readonly string[], who: Identity | null = alice): SClient {
  const presented = who === null ? [] : ['-cert', who.cert, '-key', who.key];
  const child = spawn(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-CAfile',
      cluster.pki.files.clientCa,
      '-msg',
      ...presented,
      ...args,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let text = '';
  const waiters = new Set<() => void>();
  const append = (d: Buffer) => {
    text += d;
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
  void exited.then(() => clearTimeout(kill));
  return {
    child,
    output: () => text,
    exited,
    waitFor: (pattern, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(text)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`s_client output never matched ${pattern}:\n${text}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

interface Handshake {
  /** e.g. TLSv1.2, or null when no handshake completed. */
  readonly protocol: string | null;
  readonly cipher: string | null;
  readonly output: string;
}

/** One handshake, then a moment for post-handshake messages (tickets), then EOF. */
async function handshake(
  port: number,
  args: readonly string[],
  who: Identity | null = alice,
): Promise<Handshake> {
  const client = sClient(port, args, who);
  await new Promise((r) => setTimeout(r, 500));
  client.child.stdin?.end();
  await client.exited;
  const output = client.output();
  const done = /^New, (TLSv1\.[0-3]), Cipher is (\S+)$/m.exec(output);
  return { protocol: done?.[1] ?? null, cipher: done?.[2] ?? null, output };
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, 'gm'))?.length ?? 0;
}

describe('TLS versions', () => {
  let proxy: ProxyProcess;
  before(async () => {
    proxy = await proxyWith();
  });

  test('default (VersionTLS12): TLS 1.1 is refused; TLS 1.2 and TLS 1.3 are served', async () => {
    // SECLEVEL=0: OpenSSL 3 clients do not even offer TLS 1.1 at their default level.
    const old = await handshake(proxy.port, ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
    assert.equal(old.protocol, null, old.output);
    assert.match(old.output, /<<< .*Alert.*protocol_version|alert protocol version/);
    assert.equal((await handshake(proxy.port, ['-tls1_2'])).protocol, 'TLSv1.2');
    assert.equal((await handshake(proxy.port, ['-tls1_3'])).protocol, 'TLSv1.3');
  });

  test('VersionTLS13: TLS 1.2 is refused, TLS 1.3 served', async () => {
    const strict = await proxyWith(['--tls-min-version=VersionTLS13']);
    const tls12 = await handshake(strict.port, ['-tls1_2']);
    assert.equal(tls12.protocol, null, tls12.output);
    assert.match(tls12.output, /protocol_version|protocol version/);
    assert.equal((await handshake(strict.port, ['-tls1_3'])).protocol, 'TLSv1.3');
  });

  test('TLS 1.3 suites in Go order: AES-128-GCM first for a client that prefers AES-256', async () => {
    const result = await handshake(proxy.port, [
      '-tls1_3',
      '-ciphersuites',
      'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256',
    ]);
    assert.equal(result.cipher, 'TLS_AES_128_GCM_SHA256');
  });
});

describe('TLS 1.2 cipher suites', () => {
  let proxy: ProxyProcess;
  before(async () => {
    proxy = await proxyWith();
  });

  test('the default list is Go 1.23 default list, by OpenSSL names that name the same suites', async () => {
    const policy = resolveTlsPolicy('VersionTLS12', DEFAULT_TLS_CIPHER_SUITES);
    const tls12 = policy.ciphers.split(':').filter((c) => !c.startsWith('TLS_'));
    const stdnames = await new Promise<string>((resolve, reject) =>
      execFile('openssl', ['ciphers', '-stdname', tls12.join(':')], (err, out) =>
        err ? reject(err) : resolve(out),
      ),
    );
    // Lines read "IANA_NAME - OPENSSL-NAME  TLSv1.2 Kx=… Au=… Enc=… Mac=…", the TLS 1.3
    // suites (named alike in both) first.
    const pairs = stdnames
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/))
      .map(([iana, , openssl]) => [iana, openssl])
      .filter(([, openssl]) => !openssl?.startsWith('TLS_'));
    assert.deepEqual(
      pairs,
      policy.cipherSuites.map((name, i) => [name, tls12[i]]),
    );
    assert.deepEqual(policy.cipherSuites, [
      'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
      'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
      'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
      'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
      'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
      'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
      'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA',
      'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA',
      'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA',
      'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA',
    ]);
  });

  test('default: a suite outside the list is refused, those in it are served', async () => {
    // In OpenSSL's and Node's defaults, not in Go's.
    for (const outside of ['ECDHE-ECDSA-AES256-SHA384', 'ECDHE-ECDSA-AES128-SHA256']) {
      const refused = await handshake(proxy.port, ['-tls1_2', '-cipher', outside]);
      assert.equal(refused.protocol, null, `${outside}: ${refused.output}`);
      assert.match(refused.output, /handshake_failure|handshake failure/);
    }
    for (const listed of [
      'ECDHE-ECDSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-CHACHA20-POLY1305',
      'ECDHE-ECDSA-AES256-SHA',
    ]) {
      const served = await handshake(proxy.port, ['-tls1_2', '-cipher', listed]);
      assert.equal(served.cipher, listed, served.output);
    }
  });

  test("the server's preference decides, as in Go; ChaCha20 first for a client that puts it first", async () => {
    const aes = await handshake(proxy.port, [
      '-tls1_2',
      '-cipher',
      'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256',
    ]);
    assert.equal(aes.cipher, 'ECDHE-ECDSA-AES128-GCM-SHA256');
    const chacha = await handshake(proxy.port, [
      '-tls1_2',
      '-cipher',
      'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256',
    ]);
    assert.equal(chacha.cipher, 'ECDHE-ECDSA-CHACHA20-POLY1305');
  });

  test('--tls-cipher-suites: only the suites named', async () => {
    const narrow = await proxyWith([
      '--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256',
    ]);
    const listed = await handshake(narrow.port, ['-tls1_2']);
    assert.equal(listed.cipher, 'ECDHE-ECDSA-AES256-GCM-SHA384');
    const other = await handshake(narrow.port, [
      '-tls1_2',
      '-cipher',
      'ECDHE-ECDSA-AES128-GCM-SHA256',
    ]);
    assert.equal(other.protocol, null, other.output);
    // TLS 1.3 suites are not configurable, as in Go: all three stay on.
    const tls13 = await handshake(narrow.port, [
      '-tls1_3',
      '-ciphersuites',
      'TLS_CHACHA20_POLY1305_SHA256',
    ]);
    assert.equal(tls13.cipher, 'TLS_CHACHA20_POLY1305_SHA256');
  });
});

describe('a new serving certificate', () => {
  test('keeps the policy: the rebuilt context has the same versions and suites', async () => {
    const certFile = cluster.pki.write('policy-serving.crt', cluster.pki.serving.certPem);
    const keyFile = cluster.pki.write('policy-serving.key', cluster.pki.serving.keyPem);
    const proxy = await proxyWith([
      `--tls-cert-file=${certFile}`,
      `--tls-private-key-file=${keyFile}`,
      '--tls-min-version=VersionTLS13',
      '--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
    ]);
    const rotated = await cluster.pki.clusterCa.issue({
      commonName: 'kube-crl-proxy-rotated',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
    });
    writeFileSync(keyFile, rotated.keyPem);
    writeFileSync(certFile, rotated.certPem);
    const deadline = Date.now() + 10_000;
    let served = await handshake(proxy.port, ['-tls1_3']);
    while (!/CN ?= ?kube-crl-proxy-rotated/.test(served.output) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      served = await handshake(proxy.port, ['-tls1_3']);
    }
    assert.match(served.output, /CN ?= ?kube-crl-proxy-rotated/);
    const tls12 = await handshake(proxy.port, ['-tls1_2']);
    assert.equal(tls12.protocol, null, tls12.output);
    const order = await handshake(proxy.port, [
      '-tls1_3',
      '-ciphersuites',
      'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256',
    ]);
    assert.equal(order.cipher, 'TLS_AES_128_GCM_SHA256');
  });
});

describe('TLS flags: bad values are refused at start', () => {
  test('one line naming the flag, exit code 2', async () => {
    const cases: [string, RegExp][] = [
      [
        '--tls-min-version=VersionTLS10',
        /^kube-crl-proxy: --tls-min-version: VersionTLS10 is insecure/,
      ],
      [
        '--tls-min-version=VersionTLS11',
        /^kube-crl-proxy: --tls-min-version: VersionTLS11 is insecure/,
      ],
      [
        '--tls-min-version=TLSv1.2',
        /^kube-crl-proxy: --tls-min-version: unknown TLS version "TLSv1.2"/,
      ],
      [
        '--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256',
        /^kube-crl-proxy: --tls-cipher-suites: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 is insecure/,
      ],
      [
        '--tls-cipher-suites=TLS_RSA_WITH_AES_128_GCM_SHA256',
        /^kube-crl-proxy: --tls-cipher-suites: TLS_RSA_WITH_AES_128_GCM_SHA256 is insecure/,
      ],
      [
        '--tls-cipher-suites=ECDHE-ECDSA-AES128-GCM-SHA256',
        /^kube-crl-proxy: --tls-cipher-suites: unknown cipher suite "ECDHE-ECDSA-AES128-GCM-SHA256"/,
      ],
      [
        '--tls-cipher-suites=TLS_AES_128_GCM_SHA256',
        /^kube-crl-proxy: --tls-cipher-suites: names no TLS 1\.2 cipher suite/,
      ],
    ];
    for (const [flag, expected] of cases) {
      const result = await runBin(proxyArgs(cluster.pki, 'https://127.0.0.1:1', [flag]));
      assert.equal(result.code, 2, `${flag}: ${result.stderr}`);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0] ?? '', expected);
    }
  });

  test("kube-apiserver's spellings: the legacy ChaCha20 names, any order, TLS 1.3 only with VersionTLS13", () => {
    assert.deepEqual(
      parseTlsCipherSuites(
        'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305',
      ),
      ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'],
    );
    const tls13Only = resolveTlsPolicy('VersionTLS13', 'TLS_AES_128_GCM_SHA256');
    assert.deepEqual(tls13Only.cipherSuites, []);
    assert.equal(
      tls13Only.ciphers,
      'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
    );
  });
});

/**
 * A TCP relay that plays a client which ignores the server's alerts: from the first alert
 * record the proxy sends, nothing more of the client's reaches the proxy, not even its close.
 * Whether the proxy then closes the connection is the proxy's own doing.
 */
class AlertIgnoringRelay {
  private readonly server: Server;
  private readonly upstreams: Socket[] = [];
  /** Resolves when the proxy closes a connection after sending an alert on it. */
  readonly proxyClosedAfterAlert: Promise<void>;
  private onProxyClosedAfterAlert: () => void = () => {};

  private constructor(proxyPort: number) {
    this.proxyClosedAfterAlert = new Promise((resolve) => {
      this.onProxyClosedAfterAlert = resolve;
    });
    this.server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: proxyPort });
      this.upstreams.push(upstream);
      let alerted = false;
      let pending = Buffer.alloc(0);
      upstream.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
          if (pending[0] === 21) alerted = true; // content type alert (RFC 5246 6.2.1)
          pending = pending.subarray(5 + pending.readUInt16BE(3));
        }
        client.write(chunk);
      });
      client.on('data', (chunk: Buffer) => {
        if (!alerted) upstream.write(chunk);
      });
      client.on('error', () => {});
      upstream.on('error', () => {});
      client.on('close', () => {
        if (!alerted) upstream.destroy();
      });
      upstream.on('close', () => {
        if (alerted) this.onProxyClosedAfterAlert();
        client.destroy();
      });
    });
  }

  static async start(proxyPort: number): Promise<{ relay: AlertIgnoringRelay; port: number }> {
    const relay = new AlertIgnoringRelay(proxyPort);
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    const address = relay.server.address();
    assert.ok(address !== null && typeof address === 'object');
    return { relay, port: address.port };
  }

  close(): void {
    for (const s of this.upstreams) s.destroy();
    this.server.close();
  }
}

describe('TLS 1.2 renegotiation', () => {
  for (const anonymous of [false, true]) {
    test(`refused${anonymous ? ' (no client certificate)' : ' (client certificate)'}: no second handshake, and the proxy closes the connection`, async () => {
      const proxy = await proxyWith();
      const { relay, port } = await AlertIgnoringRelay.start(proxy.port);
      try {
        const client = sClient(port, ['-tls1_2', '-crlf'], anonymous ? null : alice);
        await client.waitFor(/^New, TLSv1\.2, Cipher is/m);
        client.child.stdin?.write('GET /version HTTP/1.1\nHost: localhost\n\n');
        await client.waitFor(/^HTTP\/1\.1 \d{3} /m);
        client.child.stdin?.write('R\n');
        await client.waitFor(/RENEGOTIATING/);
        const closed = await Promise.race([
          relay.proxyClosedAfterAlert.then(() => 'closed by the proxy'),
          new Promise((r) => setTimeout(() => r('still open after 5 s'), 5000)),
        ]);
        assert.equal(closed, 'closed by the proxy');
        client.child.stdin?.end();
        await client.exited;
        const out = client.output();
        assert.match(out, /<<< TLS 1\.2, Alert \[length 0002\], warning no_renegotiation/);
        assert.equal(count(out, /^<<< TLS 1\.2, Handshake \[length [0-9a-f]+\], ServerHello$/), 1);
        assert.equal(count(out, /^<<< TLS 1\.2, Handshake \[length [0-9a-f]+\], Finished$/), 1);
        assert.equal(count(out, /^HTTP\/1\.1 \d{3} /), 1);
        await proxy.waitForLog((l) => l.msg.startsWith('client attempted TLS renegotiation'));
      } finally {
        relay.close();
      }
    });
  }

  test('TLS 1.3 key updates, which are not renegotiation, keep the connection', async () => {
    const proxy = await proxyWith();
    const client = sClient(proxy.port, ['-tls1_3', '-crlf']);
    await client.waitFor(/^New, TLSv1\.3, Cipher is/m);
    // K: a KeyUpdate that asks the server to update its keys too, which it does with its next
    // record (the response).
    client.child.stdin?.write('K\n');
    await client.waitFor(/>>> TLS 1\.3, Handshake \[length 0005\], KeyUpdate/);
    client.child.stdin?.write('GET /version HTTP/1.1\nHost: localhost\n\n');
    await client.waitFor(/^HTTP\/1\.1 200 /m);
    assert.match(client.output(), /<<< TLS 1\.3, Handshake \[length 0005\], KeyUpdate/);
    client.child.stdin?.end();
    await client.exited;
  });
});

describe('TLS 1.3 session tickets', () => {
  let crlNumber = 1;
  for (const mode of ['alert', 'status'] as const) {
    test(`--reject-mode=${mode}: two stateful tickets per connection; offering one back never resumes: a full handshake, checked again`, async () => {
      const proxy = await proxyWith([`--reject-mode=${mode}`]);
      const bob = await identity(`bob-${mode}`);
      const session = `${cluster.pki.dir}/bob-${mode}-session.pem`;
      const first = await handshake(proxy.port, ['-tls1_3', '-sess_out', session], bob);
      assert.equal(first.protocol, 'TLSv1.3');
      const tickets = first.output.match(
        /^<<< TLS 1\.3, Handshake \[length ([0-9a-f]+)\], NewSessionTicket$/gm,
      );
      assert.equal(tickets?.length, 2, first.output);
      // 57 bytes: a session id wrapped in a ticket (stateful), not the session itself.
      for (const t of tickets ?? []) assert.match(t, /\[length 0039\]/);
      const again = await handshake(proxy.port, ['-tls1_3', '-sess_in', session], bob);
      assert.equal(again.protocol, 'TLSv1.3');
      assert.doesNotMatch(again.output, /^Reused, /m);

      cluster.pki.writeCrl({ revoked: [{ serial: bob.issued.serial }], crlNumber: ++crlNumber });
      await proxy.waitForLog((l) => l.msg === 'snapshot in force' && (l.generation as number) > 1);
      const revoked = sClient(proxy.port, ['-tls1_3', '-crlf', '-sess_in', session], bob);
      await revoked.waitFor(/^New, TLSv1\.3, Cipher is/m);
      if (mode === 'alert') {
        await revoked.waitFor(/^<<< TLS 1\.3, Alert \[length 0002\], fatal certificate_revoked$/m);
      } else {
        revoked.child.stdin?.write('GET /version HTTP/1.1\nHost: localhost\n\n');
        await revoked.waitFor(/^HTTP\/1\.1 401 /m);
        assert.match(revoked.output(), /client certificate revoked/);
      }
      revoked.child.stdin?.end();
      await revoked.exited;
      cluster.pki.writeCrl({ revoked: [], crlNumber: ++crlNumber });
    });
  }
});
