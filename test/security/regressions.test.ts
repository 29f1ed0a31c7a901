/**
 * Regression tests for the defects the security batteries found (D1–D8), each asserting the
 * correct behaviour: smuggling through unframed bodies, crashes on HTTP/2 stream errors and
 * early disconnects, lost or out-of-order error answers, request targets, prototype-named
 * headers, and the one-upstream-connection rule for pipelined requests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RecordedRequest } from '../../src/demo/fake-apiserver/index.js';
import { Authority, type IssuedCert } from '../../src/demo/pki-factory.js';
import { FrameType } from '../../src/proxy/h2/frames.js';
import { makePki, type TestPki } from '../support/pki.js';
import { dataFrame, frame, headersFrame, RawH2Client, requestFields } from './h2-frames.js';
import {
  assertForwardedAs,
  closedWithin,
  completeResponses,
  rawH1,
  type Stack,
  settle,
  startStack,
  statusCodes,
} from './harness.js';
import { fuzzSeed, mutatedH2Request, Rng } from './mutate.js';

const ALICE = { user: 'alice', groups: ['dev'] };

let pki: TestPki;
let alice: IssuedCert;
let mallory: IssuedCert;
let stranger: IssuedCert;
const stacks: Stack[] = [];

before(async () => {
  pki = await makePki();
  [alice, mallory] = await Promise.all([pki.user('alice', ['dev']), pki.user('mallory', ['dev'])]);
  pki.writeCrl({ revoked: [{ serial: mallory.serial }], crlNumber: 2 });
  stranger = await (await Authority.create({ commonName: 'kubernetes' })).issue({
    commonName: 'stranger',
  });
});

after(async () => {
  await Promise.all(stacks.map((s) => s.stop()));
  pki?.cleanup();
});

/** Several of these are about the 401 path, which --reject-mode=status takes. */
async function freshStack(): Promise<Stack> {
  const stack = await startStack(pki, { proxyFlags: ['--reject-mode=status'] });
  stacks.push(stack);
  return stack;
}

function smuggled(tag: string): string {
  return `GET /api/v1/namespaces/kube-system/secrets?${tag} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Remote-User: spoof-admin\r\nX-Remote-Group: spoof:system:masters\r\n\r\n`;
}

describe('D1 (critical): a body on GET/HEAD/DELETE/OPTIONS is forwarded unframed — smuggled requests as anyone', () => {
  let stack: Stack;
  before(async () => {
    stack = await freshStack();
  });

  /** Only the client's own request may reach the apiserver, as alice. */
  async function assertNoSmuggling(bytes: string, tag: string): Promise<void> {
    const client = await rawH1(stack.proxy.url, pki.clusterCa.certPem, alice, bytes);
    try {
      await client.waitFor((text) => text.includes('\r\n\r\n'));
      await settle(500);
      const smuggledSeen = stack.fake.requests.filter((r) => r.query === tag);
      assert.deepEqual(
        smuggledSeen.map(
          (r) => `${r.method} ${r.path} as ${r.user?.username} ${JSON.stringify(r.user?.groups)}`,
        ),
        [],
        'a request hidden in the body reached the apiserver on the front-proxy connection',
      );
      for (const rec of stack.fake.requests.filter((r) => r.query === `first-${tag}`))
        assertForwardedAs(rec, ALICE);
    } finally {
      client.destroy();
    }
  }

  for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS']) {
    test(`${method} with a chunked body holding a request`, () => {
      const tag = `d1-${method.toLowerCase()}-chunked`;
      const body = smuggled(tag);
      return assertNoSmuggling(
        `${method} /api?first-${tag} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
        tag,
      );
    });
  }

  test('GET with a Content-Length body and "Connection: Content-Length"', () => {
    const tag = 'd1-get-connection-cl';
    const body = smuggled(tag);
    return assertNoSmuggling(
      `GET /api?first-${tag} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive, Content-Length\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      tag,
    );
  });
});

/** Sends frames on a raw h2 connection, waits, and reports whether the proxy process died. */
async function proxyDiesOf(
  cert: IssuedCert | undefined,
  send: (client: RawH2Client) => Promise<void> | void,
): Promise<boolean> {
  const stack = await freshStack();
  const client = await RawH2Client.connect(stack.proxy.url, pki.clusterCa.certPem, cert);
  try {
    await send(client);
    await settle(1500);
    return stack.proxy.child.exitCode !== null;
  } finally {
    client.destroy();
  }
}

describe('D2 (critical): an HTTP/2 stream error on the 401 path kills the proxy process', () => {
  // The forwarding path got its stream 'error' listener in 6f70124; the Rejecter's HTTP/2
  // server (src/proxy/reject.ts) has none, so any refused client can end the process.
  const mismatch = (c: RawH2Client) => {
    c.send(
      headersFrame(1, requestFields('/api', [['content-length', '10']], 'POST'), {
        endStream: false,
      }),
    );
    c.send(dataFrame(1, 'hello'));
  };

  test('a client with any self-signed certificate (unknown CA): content-length mismatch', async () => {
    const died = await proxyDiesOf(stranger, mismatch);
    assert.equal(died, false, 'the proxy process exited');
  });

  test('a revoked client: content-length mismatch', async () => {
    const died = await proxyDiesOf(mallory, mismatch);
    assert.equal(died, false, 'the proxy process exited');
  });

  test('a revoked client: RST_STREAM(PROTOCOL_ERROR) on its open stream', async () => {
    const died = await proxyDiesOf(mallory, (c) => {
      c.send(
        headersFrame(1, requestFields('/api', [], 'POST'), {
          endStream: false,
        }),
      );
      const code = Buffer.alloc(4);
      code.writeUInt32BE(1);
      c.send(frame(FrameType.RstStream, 0, 1, code));
    });
    assert.equal(died, false, 'the proxy process exited');
  });
});

describe('D3 (critical): HTTP/2 clients that leave at once crash the proxy (setLocalWindowSize on a destroyed session)', () => {
  /** Opens HTTP/2 connections (preface sent) and drops each within a few ms, 8 at a time. */
  async function quickDisconnects(cert: IssuedCert | undefined, stack: Stack, total: number) {
    let opened = 0;
    const one = async () => {
      const client = await RawH2Client.connect(stack.proxy.url, pki.clusterCa.certPem, cert).catch(
        () => null,
      );
      await settle(opened % 5);
      client?.destroy();
    };
    const worker = async () => {
      while (opened < total && stack.proxy.child.exitCode === null) {
        opened++;
        await one();
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await settle(500);
    return opened;
  }

  for (const [label, cert] of [
    ['with a good certificate', () => alice],
    ['without any certificate', () => undefined],
  ] as const) {
    test(`300 connections ${label}, each dropped right after the handshake`, async () => {
      const stack = await freshStack();
      const opened = await quickDisconnects(cert(), stack, 300);
      assert.equal(
        stack.proxy.child.exitCode,
        null,
        `the proxy exited after ${opened} connections`,
      );
    });
  }

  test('the HTTP/2 fuzz of fuzz.test.ts with 6 connections at a time', async () => {
    const rng = new Rng(fuzzSeed(0x5eed_2b2));
    const stack = await freshStack();
    const inputs = Array.from({ length: 400 }, (_, i) => mutatedH2Request(rng, `/api?c-${i}`));
    let next = 0;
    const worker = async () => {
      while (next < inputs.length && stack.proxy.child.exitCode === null) {
        const input = inputs[next++] as Buffer;
        const client = await RawH2Client.connect(
          stack.proxy.url,
          pki.clusterCa.certPem,
          alice,
        ).catch(() => null);
        if (client === null) continue;
        client.send(input);
        await client
          .waitFor(() => client.isClosed || client.streamDone(1), 'an end', 500)
          .catch(() => {});
        client.destroy();
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    assert.equal(stack.proxy.child.exitCode, null, `the proxy exited after ${next} inputs`);
  });
});

describe('D4 (medium): the 431/400 Status of a head that arrives in several reads is lost', () => {
  test('a 100 KB header gets its 431 Status before the close', async () => {
    const stack = await freshStack();
    let answered = 0;
    for (let i = 0; i < 5; i++) {
      const client = await rawH1(
        stack.proxy.url,
        pki.clusterCa.certPem,
        alice,
        `GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'a'.repeat(100 * 1024)}\r\n\r\n`,
      );
      await closedWithin(client, 10_000);
      if (statusCodes(client.text)[0] === 431) answered++;
      client.destroy();
    }
    assert.equal(answered, 5, `${answered} of 5 connections got the 431 before the close`);
  });
});

describe('D5 (low): a 400 overtakes the answer to the pipelined request before it', () => {
  test('GET then a malformed request: the client reads the GET answer first', async () => {
    const stack = await freshStack();
    const client = await rawH1(
      stack.proxy.url,
      pki.clusterCa.certPem,
      alice,
      'DELETE /api/v1/namespaces/default/pods/ghost?d4 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' +
        'POST /api HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    try {
      await closedWithin(client, 10_000);
      await settle();
      const forwarded = stack.fake.requests.filter((r) => r.query === 'd4').length;
      assert.equal(forwarded, 1, 'the DELETE went upstream');
      assert.deepEqual(
        statusCodes(client.text),
        // The fake, like a read-only apiserver, answers DELETE with 405.
        [405, 400],
        'the answer to the DELETE comes first, then the 400',
      );
    } finally {
      client.destroy();
    }
  });
});

describe('D6 (low): request targets the proxy should refuse', () => {
  test('absolute-form request target: 400, nothing upstream', async () => {
    const stack = await freshStack();
    const client = await rawH1(
      stack.proxy.url,
      pki.clusterCa.certPem,
      alice,
      'GET https://evil.example/api?d5 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    );
    try {
      await client
        .waitFor((text) => completeResponses(text) >= 1 || text === '', 5000)
        .catch(() => {});
      await settle();
      assert.deepEqual(
        stack.fake.requests.filter((r) => r.query === 'd5').map((r) => r.path),
        [],
        'forwarded upstream with the absolute-form target',
      );
      assert.deepEqual(statusCodes(client.text), [400]);
    } finally {
      client.destroy();
    }
  });

  test('CONNECT over HTTP/1.1: a 400 Status before the close', async () => {
    const stack = await freshStack();
    const client = await rawH1(
      stack.proxy.url,
      pki.clusterCa.certPem,
      alice,
      'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n',
    );
    try {
      assert.ok(await closedWithin(client, 10_000));
      assert.deepEqual(statusCodes(client.text), [400], `got ${JSON.stringify(client.text)}`);
    } finally {
      client.destroy();
    }
  });
});

describe('D7 (low): HTTP/2 header names like Object.prototype members fabricate header lines', () => {
  test('"constructor" and "__proto__" arrive exactly as sent', async () => {
    const stack = await freshStack();
    const client = await RawH2Client.connect(stack.proxy.url, pki.clusterCa.certPem, alice);
    try {
      client.send(
        headersFrame(
          1,
          requestFields('/api?d6', [
            ['constructor', 'x'],
            ['__proto__', 'y'],
            ['tostring', 'z'],
          ]),
        ),
      );
      await client.waitFor(() => client.streamDone(1), 'stream 1');
      const rec = stack.fake.requests.find((r) => r.query === 'd6') as RecordedRequest;
      assert.deepEqual(
        rec.rawHeaders.filter(([n]) => ['constructor', '__proto__', 'tostring'].includes(n)),
        [
          ['constructor', 'x'],
          ['__proto__', 'y'],
          ['tostring', 'z'],
        ],
      );
    } finally {
      client.destroy();
    }
  });
});

describe('D8 (low): pipelined requests can open a second upstream connection', () => {
  test('two pipelined GETs go up one upstream connection', async () => {
    const stack = await freshStack();
    const client = await rawH1(
      stack.proxy.url,
      pki.clusterCa.certPem,
      alice,
      'GET /api?d7a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /api?d7b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    );
    try {
      await client.waitFor((text) => completeResponses(text) === 2);
      const ids = ['d7a', 'd7b'].map(
        (q) => stack.fake.requests.find((r) => r.query === q)?.connectionId,
      );
      assert.equal(ids[0], ids[1], `upstream connections ${JSON.stringify(ids)}`);
    } finally {
      client.destroy();
    }
  });
});

describe('fuzz (c) from a refused client: mutated HTTP/2 frames at the 401 path', () => {
  test('300 mutated frame sequences from an unknown-CA client: the proxy survives every one', async () => {
    const rng = new Rng(fuzzSeed(0x5eed_2b3));
    let stack = await freshStack();
    let crashes = 0;
    const crashInputs: string[] = [];
    for (let i = 0; i < 300; i++) {
      const bytes = mutatedH2Request(rng, `/api?fuzz-h2-refused-${i}`);
      const client = await RawH2Client.connect(stack.proxy.url, pki.clusterCa.certPem, stranger);
      client.send(bytes);
      await client
        .waitFor(() => client.isClosed || client.streamDone(1), 'an end', 1000)
        .catch(() => {});
      client.destroy();
      await settle(30);
      if (stack.proxy.child.exitCode !== null) {
        crashes++;
        if (crashInputs.length < 3) crashInputs.push(bytes.toString('hex'));
        stack = await freshStack();
      }
    }
    const forwarded = stacks.flatMap((s) =>
      s.fake.requests.filter((r) => r.query.startsWith('fuzz-h2-refused-')),
    );
    console.log(
      `# fuzz h2 (refused client): 300 cases, ${forwarded.length} forwarded, ${crashes} crashes`,
    );
    assert.deepEqual(forwarded, [], 'a refused client reached the apiserver');
    assert.equal(
      crashes,
      0,
      `${crashes} of 300 inputs killed the proxy; first: ${crashInputs.join(' | ')}`,
    );
  });
});
