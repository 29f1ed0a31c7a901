/**
 * Fuzzing (issue 8, item 7), bounded in count and time, deterministic for a seed (FUZZ_SEED
 * replays another one):
 *  (a) the CRL/DER reader: mutated CRLs (EC and RSA, small and ~1000 entries, DER and PEM) fed
 *      to parseCrl and loadTrustData — only the documented error types, no slow case, and
 *      never an accepted CRL whose signed content or signature differs from the CA's;
 *  (b) the HTTP/1.1 request head path: mutated kubectl request heads (with identity headers)
 *      through the running proxy — it keeps serving, every connection ends in bounded time, and
 *      every request that reaches the fake apiserver carries only the proxy's identity;
 *  (c) the HTTP/2 path: mutated frame sequences (HPACK bytes, CONTINUATION, lengths, flags,
 *      resets) from a good client — the proxy survives and keeps serving, and every request
 *      that reaches the fake carries only the proxy's identity.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { RecordedRequest } from '../../src/demo/fake-apiserver/index.js';
import { Authority, crlPem, sequentialSerials } from '../../src/demo/pki-factory.js';
import { InputError } from '../../src/errors.js';
import { CrlError, type ParsedCrl, parseCrl } from '../../src/pki/crl.js';
import { DerError, readTlv } from '../../src/pki/der.js';
import { PemError, readBlocks } from '../../src/pki/pem.js';
import { loadTrustData } from '../../src/pki/trust.js';
import { RawH2Client } from './h2-frames.js';
import { AliceStack, assertIdentityExactly, parseResponses } from './harness.js';
import {
  BYTE_MUTATORS,
  editLengthByte,
  fuzzSeed,
  mutatedH2Request,
  Rng,
  spliceToken,
} from './mutate.js';

/** A case slower than this counts as a hang (generous: the machine is shared). */
const SLOW_CASE_MS = 2000;
const ALICE = { user: 'alice', groups: ['dev'] };

/** A stack of its own for the calling describe, started before its tests and stopped after. */
function aliceStackForThisDescribe(): AliceStack {
  const fixture = new AliceStack();
  before(() => fixture.start());
  after(() => fixture.stop());
  return fixture;
}

function isDocumented(err: unknown): boolean {
  return (
    err instanceof DerError ||
    err instanceof CrlError ||
    err instanceof PemError ||
    err instanceof InputError
  );
}

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

describe('fuzz: CRL/DER reader and trust loading', () => {
  const SEED = fuzzSeed(0x5eed_c71);
  const DER_CASES_PER_CRL = 700;
  const PEM_CASES_PER_CRL = 150;

  let dir: string;
  let caFile: string;
  let bases: Array<{ name: string; der: Buffer; parsed: ParsedCrl }>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcp-fuzz-crl-'));
    const [ec, rsa] = await Promise.all([
      Authority.create({ commonName: 'fuzz-ec-ca', organizations: ['fuzz'] }),
      Authority.create({ commonName: 'fuzz-rsa-ca', keyAlgorithm: 'rsa' }),
    ]);
    caFile = join(dir, 'ca.crt');
    writeFileSync(caFile, ec.certPem + rsa.certPem);
    const small = [
      { serial: '0a', reason: 1 },
      { serial: '7fffffffffffffffffffffffffffffffffffffff' },
      { serial: '80', revokedAt: new Date('2030-01-01T00:00:00Z') },
    ];
    const make = (ca: Authority, name: string, big: boolean) => {
      const der = ca.crl({
        revoked: big ? sequentialSerials(1000, 0x1000) : small,
        crlNumber: big ? 4242 : 7,
      });
      return { name, der, parsed: parseCrl(der) };
    };
    bases = [
      make(ec, 'EC, 3 entries', false),
      make(ec, 'EC, 1000 entries', true),
      make(rsa, 'RSA, 3 entries', false),
      make(rsa, 'RSA, 1000 entries', true),
    ];
  });

  after(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** Offsets of every tag byte and length byte of the DER, descending into constructed types. */
  function tlvOffsets(der: Buffer): { tags: number[]; lengths: number[] } {
    const tags: number[] = [];
    const lengths: number[] = [];
    const walk = (start: number, end: number) => {
      for (let pos = start; pos < end; ) {
        const tlv = readTlv(der, pos, end);
        tags.push(tlv.start);
        for (let i = tlv.start + 1; i < tlv.contentStart; i++) lengths.push(i);
        if (tlv.tag & 0x20) walk(tlv.contentStart, tlv.end);
        pos = tlv.end;
      }
    };
    walk(0, der.length);
    return { tags, lengths };
  }

  function mutateDer(
    rng: Rng,
    der: Buffer,
    offsets: { tags: number[]; lengths: number[] },
  ): Buffer {
    let out = der;
    const rounds = rng.chance(0.7) ? 1 : 2 + rng.int(2);
    for (let i = 0; i < rounds; i++) {
      const roll = rng.next();
      if (roll < 0.3 && out.length === der.length) {
        out = editLengthByte(rng, out, rng.pick(offsets.lengths));
      } else if (roll < 0.4 && out.length === der.length) {
        out = Buffer.from(out);
        out[rng.pick(offsets.tags)] = rng.pick([
          0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x17, 0x18, 0x30, 0x31, 0xa0, 0x1f, 0x00,
        ]);
      } else {
        out = rng.pick(BYTE_MUTATORS)(rng, out);
      }
    }
    return out;
  }

  const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

  function mutatePem(rng: Rng, pem: string): string {
    const roll = rng.next();
    const at = rng.int(pem.length);
    if (roll < 0.4) {
      // Another base64 character (the decoded DER changes, the PEM stays well-formed).
      return pem.slice(0, at) + rng.pick([...BASE64]) + pem.slice(at + 1);
    }
    if (roll < 0.5)
      return pem.slice(0, at) + rng.pick(['\n', ' ', '\r\n', '\t', '=']) + pem.slice(at);
    if (roll < 0.6) return pem.slice(0, at) + pem.slice(at + 1 + rng.int(8));
    if (roll < 0.7)
      return pem.replace(
        rng.pick(['BEGIN', 'END', 'X509 CRL', '-----']),
        rng.pick(['BEGIM', 'END ', 'X509 CRT', '----', '']),
      );
    if (roll < 0.8) return pem.slice(0, at);
    if (roll < 0.9) return pem + pem.slice(0, at);
    return `${pem.slice(0, at)}-----END X509 CRL-----\n-----BEGIN X509 CRL-----\n${pem.slice(at)}`;
  }

  interface Tally {
    cases: number;
    parseOk: number;
    accepted: number;
    acceptedDifferentBytes: number;
    passedThrough: string[];
    crashes: string[];
    slowest: number;
  }

  function sameSignedContent(a: ParsedCrl, b: ParsedCrl): boolean {
    return (
      Buffer.from(a.tbs).equals(Buffer.from(b.tbs)) &&
      Buffer.from(a.signature).equals(Buffer.from(b.signature))
    );
  }

  /** Runs one mutated input through parseCrl (DER only) and loadTrustData, and judges it. */
  function judge(
    tally: Tally,
    label: string,
    base: { der: Buffer; parsed: ParsedCrl },
    file: string,
    bytes: Buffer,
    isDer: boolean,
  ): void {
    tally.cases++;
    const started = performance.now();
    if (isDer) {
      try {
        parseCrl(bytes);
        tally.parseOk++;
      } catch (err) {
        if (!isDocumented(err))
          tally.crashes.push(
            `${label} parseCrl ${describeError(err)} input=${bytes.toString('hex')}`,
          );
      }
    }
    writeFileSync(file, bytes);
    let accepted = false;
    try {
      loadTrustData({ clientCaFile: caFile, crlFiles: [file], crlMissingPolicy: 'allow' }, null);
      accepted = true;
    } catch (err) {
      if (!isDocumented(err))
        tally.crashes.push(
          `${label} loadTrustData ${describeError(err)} input=${bytes.toString('hex')}`,
        );
    }
    tally.slowest = Math.max(tally.slowest, performance.now() - started);
    if (!accepted) return;
    tally.accepted++;
    const ders = isDer ? [bytes] : readBlocks(bytes, ['X509 CRL']).map((b) => b.der);
    for (const der of ders) {
      if (!sameSignedContent(parseCrl(der), base.parsed)) {
        tally.passedThrough.push(
          `${label}: accepted with changed signed content, input=${bytes.toString('hex')}`,
        );
      }
    }
    if (isDer && !bytes.equals(base.der)) tally.acceptedDifferentBytes++;
  }

  test(`${DER_CASES_PER_CRL * 4} DER and ${PEM_CASES_PER_CRL * 4} PEM mutations: documented errors only, no slow case, nothing forged accepted`, () => {
    const rng = new Rng(SEED);
    const tally: Tally = {
      cases: 0,
      parseOk: 0,
      accepted: 0,
      acceptedDifferentBytes: 0,
      passedThrough: [],
      crashes: [],
      slowest: 0,
    };
    const file = join(dir, 'fuzz.crl');
    for (const base of bases) {
      // The unmutated CRL is accepted: the oracle below is not vacuous.
      writeFileSync(file, base.der);
      const loaded = loadTrustData(
        { clientCaFile: caFile, crlFiles: [file], crlMissingPolicy: 'allow' },
        null,
      );
      assert.equal(loaded.crls[0]?.entries, base.parsed.entries.count, base.name);
      const offsets = tlvOffsets(base.der);
      for (let i = 0; i < DER_CASES_PER_CRL; i++) {
        const mutated = mutateDer(rng, base.der, offsets);
        judge(tally, `${base.name} DER #${i}`, base, file, mutated, true);
      }
      const pem = crlPem(base.der);
      for (let i = 0; i < PEM_CASES_PER_CRL; i++) {
        const mutated = Buffer.from(mutatePem(rng, pem), 'latin1');
        judge(tally, `${base.name} PEM #${i}`, base, file, mutated, false);
      }
    }
    const summary = `seed ${SEED}: ${tally.cases} cases, parseCrl accepted ${tally.parseOk}, loadTrustData accepted ${tally.accepted} (of which ${tally.acceptedDifferentBytes} DER with different bytes but the same signed content), passed through ${tally.passedThrough.length}, crashes ${tally.crashes.length}, slowest ${tally.slowest.toFixed(1)} ms`;
    console.log(`# fuzz CRL: ${summary}`);
    assert.deepEqual(tally.crashes.slice(0, 5), [], summary);
    assert.deepEqual(tally.passedThrough.slice(0, 5), [], summary);
    assert.ok(tally.slowest < SLOW_CASE_MS, summary);
    assert.equal(tally.cases, (DER_CASES_PER_CRL + PEM_CASES_PER_CRL) * bases.length);
  });
});

describe('fuzz: HTTP/1.1 request heads through the proxy', () => {
  const CASES = 800;
  const BUDGET_MS = 35_000;
  const MIN_CASES = 150;
  const SEED = fuzzSeed(0x5eed_4a1);
  const CONCURRENCY = 6;
  /** Quiet time after which the client ends its side of the connection. */
  const IDLE_MS = 800;
  /** How long the proxy may take to close after the client has ended its side. */
  const CLOSE_BOUND_MS = 10_000;
  const fixture = aliceStackForThisDescribe();

  const host = () => `127.0.0.1:${fixture.stack.proxy.port}`;
  const UA = 'User-Agent: kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd';
  /** Realistic kubectl requests, each carrying client-supplied identity headers. */
  const corpus = (): string[] => {
    const json =
      '{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},"status":{"userInfo":{}}}';
    const patch = '{"metadata":{"labels":{"fuzz":"yes"}}}';
    const del = '{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}';
    return [
      `GET /api?timeout=32s HTTP/1.1\r\nHost: ${host()}\r\n${UA}\r\nAccept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json\r\nX-Remote-User: spoof-admin\r\nX-Remote-Group: spoof:system:masters\r\nAccept-Encoding: gzip\r\n\r\n`,
      `GET /api/v1/namespaces/default/pods?limit=500 HTTP/1.1\r\nHost: ${host()}\r\n${UA}\r\nAccept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json\r\nX_Remote_Extra_Scopes: spoof-scope\r\nx-remote-user: spoof-admin\r\n\r\n`,
      `GET /api/v1/nodes?watch=true&resourceVersion=1&timeoutSeconds=5 HTTP/1.1\r\nHost: ${host()}\r\n${UA}\r\nAccept: application/json\r\nX-Remote-Uid: spoof-uid\r\nX-REMOTE-GROUP: spoof:system:masters\r\n\r\n`,
      `POST /apis/authentication.k8s.io/v1/selfsubjectreviews HTTP/1.1\r\nHost: ${host()}\r\n${UA}\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\nX-Remote-User: spoof-admin\r\n\r\n${json}`,
      `PATCH /api/v1/namespaces/default/pods/demo HTTP/1.1\r\nHost: ${host()}\r\n${UA}\r\nContent-Type: application/strategic-merge-patch+json\r\nTransfer-Encoding: chunked\r\nX-Remote-Group: spoof:system:masters\r\n\r\n${patch.length.toString(16)}\r\n${patch}\r\n0\r\n\r\n`,
      `DELETE /api/v1/namespaces/default/pods/ghost HTTP/1.1\r\nHost: ${host()}\r\n${UA}\r\nContent-Type: application/json\r\nContent-Length: ${del.length}\r\nX-Remote-User: spoof-admin\r\n\r\n${del}`,
      `GET /api/v1/namespaces/default/pods/demo/exec?command=true&container=app&stdout=true HTTP/1.1\r\nHost: ${host()}\r\n${UA}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\nX-Remote-User: spoof-admin\r\n\r\n`,
      `GET /version HTTP/1.1\r\nHost: ${host()}\r\nX-Remote-User: spoof-1\r\n\r\nGET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nHost: ${host()}\r\nX-Remote-Group: spoof:system:masters\r\nx_remote_user: spoof-2\r\n\r\n`,
    ];
  };

  const TOKENS = [
    '\r\n',
    '\n',
    '\r',
    ' ',
    '\t',
    ':',
    ',',
    ';',
    '\u0000',
    '_',
    '-',
    '\r\n\r\n',
    'X-Remote-User: spoof-dict\r\n',
    'x_remote_group: spoof-dict\r\n',
    ' X-Remote-User: spoof-fold\r\n',
    'X-Remote-Extra-a: spoof-dict\r\n',
    'Transfer-Encoding: chunked\r\n',
    'Content-Length: 0\r\n',
    'Content-Length: 12\r\n',
    'Connection: close\r\n',
    'Connection: Upgrade\r\n',
    'Upgrade: websocket\r\n',
    'Expect: 100-continue\r\n',
    'Host: other\r\n',
    '0\r\n\r\n',
    'HTTP/1.1',
    'HTTP/1.0',
    'GET /api HTTP/1.1\r\nHost: x\r\nX-Remote-User: spoof-pipelined\r\n\r\n',
    'é',
    '%00',
  ];

  function mutateHead(rng: Rng, input: Buffer): Buffer {
    let out = input;
    const rounds = 1 + rng.int(3);
    for (let i = 0; i < rounds; i++) {
      const roll = rng.next();
      if (roll < 0.45) out = spliceToken(rng, out, TOKENS);
      else if (roll < 0.6) out = flipCase(rng, out);
      else out = rng.pick(BYTE_MUTATORS)(rng, out);
    }
    return out;
  }

  /** Flips the case of a run of letters (header names are case-insensitive, values are not). */
  function flipCase(rng: Rng, input: Buffer): Buffer {
    const out = Buffer.from(input);
    const at = rng.int(Math.max(1, out.length));
    for (let i = at; i < Math.min(out.length, at + 1 + rng.int(12)); i++) {
      const c = out[i] as number;
      if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) out[i] = c ^ 0x20;
    }
    return out;
  }

  interface CaseResult {
    readonly statuses: number[];
    /** ms from our end() to the proxy's close; -1 when the proxy closed first. */
    readonly closeAfterEndMs: number;
    readonly hung: boolean;
  }

  /**
   * One mutated head on its own TLS connection: written at once; the client ends its side when
   * the answers are complete or the connection has been quiet for IDLE_MS, then expects the
   * proxy to close within CLOSE_BOUND_MS.
   */
  function runCase(bytes: Buffer, session: { ticket: Buffer | undefined }): Promise<CaseResult> {
    return new Promise((resolve, reject) => {
      const socket: TLSSocket = tlsConnect({
        host: '127.0.0.1',
        port: fixture.stack.proxy.port,
        ca: fixture.pki.clusterCa.certPem,
        cert: fixture.alice.certPem,
        key: fixture.alice.keyPem,
        ALPNProtocols: ['http/1.1'],
        ...(session.ticket === undefined ? {} : { session: session.ticket }),
      });
      let text = '';
      let connected = false;
      let endedAt = 0;
      let idle: NodeJS.Timeout | undefined;
      let bound: NodeJS.Timeout | undefined;
      const endOurSide = () => {
        if (endedAt !== 0 || socket.destroyed) return;
        endedAt = performance.now();
        socket.end();
        bound = setTimeout(() => {
          socket.destroy();
          finish(true);
        }, CLOSE_BOUND_MS);
      };
      const armIdle = () => {
        clearTimeout(idle);
        idle = setTimeout(endOurSide, IDLE_MS);
      };
      let done = false;
      const finish = (hung: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(idle);
        clearTimeout(bound);
        resolve({
          statuses: parseResponses(text).map((r) => r.status),
          closeAfterEndMs: endedAt === 0 ? -1 : performance.now() - endedAt,
          hung,
        });
      };
      socket.on('session', (ticket: Buffer) => {
        session.ticket = ticket;
      });
      socket.once('secureConnect', () => {
        connected = true;
        socket.write(bytes);
        armIdle();
      });
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        const responses = parseResponses(text);
        if (responses.length > 0 && responses.every((r) => r.complete)) setImmediate(endOurSide);
        else armIdle();
      });
      socket.on('error', (err: Error) => {
        // After the handshake a reset is just how a refusal may end; before it, a harness fault.
        if (!connected) reject(err);
      });
      socket.once('close', () => finish(false));
    });
  }

  test(`${CASES} mutated kubectl heads: the proxy keeps serving, connections end, only the proxy's identity upstream`, async () => {
    const rng = new Rng(SEED);
    const seeds = corpus().map((c) => Buffer.from(c, 'latin1'));
    const inputs = Array.from({ length: CASES }, () => mutateHead(rng, rng.pick(seeds)));
    const mark = fixture.stack.fake.requests.length;
    const started = performance.now();
    const session: { ticket: Buffer | undefined } = { ticket: undefined };
    const results: CaseResult[] = [];
    let next = 0;
    const worker = async () => {
      while (next < inputs.length && performance.now() - started < BUDGET_MS) {
        const input = inputs[next++] as Buffer;
        results.push(await runCase(input, session));
        assert.equal(
          fixture.stack.proxy.child.exitCode,
          null,
          `the proxy exited; last input ${JSON.stringify(input.toString('latin1'))}`,
        );
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const elapsed = performance.now() - started;

    const byStatus = new Map<string, number>();
    for (const r of results) {
      const key = r.statuses.length === 0 ? 'none' : r.statuses.join('+');
      byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
    }
    const hung = results.filter((r) => r.hung).length;
    const slowestClose = Math.max(0, ...results.map((r) => r.closeAfterEndMs));
    const upstream = fixture.stack.since(mark);
    const summary = `seed ${SEED}: ${results.length} cases in ${(elapsed / 1000).toFixed(1)} s, ${upstream.length} requests reached the apiserver, hung connections ${hung}, slowest close after the client's end ${slowestClose.toFixed(0)} ms, answers ${JSON.stringify(Object.fromEntries([...byStatus].sort((a, b) => b[1] - a[1]).slice(0, 12)))}`;
    console.log(`# fuzz h1: ${summary}`);

    assert.ok(
      results.length >= MIN_CASES,
      `only ${results.length} cases ran in the budget: ${summary}`,
    );
    assert.equal(hung, 0, summary);
    // Identity lines only: a mutated name (X-Remote-Usfr) legitimately carries its value up.
    for (const rec of upstream) assertIdentityExactly(rec as RecordedRequest, ALICE);
    await fixture.assertServing('/api?after-fuzz');
  });
});

describe('fuzz: HTTP/2 frames through the proxy', () => {
  const SEED = fuzzSeed(0x5eed_2b2);
  const CASES = 400;
  const BUDGET_MS = 15_000;
  const MIN_CASES = 100;
  /**
   * Several connections at once: clients dropped while their upstream connection is still
   * starting used to crash the node:http2 path; the frame relay must take them concurrently.
   */
  const CONCURRENCY = 6;
  /** How long one case may take to end (reset, END_STREAM, GOAWAY or close) before it is cut. */
  const CASE_MS = 500;
  const fixture = aliceStackForThisDescribe();

  test(`${CASES} mutated frame sequences: the proxy survives, keeps serving, only the proxy's identity upstream`, async () => {
    const rng = new Rng(SEED);
    const inputs = Array.from({ length: CASES }, (_, i) =>
      mutatedH2Request(rng, `/api?fuzz-h2-${i}`),
    );
    const started = performance.now();
    const outcomes = new Map<string, number>();
    let ran = 0;
    let next = 0;
    const worker = async () => {
      while (next < inputs.length && performance.now() - started < BUDGET_MS) {
        const input = inputs[next++] as Buffer;
        const client = await RawH2Client.connect(
          fixture.stack.proxy.url,
          fixture.pki.clusterCa.certPem,
          fixture.alice,
        );
        client.send(input);
        await client
          .waitFor(() => client.isClosed || client.streamDone(1), 'an end', CASE_MS)
          .catch(() => {});
        const outcome =
          client.goawayCode() !== null
            ? 'goaway'
            : client.resetCode(1) !== null
              ? 'reset'
              : client.status(1) !== null || client.framesOf(1).length > 0
                ? 'answered'
                : client.isClosed
                  ? 'closed'
                  : 'no end';
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        client.destroy();
        ran++;
        assert.equal(
          fixture.stack.proxy.child.exitCode,
          null,
          `the proxy exited; input ${input.toString('hex')}`,
        );
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const forwarded = fixture.stack.fake.requests.filter((r) => r.query.startsWith('fuzz-h2-'));
    const summary = `seed ${SEED}: ${ran} cases in ${((performance.now() - started) / 1000).toFixed(1)} s, ${forwarded.length} requests reached the apiserver, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`;
    console.log(`# fuzz h2: ${summary}`);
    assert.ok(ran >= MIN_CASES, `only ${ran} cases ran in the budget: ${summary}`);
    // Identity lines only: a mutated name (x-remote-usfr) legitimately carries its value up.
    for (const rec of forwarded) assertIdentityExactly(rec, ALICE);
    await fixture.assertServing('/api?after-fuzz');
  });
});
