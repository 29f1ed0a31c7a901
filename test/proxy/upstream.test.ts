/**
 * Upstream TLS sessions: every connection after the first resumes the last session, which is
 * kept without the apiserver's certificate (TLS 1.3 only); resumption must still be accepted
 * by Node as verified, a TLS 1.2 session must stay whole, and a refused ticket must fall back
 * to a full, verified handshake.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { Authority, type IssuedCert } from '../../src/demo/pki-factory.js';
import { createLogger } from '../../src/log.js';
import type { Credentials } from '../../src/pki/credentials.js';
import { Upstream } from '../../src/proxy/upstream.js';
import { certificateInSession } from '../../src/tls/ssl-session.js';
import { makePki, type TestPki } from '../support/pki.js';

let pki: TestPki;
/** Both ends of every connection a test opened: destroyed after each test, failed or not. */
const open: TLSSocket[] = [];

before(async () => {
  pki = await makePki();
});
afterEach(() => {
  for (const socket of open.splice(0)) socket.destroy();
});
after(() => pki?.cleanup());

interface Seen {
  readonly reused: boolean;
  /** The client certificate's subject CN on a full handshake. */
  readonly client: string | undefined;
}

async function apiserver(
  cert: IssuedCert,
  maxVersion: 'TLSv1.2' | 'TLSv1.3',
): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer({
    cert: cert.certPem,
    key: cert.keyPem,
    ca: pki.frontProxyCa.certPem,
    requestCert: true,
    maxVersion,
    ALPNProtocols: ['http/1.1'],
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    seen.push({
      reused: socket.isSessionReused(),
      client: [socket.getPeerCertificate().subject?.CN].flat()[0],
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { server, port: address.port, seen };
}

function upstreamTo(port: number): Upstream {
  const upstream = new Upstream({
    target: { host: '127.0.0.1', port, servername: '127.0.0.1', url: `https://127.0.0.1:${port}` },
    poolSize: 0,
    timeoutMs: 5_000,
    log: createLogger('silent'),
  });
  upstream.setCredentials({
    upstreamCaPem: pki.clusterCa.certPem,
    proxyClientCertPem: pki.frontProxyClient.certPem,
    proxyClientKeyPem: pki.frontProxyClient.keyPem,
  } as Credentials);
  return upstream;
}

/** A certificate for the apiserver's name and address from a CA the proxy does not trust. */
async function forgedApiserverCert(): Promise<IssuedCert> {
  const stranger = await Authority.create({ commonName: 'stranger' });
  return stranger.issue({
    commonName: 'kube-apiserver',
    usage: 'server',
    ipAddresses: ['127.0.0.1'],
  });
}

/** The sessions the upstream would offer next (white-box: what it keeps is the point). */
function storedSessions(upstream: Upstream): Buffer[] {
  return [...(upstream as unknown as { sessions: Map<string, Buffer> }).sessions.values()];
}

/** Opens `count` connections one after the other, each kept until its session arrived. */
async function dialSeveral(upstream: Upstream, count: number): Promise<TLSSocket[]> {
  const sockets: TLSSocket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = await upstream.connect('http/1.1', 'front-proxy');
    open.push(socket);
    sockets.push(socket);
    assert.equal(socket.authorized, true, `connection ${i} is verified`);
    // The server's tickets follow its handshake; give them time to arrive.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return sockets;
}

describe('upstream TLS sessions', () => {
  test('TLS 1.3: later connections resume a session that carries no certificate', async () => {
    const { server, port, seen } = await apiserver(pki.apiserver, 'TLSv1.3');
    const upstream = upstreamTo(port);
    try {
      const sockets = await dialSeveral(upstream, 3);
      assert.deepEqual(
        seen.map((s) => s.reused),
        [false, true, true],
      );
      assert.equal(seen[0]?.client, 'front-proxy-client');
      for (const socket of sockets.slice(1)) assert.equal(socket.isSessionReused(), true);
      // OpenSSL's own session holds the apiserver's certificate; the one kept to offer does not.
      const session = sockets[0]?.getSession();
      assert.ok(session !== undefined);
      assert.ok(certificateInSession(session) instanceof Buffer);
      const offered = storedSessions(upstream);
      assert.equal(offered.length, 1);
      assert.equal(certificateInSession(offered[0] as Buffer), null);
    } finally {
      upstream.close();
      server.close();
    }
  });

  test('TLS 1.2: the session is kept whole and resumed', async () => {
    const { server, port, seen } = await apiserver(pki.apiserver, 'TLSv1.2');
    const upstream = upstreamTo(port);
    try {
      await dialSeveral(upstream, 2);
      assert.deepEqual(
        seen.map((s) => s.reused),
        [false, true],
      );
      const offered = storedSessions(upstream);
      assert.equal(offered.length, 1);
      assert.ok(certificateInSession(offered[0] as Buffer) instanceof Buffer, 'kept whole');
    } finally {
      upstream.close();
      server.close();
    }
  });

  test('a ticket the server no longer accepts means a full handshake, verified again', async () => {
    const first = await apiserver(pki.apiserver, 'TLSv1.3');
    const upstream = upstreamTo(first.port);
    try {
      await dialSeveral(upstream, 1);
      // Same address, new server (new ticket keys), with a certificate of a CA the proxy does
      // not trust: the stored session must not let it pass.
      first.server.close();
      const forged = await forgedApiserverCert();
      const second = createServer({ cert: forged.certPem, key: forged.keyPem });
      second.on('secureConnection', (s: TLSSocket) => {
        open.push(s);
        s.on('error', () => {});
      });
      second.on('tlsClientError', () => {});
      await new Promise<void>((resolve) => second.listen(first.port, '127.0.0.1', resolve));
      try {
        await assert.rejects(upstream.connect('http/1.1', 'front-proxy'), (err: Error) =>
          /certificate/i.test(err.message),
        );
      } finally {
        second.close();
      }
    } finally {
      upstream.close();
    }
  });

  test('a server that fails verification leaves no session to resume', async () => {
    // A session kept without a certificate is trusted on resumption, so none may ever come
    // from a connection that did not verify: Node emits `session` only after verification.
    const forged = await forgedApiserverCert();
    const { server, port, seen } = await apiserver(forged, 'TLSv1.3');
    const upstream = upstreamTo(port);
    try {
      for (let i = 0; i < 3; i++) {
        await assert.rejects(upstream.connect('http/1.1', 'front-proxy'), (err: Error) =>
          /certificate/i.test(err.message),
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual(storedSessions(upstream), []);
      assert.ok(
        seen.every((s) => !s.reused),
        'every attempt was a full handshake',
      );
    } finally {
      upstream.close();
      server.close();
    }
  });
});
