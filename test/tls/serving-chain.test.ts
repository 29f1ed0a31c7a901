/**
 * The certificates the listener serves. When the serving file holds the leaf alone, OpenSSL
 * completes the chain from the client CA bundle on every handshake; the listener builds that
 * chain once instead (servedChainPem). What a client receives must not change: each case is
 * compared, with `openssl s_client -showcerts`, against a plain node:tls server given the same
 * files (OpenSSL's own automatic chain).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer, type SecureContextOptions, type Server } from 'node:tls';
import { DEFAULT_TLS_CIPHER_SUITES, resolveTlsPolicy } from '../../src/config/tls-policy.js';
import { Authority, type IssuedCert } from '../../src/demo/pki-factory.js';
import { loadTrustData } from '../../src/pki/trust.js';
import { TrustStore } from '../../src/pki/trust-store.js';
import { servedChainPem, withServedChain } from '../../src/tls/listener.js';

const DEFAULT_POLICY = resolveTlsPolicy('VersionTLS12', DEFAULT_TLS_CIPHER_SUITES);
let dir: string;
let root: Authority;
let intermediate: Authority;
let other: Authority;
const SERVER = { usage: 'server', ipAddresses: ['127.0.0.1'] } as const;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kcp-serving-chain-'));
  root = await Authority.create({ commonName: 'root-ca' });
  intermediate = await Authority.create({ commonName: 'serving-ca' }, root);
  other = await Authority.create({ commonName: 'elsewhere-ca' });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function trustOf(bundle: string): TrustStore {
  const clientCaFile = join(dir, `bundle-${Math.random()}.crt`);
  writeFileSync(clientCaFile, bundle);
  return new TrustStore(
    loadTrustData({ clientCaFile, crlFiles: [], crlMissingPolicy: 'allow' }, null),
  );
}

function listen(options: SecureContextOptions): Promise<Server> {
  const server = createServer({ ...options, requestCert: true, rejectUnauthorized: false });
  server.on('secureConnection', (socket) => socket.end());
  server.on('tlsClientError', () => {});
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** The certificates of the server's Certificate message, in order, as openssl prints them. */
async function served(listening: Promise<Server>): Promise<string[]> {
  const server = await listening;
  try {
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    const output = await new Promise<string>((resolve, reject) => {
      const child = execFile(
        'openssl',
        ['s_client', '-connect', `127.0.0.1:${address.port}`, '-showcerts'],
        { timeout: 10_000 },
        (err, stdout) => (err && !stdout ? reject(err) : resolve(stdout)),
      );
      child.stdin?.end();
    });
    return output.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  } finally {
    server.close();
  }
}

async function assertServedAsOpenSsl(
  serving: IssuedCert,
  certPem: string,
  bundle: string,
  expected: readonly string[],
): Promise<void> {
  const trust = trustOf(bundle);
  const inputs = { cert: certPem, key: serving.keyPem, ca: trust.caPem };
  const ours = await served(withServedChain(inputs, trust, DEFAULT_POLICY, listen));
  const openssl = await served(listen(inputs));
  assert.deepEqual(ours, openssl, 'the listener serves what OpenSSL chains by itself');
  assert.deepEqual(
    ours,
    expected.map((p) => p.trim()),
  );
}

describe('the served certificate chain', () => {
  test('a leaf whose issuer is in the client CA bundle is served with that issuer', async () => {
    const serving = await root.issue({ commonName: 'proxy', ...SERVER });
    const trust = trustOf(root.certPem);
    assert.equal(servedChainPem(serving.certPem, trust), serving.certPem + root.certPem);
    await assertServedAsOpenSsl(serving, serving.certPem, root.certPem, [
      serving.certPem,
      root.certPem,
    ]);
  });

  test('an intermediate and its root, both in the bundle, follow the leaf', async () => {
    const serving = await intermediate.issue({ commonName: 'proxy', ...SERVER });
    const bundle = root.certPem + intermediate.certPem;
    assert.notEqual(servedChainPem(serving.certPem, trustOf(bundle)), null);
    await assertServedAsOpenSsl(serving, serving.certPem, bundle, [
      serving.certPem,
      intermediate.certPem,
      root.certPem,
    ]);
  });

  test('a chain in the serving file is served as it is', async () => {
    const serving = await intermediate.issue({ commonName: 'proxy', ...SERVER });
    const file = serving.certPem + intermediate.certPem;
    const bundle = root.certPem + intermediate.certPem;
    assert.equal(servedChainPem(file, trustOf(bundle)), null);
    await assertServedAsOpenSsl(serving, file, bundle, [serving.certPem, intermediate.certPem]);
  });

  test('a leaf of a CA outside the bundle is served alone', async () => {
    const serving = await other.issue({ commonName: 'proxy', ...SERVER });
    assert.equal(servedChainPem(serving.certPem, trustOf(root.certPem)), null);
    await assertServedAsOpenSsl(serving, serving.certPem, root.certPem, [serving.certPem]);
  });

  test('an intermediate whose root is missing from the bundle is left to OpenSSL', async () => {
    const serving = await intermediate.issue({ commonName: 'proxy', ...SERVER });
    assert.equal(servedChainPem(serving.certPem, trustOf(intermediate.certPem)), null);
    await assertServedAsOpenSsl(serving, serving.certPem, intermediate.certPem, [
      serving.certPem,
      intermediate.certPem,
    ]);
  });

  test('two CAs of the same name in the bundle are left to OpenSSL', async () => {
    const twin = await Authority.create({ commonName: 'root-ca' });
    const serving = await root.issue({ commonName: 'proxy', ...SERVER });
    const bundle = twin.certPem + root.certPem;
    assert.equal(servedChainPem(serving.certPem, trustOf(bundle)), null);
    await assertServedAsOpenSsl(serving, serving.certPem, bundle, [serving.certPem, root.certPem]);
  });

  test('a self-signed serving certificate listed in the bundle is served once', async () => {
    const serving = (await Authority.create({ commonName: 'proxy' })).cert;
    assert.equal(servedChainPem(serving.certPem, trustOf(serving.certPem)), null);
    await assertServedAsOpenSsl(serving, serving.certPem, serving.certPem, [serving.certPem]);
  });
});
