/**
 * --reject-mode=alert with real clients against the real binary: what kubectl (cold discovery
 * cache), curl, openssl s_client and @kubernetes/client-node print for each refusal, what is
 * on the wire after the handshake (the alert as the server's only application record, then a
 * FIN), what TLS 1.2 clients get (the 401 Status), and many refused handshakes under load.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { type Socket, connect as tcpConnect } from 'node:net';
import { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { kubeconfigFor } from '../../src/demo/kubeconfig.js';
import { Authority, type IssuedCert } from '../../src/demo/pki-factory.js';
import { serverTrafficSecret, TLS13_SUITES } from '../../src/tls/alert.js';
import {
  type KubectlEnv,
  newKubectlEnv,
  requestH1,
  runKubectl,
  TempDir,
} from '../fake-apiserver/testkit.js';
import { REVOKED_ALERT_CODE } from '../support/alerts.js';
import { TestCluster } from '../support/cluster.js';
import { proxyArgs } from '../support/pki.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { applicationRecords } from '../support/tls-records.js';

const TOKEN = 'robot-token-0123456789';

const cluster = new TestCluster({
  apiserver: () => ({
    tokens: { [TOKEN]: { username: 'robot', groups: [] } },
  }),
});
let tmp: TempDir;
let proxy: ProxyProcess;
let requiring: ProxyProcess;
let mallory: IssuedCert;
let expired: IssuedCert;
let notYet: IssuedCert;
let serverOnly: IssuedCert;
let eve: IssuedCert;
let dana: IssuedCert;

before(async () => {
  await cluster.start();
  tmp = await TempDir.create('kcp-alert-');
  mallory = await cluster.pki.user('mallory', ['dev']);
  const day = 86_400_000;
  expired = await cluster.pki.user('old', [], {
    notBefore: new Date(Date.now() - 2 * day),
    notAfter: new Date(Date.now() - day),
  });
  notYet = await cluster.pki.user('early', [], {
    notBefore: new Date(Date.now() + day),
    notAfter: new Date(Date.now() + 2 * day),
  });
  serverOnly = await cluster.pki.user('server-only', [], { usage: 'server' });
  eve = await (await Authority.create({ commonName: 'kubernetes' })).issue({ commonName: 'eve' });
  dana = await cluster.pki.user('dana', ['dev']);
  const deny = cluster.pki.write('deny.yaml', '- {user: dana, reason: laptop stolen}\n');
  cluster.pki.writeCrl({ revoked: [{ serial: mallory.serial }], crlNumber: 2 });
  [proxy, requiring] = await Promise.all([
    cluster.proxy(['--reject-mode=alert', `--deny-file=${deny}`]),
    cluster.proxy(['--reject-mode=alert', '--require-client-cert']),
  ]);
});

after(async () => {
  await tmp?.remove();
  await cluster.stop();
});

let files = 0;
/** The certificate and key as files, for curl and openssl. */
function certFiles(cert: IssuedCert): { cert: string; key: string } {
  files++;
  return {
    cert: cluster.pki.write(`client-${files}.crt`, cert.certPem),
    key: cluster.pki.write(`client-${files}.key`, cert.keyPem),
  };
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') reject(err);
      else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

/** `openssl s_client` to the proxy as `cert`, trusting the cluster CA, with `flags`. */
function sClient(cert: IssuedCert, flags: readonly string[], input = ''): Promise<Run> {
  const files = certFiles(cert);
  return run(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${proxy.port}`,
      '-CAfile',
      cluster.pki.files.clientCa,
      '-cert',
      files.cert,
      '-key',
      files.key,
      ...flags,
    ],
    input,
  );
}

function kubectlEnv(
  server: ProxyProcess,
  user: { cert?: IssuedCert; token?: string },
  options: { cacheDir?: string; http1?: boolean } = {},
): Promise<KubectlEnv> {
  return newKubectlEnv(tmp, server.url, cluster.pki.clusterCa.certPem, user, options);
}

/** curl with `cert`'s certificate and the cluster CA, to `path` on the proxy. */
function curl(cert: IssuedCert, path: string, ...flags: string[]): Promise<Run> {
  const files = certFiles(cert);
  return run('curl', [
    '-sS',
    ...flags,
    '--cacert',
    cluster.pki.files.clientCa,
    '--cert',
    files.cert,
    '--key',
    files.key,
    `${proxy.url}${path}`,
  ]);
}

describe('kubectl 1.32 with a cold discovery cache', () => {
  const cases = [
    { what: 'revoked', who: () => ({ cert: mallory }), alert: 'revoked certificate' },
    { what: 'expired', who: () => ({ cert: expired }), alert: 'expired certificate' },
    { what: 'not yet valid', who: () => ({ cert: notYet }), alert: 'expired certificate' },
    {
      what: 'of an unknown CA',
      who: () => ({ cert: eve }),
      alert: 'unknown certificate authority',
    },
    { what: 'without clientAuth', who: () => ({ cert: serverOnly }), alert: 'bad certificate' },
    { what: 'denied by --deny-file', who: () => ({ cert: dana }), alert: 'access denied' },
  ];
  for (const c of cases) {
    for (const http1 of [false, true]) {
      test(`a certificate ${c.what} (${http1 ? 'HTTP/1.1' : 'HTTP/2'}): "remote error: tls: ${c.alert}"`, async () => {
        const mark = cluster.fake.requests.length;
        const result = await runKubectl(await kubectlEnv(proxy, c.who(), { http1 }), [
          'get',
          'pods',
        ]);
        assert.equal(result.code, 1, result.stderr);
        // kubectl's own notice of DISABLE_HTTP2 aside.
        const lines = result.stderr
          .trim()
          .split('\n')
          .filter((line) => !line.includes('HTTP2 has been explicitly disabled'));
        assert.equal(
          lines.at(-1),
          `Unable to connect to the server: remote error: tls: ${c.alert}`,
        );
        // Every attempt of discovery read the alert: none saw a reset or a broken pipe.
        for (const line of lines) assert.match(line, new RegExp(`remote error: tls: ${c.alert}`));
        assert.deepEqual(cluster.fake.requests.slice(mark), []);
      });
    }
  }

  test('--require-client-cert, a token and no certificate: "remote error: tls: certificate required"', async () => {
    const mark = cluster.fake.requests.length;
    const result = await runKubectl(await kubectlEnv(requiring, { token: TOKEN }), ['get', 'pods']);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(
      result.stderr.trim().split('\n').at(-1),
      'Unable to connect to the server: remote error: tls: certificate required',
    );
    assert.deepEqual(cluster.fake.requests.slice(mark), []);
  });

  test('a good certificate is served as before; with the discovery cache it filled, a revoked one gets the same alert', async () => {
    const shared = await kubectlEnv(proxy, { cert: cluster.alice });
    const result = await runKubectl(shared, ['get', 'pods']);
    assert.equal(result.code, 0, result.stderr);
    const warm = await runKubectl(
      await kubectlEnv(proxy, { cert: mallory }, { cacheDir: shared.cacheDir }),
      ['get', 'pods'],
    );
    assert.equal(warm.code, 1, warm.stderr);
    assert.equal(
      warm.stderr.trim(),
      'Unable to connect to the server: remote error: tls: revoked certificate',
    );
  });
});

describe('--workers=2', () => {
  test('every worker process sends the alert', async () => {
    const workers = await startProxyProcess(
      proxyArgs(cluster.pki, cluster.fake.url, ['--reject-mode=alert', '--workers=2']),
    );
    try {
      for (let i = 0; i < 4; i++) {
        const result = await runKubectl(await kubectlEnv(workers, { cert: mallory }), [
          'get',
          'pods',
        ]);
        assert.equal(
          result.stderr.trim().split('\n').at(-1),
          'Unable to connect to the server: remote error: tls: revoked certificate',
        );
      }
      const refusing = new Set(
        workers.logs.filter((l) => l.reason === 'revoked').map((l) => l.pid),
      );
      assert.equal(refusing.size, 2, 'both workers refused clients');
    } finally {
      await workers.stop();
    }
  });
});

describe('curl, openssl s_client and @kubernetes/client-node', () => {
  test('curl over TLS 1.3, HTTP/2 and HTTP/1.1: "sslv3 alert certificate revoked"', async () => {
    for (const protocol of ['--http2', '--http1.1']) {
      const result = await curl(mallory, '/api', protocol);
      assert.equal(result.code, 56, result.stderr);
      assert.match(
        result.stderr,
        /^curl: \(56\) OpenSSL SSL_read: OpenSSL\/[\d.]+: error:0A000414:SSL routines::sslv3 alert certificate revoked, errno 0$/m,
      );
      assert.equal(result.stdout, '');
    }
  });

  test('curl --tls-max 1.2 gets the 401 Status naming the reason', async () => {
    const result = await curl(mallory, '/api', '--tls-max', '1.2', '-w', '\n%{http_code}');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /"message":"client certificate revoked \(serial /);
    assert.match(result.stdout, /\n401$/);
  });

  test('openssl s_client -tls1_3: the fatal alert, and no session ticket before it', async () => {
    for (const [cert, line, number] of [
      [mallory, 'fatal certificate_revoked', 44],
      [expired, 'fatal certificate_expired', 45],
      [eve, 'fatal unknown_ca', 48],
      [serverOnly, 'fatal bad_certificate', 42],
    ] as const) {
      const result = await sClient(cert, ['-tls1_3', '-msg', '-ign_eof']);
      const output = result.stdout + result.stderr;
      assert.match(output, new RegExp(`^<<< TLS 1\\.3, Alert \\[length 0002\\], ${line}$`, 'm'));
      assert.match(output, new RegExp(`:SSL alert number ${number}$`, 'm'));
      assert.doesNotMatch(output, /NewSessionTicket/);
    }
  });

  test('openssl s_client -tls1_2 gets the 401 Status for its request', async () => {
    const result = await sClient(
      mallory,
      ['-tls1_2', '-quiet', '-ign_eof'],
      'GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    );
    assert.match(result.stdout, /^HTTP\/1\.1 401 Unauthorized\r$/m);
    assert.match(result.stdout, /"message":"client certificate revoked \(serial /);
  });

  test('@kubernetes/client-node: the request fails with the alert', async () => {
    const config = new k8s.KubeConfig();
    config.loadFromString(
      kubeconfigFor(proxy.url, cluster.pki.clusterCa.certPem, 'mallory', { cert: mallory }),
    );
    const error = await config
      .makeApiClient(k8s.CoreV1Api)
      .listNamespacedPod({ namespace: 'default' })
      .then(
        () => null,
        (err: Error & { code?: string }) => err,
      );
    assert.ok(error !== null, 'refused');
    // OpenSSL 3.0 (Node 20) calls it "sslv3 alert", OpenSSL 3.5 (Node 26) "ssl/tls alert".
    assert.match(
      error.message,
      /^request to https:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/default\/pods failed, reason: [0-9A-F]+:error:0A000414:SSL routines:ssl3_read_bytes:(?:sslv3|ssl\/tls) alert certificate revoked:[^\n]*:SSL alert number 44\n$/,
    );
    assert.match(error.code ?? '', REVOKED_ALERT_CODE);
  });
});

/**
 * A TLS 1.3 client of the proxy over a TCP connection the test holds itself (under a JavaScript
 * stream), so it can keep what the proxy sends, see how the proxy ends the connection, and
 * write bytes of its own after the TLS client is done. `then` runs when the client has read the
 * alert (or failed otherwise).
 */
function recordedClient(then: (raw: Socket) => void): Promise<{
  code: string;
  cipher: string;
  secret: Buffer | null;
  bytes: Buffer;
  end: string;
}> {
  return new Promise((resolve) => {
    const raw = tcpConnect(proxy.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const stream = new Duplex({
      read() {},
      write(chunk, _encoding, callback) {
        raw.write(chunk, callback);
      },
      final(callback) {
        callback();
      },
    });
    let secret: Buffer | null = null;
    let cipher = '';
    let code = 'no error';
    raw.on('data', (d: Buffer) => {
      chunks.push(d);
      stream.push(d);
    });
    const ended = (end: string) => {
      resolve({ code, cipher, secret, bytes: Buffer.concat(chunks), end });
      raw.destroy();
    };
    raw.on('end', () => ended('FIN'));
    raw.on('error', (err: NodeJS.ErrnoException) => ended(err.code ?? err.message));
    const socket = tlsConnect({
      socket: stream,
      ca: cluster.pki.clusterCa.certPem,
      cert: mallory.certPem,
      key: mallory.keyPem,
      servername: 'localhost',
      ALPNProtocols: ['h2'],
    });
    socket.on('keylog', (line: Buffer) => {
      secret ??= serverTrafficSecret(line);
    });
    socket.on('secureConnect', () => {
      cipher = socket.getCipher().name;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      code = err.code ?? err.message;
      then(raw);
    });
  });
}

describe('on the wire', () => {
  const afterTheAlert = {
    'closes its side': (raw: Socket) => raw.end(),
    'writes an HTTP/2 preface': (raw: Socket) => raw.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    'writes a garbled record': (raw: Socket) =>
      raw.write(Buffer.from([23, 3, 3, 0, 20, ...Buffer.alloc(20, 0x55)])),
  };
  for (const [what, act] of Object.entries(afterTheAlert)) {
    test(`the alert is the only record under the server's application key, then a FIN; the client ${what}`, async () => {
      const mark = cluster.fake.requests.length;
      const seen = await recordedClient(act);
      assert.match(seen.code, REVOKED_ALERT_CODE);
      assert.equal(seen.end, 'FIN', 'closed with a FIN, not a reset');
      const suite = TLS13_SUITES[seen.cipher];
      assert.ok(suite && seen.secret, seen.cipher);
      const { records, rest, trailing } = applicationRecords(seen.bytes, suite, seen.secret);
      assert.equal(rest + trailing, 0, 'nothing else after it');
      assert.deepEqual(
        records.map((r) => [...r]),
        [[2, 44, 21]],
        'one record, fatal certificate_revoked: no ticket, no close_notify, no alert of OpenSSL',
      );
      assert.deepEqual(cluster.fake.requests.slice(mark), []);
    });
  }
});

describe('refused handshakes under load', () => {
  test('2,000 refused TLS 1.3 handshakes from 32 parallel clients, with accepted clients alongside', async (t) => {
    const startedAt = Date.now();
    const REFUSED = 2_000;
    const ACCEPTED = 200;
    const PARALLEL = 32;
    const before = await revokedCount(proxy);
    const outcomes: Record<Behaviour, Map<string, number>> = {
      waits: new Map(),
      requests: new Map(),
      floods: new Map(),
      leaves: new Map(),
    };
    let started = 0;
    const refusedClient = async () => {
      while (started < REFUSED) {
        const behaviour = BEHAVIOURS[started++ % BEHAVIOURS.length] as Behaviour;
        const outcome = await refusedHandshake(proxy.port, behaviour);
        outcomes[behaviour].set(outcome, (outcomes[behaviour].get(outcome) ?? 0) + 1);
      }
    };
    const accepted: number[] = [];
    const acceptedClient = async () => {
      for (let i = 0; i < ACCEPTED / 4; i++) {
        const res = await requestH1(`${proxy.url}/version`, {
          ca: cluster.pki.clusterCa.certPem,
          cert: cluster.alice,
        }).then(
          (r) => r.status,
          () => 0,
        );
        accepted.push(res);
      }
    };
    await Promise.all([
      ...Array.from({ length: PARALLEL }, refusedClient),
      ...Array.from({ length: 4 }, acceptedClient),
    ]);
    const each = REFUSED / BEHAVIOURS.length;
    assert.deepEqual(
      Object.fromEntries(Object.entries(outcomes).map(([b, m]) => [b, Object.fromEntries(m)])),
      {
        waits: { alert: each },
        requests: { alert: each },
        floods: { alert: each },
        leaves: { 'left first': each },
      },
    );
    assert.deepEqual(
      accepted.filter((s) => s !== 200),
      [],
    );
    assert.equal(accepted.length, ACCEPTED);
    // A client that leaves at once may be gone before the proxy has read its Finished.
    const judged = (await revokedCount(proxy)) - before;
    assert.ok(judged >= REFUSED - each && judged <= REFUSED, `${judged} judged`);
    assert.equal(proxy.child.exitCode, null, 'the proxy is still running');
    t.diagnostic(
      `${REFUSED} refused and ${ACCEPTED} accepted in ${Date.now() - startedAt} ms; ${judged} refusals counted`,
    );
  });
});

/**
 * What a refused client does once its handshake is done: nothing, write a request, write more
 * than the proxy reads after the alert (300 KiB), or close its connection at once.
 */
const BEHAVIOURS = ['waits', 'requests', 'floods', 'leaves'] as const;
type Behaviour = (typeof BEHAVIOURS)[number];

/** One refused TLS 1.3 handshake: "alert" when the client read certificate_revoked. */
function refusedHandshake(port: number, behaviour: Behaviour): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: cluster.pki.clusterCa.certPem,
      cert: mallory.certPem,
      key: mallory.keyPem,
      minVersion: 'TLSv1.3',
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('no answer within 20 s');
    }, 20_000);
    const done = (what: string) => {
      clearTimeout(timer);
      resolve(what);
    };
    socket.on('secureConnect', () => {
      if (behaviour === 'requests') socket.write('GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      if (behaviour === 'floods') socket.write(Buffer.alloc(300 * 1024, 'x'));
      if (behaviour === 'leaves') {
        socket.destroy();
        done('left first');
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) =>
      done(REVOKED_ALERT_CODE.test(err.code ?? '') ? 'alert' : (err.code ?? err.message)),
    );
    socket.on('close', () => done('closed without the alert'));
  });
}

async function revokedCount(server: ProxyProcess): Promise<number> {
  const text = await (await fetch(`${server.adminUrl}/metrics`)).text();
  const line =
    /^kube_crl_proxy_handshakes_total\{outcome="rejected",reason="revoked"\} (\d+)$/m.exec(text);
  return Number(line?.[1] ?? Number.NaN);
}
