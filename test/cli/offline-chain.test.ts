/**
 * The offline chain check must agree with OpenSSL: every case is also presented in a real TLS
 * handshake to a Node server configured as the proxy's listener (requestCert, no rejection),
 * and the offline answer must equal the server's authorizationError.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { before, describe, test } from 'node:test';
import { createServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { Authority, type IssuedCert } from '../../src/demo/pki-factory.js';
import { verifyChainOffline } from '../../src/tls/offline-chain.js';

const DAY = 86_400_000;
const now = Date.now();
const expired = { notBefore: new Date(now - 10 * DAY), notAfter: new Date(now - DAY) };
const future = { notBefore: new Date(now + DAY), notAfter: new Date(now + 10 * DAY) };

interface Case {
  readonly name: string;
  /** The client's certificate and what it sends after it. */
  readonly leaf: IssuedCert;
  readonly sent: readonly IssuedCert[];
  /** The server's CA bundle. */
  readonly bundle: readonly Authority[];
}

let cases: Case[];

before(async () => {
  const root = await Authority.create({ commonName: 'kubernetes' });
  const sameName = await Authority.create({ commonName: 'kubernetes' });
  const intermediate = await Authority.create({ commonName: 'clients' }, root);
  const oldIntermediate = await Authority.create({ commonName: 'old-clients', ...expired }, root);
  const selfSigned = await Authority.create({ commonName: 'self' });
  const leaf = (ca: Authority, options = {}) => ca.issue({ commonName: 'alice', ...options });
  cases = [
    { name: 'good', leaf: await leaf(root), sent: [], bundle: [root] },
    { name: 'expired', leaf: await leaf(root, expired), sent: [], bundle: [root] },
    { name: 'not yet valid', leaf: await leaf(root, future), sent: [], bundle: [root] },
    {
      name: 'serverAuth only',
      leaf: await leaf(root, { usage: 'server' }),
      sent: [],
      bundle: [root],
    },
    {
      name: 'serverAuth only and expired',
      leaf: await leaf(root, { usage: 'server', ...expired }),
      sent: [],
      bundle: [root],
    },
    { name: 'unknown CA of the same name', leaf: await leaf(sameName), sent: [], bundle: [root] },
    {
      name: 'unknown CA and expired',
      leaf: await leaf(sameName, expired),
      sent: [],
      bundle: [root],
    },
    { name: 'self-signed leaf', leaf: selfSigned.cert, sent: [], bundle: [root] },
    {
      name: 'intermediate sent by the client',
      leaf: await leaf(intermediate),
      sent: [intermediate.cert],
      bundle: [root],
    },
    {
      name: 'intermediate not sent',
      leaf: await leaf(intermediate),
      sent: [],
      bundle: [root],
    },
    {
      name: 'intermediate in the bundle',
      leaf: await leaf(intermediate),
      sent: [],
      bundle: [root, intermediate],
    },
    {
      name: 'expired intermediate',
      leaf: await leaf(oldIntermediate),
      sent: [oldIntermediate.cert],
      bundle: [root],
    },
    {
      name: 'intermediate without its root',
      leaf: await leaf(intermediate),
      sent: [],
      bundle: [intermediate],
    },
  ];
});

/** authorizationError of a real handshake against a server trusting `bundle`. */
async function handshakeError(c: Case, serving: IssuedCert): Promise<string | null> {
  const server = createServer({
    cert: serving.certPem,
    key: serving.keyPem,
    ca: c.bundle.map((a) => a.certPem),
    requestCert: true,
    rejectUnauthorized: false,
  });
  const result = new Promise<string | null>((resolve) => {
    server.once('secureConnection', (socket: TLSSocket) => {
      resolve(socket.authorized ? null : String(socket.authorizationError));
      socket.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = tlsConnect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    cert: [c.leaf.certPem, ...c.sent.map((s) => s.certPem)].join(''),
    key: c.leaf.keyPem,
    rejectUnauthorized: false,
  });
  client.on('error', () => {});
  client.resume();
  const timer = setTimeout(() => client.destroy(new Error('handshake timed out')), 10_000);
  try {
    return await result;
  } finally {
    clearTimeout(timer);
    client.destroy();
    server.close();
  }
}

describe('offline chain check agrees with OpenSSL at handshake time', () => {
  let serving: IssuedCert;
  before(async () => {
    serving = await (await Authority.create({ commonName: 'server-ca' })).issue({
      commonName: 'proxy',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
    });
  });

  test('every case', async () => {
    for (const c of cases) {
      const online = await handshakeError(c, serving);
      const offline = verifyChainOffline({
        leaf: c.leaf.x509,
        untrusted: c.sent.map((s) => s.x509),
        trusted: c.bundle.map((a) => a.cert.x509),
        now: Date.now(),
      });
      assert.equal(offline.error, online, c.name);
    }
  });
});
