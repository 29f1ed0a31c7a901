/**
 * One CRL fetch against a real local HTTP(S) server: conditional requests and 304, the size
 * and time limits, redirects within one scheme, https verified against the given CAs only
 * (hostname included), and a destination that holds a whole body or is left as it was.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Authority, type IssuedCert } from '../../src/demo/pki-factory.js';
import { FetchError, type FetchOptions, fetchCrl } from '../../src/watcher/crl-fetch.js';
import { CrlServer } from '../support/crl-server.js';

let dir: string;
let ca: Authority;
let serverCert: IssuedCert;
let http: CrlServer;
let https: CrlServer;
const BODY = Buffer.from('0123456789'.repeat(300));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kcp-fetch-'));
  ca = await Authority.create({ commonName: 'crl-server-ca' });
  serverCert = await ca.issue({ commonName: 'crl', usage: 'server', ipAddresses: ['127.0.0.1'] });
  http = await CrlServer.start();
  https = await CrlServer.start({ cert: serverCert.certPem, key: serverCert.keyPem });
});

after(async () => {
  await http?.close();
  await https?.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function options(extra: Partial<FetchOptions> = {}): FetchOptions {
  return {
    caPem: ca.certPem,
    timeoutMs: 5000,
    maxBytes: 1 << 20,
    validators: null,
    destination: join(dir, `dest-${++n}`),
    ...extra,
  };
}

async function refusal(url: string, opts: FetchOptions): Promise<string> {
  try {
    await fetchCrl(url, opts);
  } catch (err) {
    assert.ok(err instanceof FetchError, String(err));
    assert.ok(!existsSync(opts.destination), 'nothing written');
    return err.message;
  }
  assert.fail(`fetched ${url}`);
}

function leftovers(): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.tmp'));
}

describe('a fetch', () => {
  test('writes the whole body with its digest; the next one is conditional and a 304 writes nothing', async () => {
    http.serve(BODY);
    const first = options();
    const result = await fetchCrl(http.url(), first);
    assert.equal(result.kind, 'fetched');
    if (result.kind !== 'fetched') return;
    assert.deepEqual(readFileSync(first.destination), BODY);
    assert.equal(result.sha256, createHash('sha256').update(BODY).digest('hex'));
    assert.equal(result.bytes, BODY.length);
    assert.match(result.validators.etag ?? '', /^"[0-9a-f]{16}"$/);
    assert.ok(result.validators.lastModified !== null);
    const sent = http.requests.at(-1);
    assert.equal(sent?.ifNoneMatch, null);
    assert.equal(sent?.ifModifiedSince, null);

    const second = options({ validators: result.validators });
    writeFileSync(second.destination, 'before');
    assert.deepEqual(await fetchCrl(http.url(), second), { kind: 'not_modified' });
    assert.equal(readFileSync(second.destination, 'utf8'), 'before');
    assert.equal(http.requests.at(-1)?.ifNoneMatch, result.validators.etag);
    assert.equal(http.requests.at(-1)?.status, 304);

    const byDate = options({
      validators: { etag: null, lastModified: result.validators.lastModified },
    });
    assert.deepEqual(await fetchCrl(http.url(), byDate), { kind: 'not_modified' });
    http.serve(Buffer.concat([BODY, Buffer.from('!')]));
    const changed = await fetchCrl(http.url(), options({ validators: result.validators }));
    assert.equal(changed.kind, 'fetched');
  });

  test('an HTTP error, or a 304 not asked for, gives no CRL', async () => {
    http.serve(BODY);
    http.behaviour = { kind: 'status', status: 404 };
    assert.equal(await refusal(http.url(), options()), 'HTTP 404');
    http.behaviour = { kind: 'status', status: 304 };
    assert.equal(
      await refusal(http.url(), options()),
      'HTTP 304 to a request that was not conditional',
    );
    http.behaviour = { kind: 'serve' };
  });

  test('larger than the limit: announced or streamed, refused with nothing left behind', async () => {
    http.serve(BODY);
    const announced = await refusal(http.url(), options({ maxBytes: 1024 }));
    assert.match(announced, /larger than --crl-url-max-bytes=1024 \(3000 bytes announced\)/);
    http.sendLength = false;
    const streamed = await refusal(http.url(), options({ maxBytes: 1024 }));
    assert.match(streamed, /larger than --crl-url-max-bytes=1024/);
    http.sendLength = true;
    assert.deepEqual(leftovers(), []);
  });

  test('a server that stops answering is given up at the deadline', async () => {
    http.serve(BODY);
    http.behaviour = { kind: 'hang' };
    const message = await refusal(http.url(), options({ timeoutMs: 300 }));
    assert.equal(message, 'no complete answer within 300 ms (--crl-url-timeout)');
    http.behaviour = { kind: 'serve' };
    assert.deepEqual(leftovers(), []);
  });

  test('a Content-Encoding not asked for is refused', async () => {
    http.serve(BODY);
    http.extraHeaders = { 'content-encoding': 'gzip' };
    assert.equal(await refusal(http.url(), options()), 'Content-Encoding gzip was not asked for');
    http.extraHeaders = {};
  });
});

describe('redirects', () => {
  test('followed within the scheme, at most 3', async () => {
    http.serve(BODY);
    http.redirects.set('/a', '/b');
    http.redirects.set('/b', `${http.origin}/c`);
    http.redirects.set('/c', '/ca.crl');
    const opts = options();
    assert.equal((await fetchCrl(http.url('/a'), opts)).kind, 'fetched');
    assert.deepEqual(readFileSync(opts.destination), BODY);
    http.redirects.set('/z', '/a');
    assert.equal(await refusal(http.url('/z'), options()), 'more than 3 redirects');
  });

  test('to another scheme, refused', async () => {
    http.redirects.set('/up', https.url());
    assert.equal(
      await refusal(http.url('/up'), options()),
      `redirect from http: to https: refused (${https.url()})`,
    );
    https.redirects.set('/down', http.url());
    assert.match(
      await refusal(https.url('/down'), options()),
      /redirect from https: to http: refused/,
    );
  });
});

describe('https', () => {
  test('verified against the given CAs only, hostname or IP included', async () => {
    https.serve(BODY);
    assert.equal((await fetchCrl(https.url(), options())).kind, 'fetched');
    const other = await Authority.create({ commonName: 'other-ca' });
    assert.match(await refusal(https.url(), options({ caPem: other.certPem })), /certificate/);
    assert.equal(
      await refusal(https.url(), options({ caPem: null })),
      'https:// needs --crl-url-ca-file',
    );
    const named = await ca.issue({ commonName: 'crl', usage: 'server', dnsNames: ['crl.example'] });
    const wrongName = await CrlServer.start({ cert: named.certPem, key: named.keyPem });
    try {
      wrongName.serve(BODY);
      assert.match(
        await refusal(wrongName.url(), options()),
        /Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.1 is not in the cert's list/,
      );
    } finally {
      await wrongName.close();
    }
  });
});
