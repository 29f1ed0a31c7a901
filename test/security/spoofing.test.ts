/**
 * Identity spoofing battery (issue 8, item 1): whatever a client writes, the apiserver sees
 * exactly the proxy's identity lines — `X-Remote-User: <CN>` and one `X-Remote-Group` per O —
 * or nothing at all. Every assertion is on what the fake kube-apiserver recorded.
 */
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import type { RecordedRequest } from '../../src/demo/fake-apiserver/index.js';
import { Authority, type IssuedCert } from '../../src/demo/pki-factory.js';
import { ErrorCode, Flag, FrameType } from '../../src/proxy/h2/frames.js';
import {
  type ClientResponse,
  type RawTlsClient,
  requestH1,
  requestH2,
  websocketUpgradeHead,
} from '../fake-apiserver/testkit.js';
import { makePki, type TestPki } from '../support/pki.js';
import { frame, headerBlock, headersFrame, RawH2Client, requestFields } from './h2-frames.js';
import {
  assertForwardedAs,
  assertNoSpoof,
  closedWithin,
  completeResponses,
  type Expected,
  type IdentityNames,
  identityLines,
  nextTag,
  type RecordedProxy,
  rawH1,
  SPOOF,
  type Stack,
  settle,
  startRecordedProxy,
  startStack,
  statusCodes,
} from './harness.js';

const ALICE: Expected = { user: 'alice', groups: ['dev', 'ops'] };
const TOKEN = 'robot-token-security-battery';
const EXEC = '/api/v1/namespaces/default/pods/demo/exec';
const CUSTOM: IdentityNames = {
  user: ['X-Auth-User', 'X-Alt-User'],
  group: ['X-Auth-Group'],
  uid: ['X-Auth-Uid'],
  extraPrefixes: ['X-Auth-Extra-'],
};

let pki: TestPki;
let stack: Stack;
let custom: Stack;
let alice: IssuedCert;
let mallory: IssuedCert;
let stranger: IssuedCert;

before(async () => {
  pki = await makePki();
  [alice, mallory] = await Promise.all([
    pki.user('alice', ['dev', 'ops']),
    pki.user('mallory', ['dev']),
  ]);
  stranger = await (await Authority.create({ commonName: 'kubernetes' })).issue({
    commonName: 'stranger',
    organizations: ['system:masters'],
  });
  pki.writeCrl({ revoked: [{ serial: mallory.serial }], crlNumber: 2 });
  [stack, custom] = await Promise.all([
    startStack(pki, {
      proxyFlags: ['--reject-mode=status'],
      tokens: {
        [TOKEN]: { username: 'system:serviceaccount:default:robot', groups: ['robots'] },
      },
    }),
    startStack(pki, { names: CUSTOM }),
  ]);
});

after(async () => {
  await Promise.all([stack?.stop(), custom?.stop()]);
  pki?.cleanup();
});

function recordsTagged(s: Stack, tag: string): RecordedRequest[] {
  return s.fake.requests.filter((r) => r.query === tag);
}

/** Exactly one request tagged `tag` reached the stack's apiserver, as alice and nothing else. */
function assertOnceAsAlice(tag: string, label?: string): void {
  const seen = recordsTagged(stack, tag);
  assert.equal(seen.length, 1, label);
  assertForwardedAs(seen[0] as RecordedRequest, ALICE, stack.names, label);
}

/** Writes `bytes` on a raw TLS connection (alice's certificate unless told); `check` reads it. */
async function withRawH1<T>(
  bytes: string,
  check: (client: RawTlsClient) => Promise<T>,
  url = stack.proxy.url,
  cert = alice,
): Promise<T> {
  const client = await rawH1(url, pki.clusterCa.certPem, cert, bytes);
  try {
    return await check(client);
  } finally {
    client.destroy();
  }
}

type Protocol = 'h1' | 'h2';
type Lines = ReadonlyArray<readonly [string, string]>;

/** One request through the proxy with Node's client for `protocol`; the fake's record(s) of it. */
async function send(
  s: Stack,
  protocol: Protocol,
  headers: Lines,
  cert: IssuedCert | null = alice,
  path = '/api',
): Promise<{ res: ClientResponse; seen: RecordedRequest[] }> {
  const tag = nextTag();
  const url = `${s.proxy.url}${path}?${tag}`;
  const options = { ca: pki.clusterCa.certPem, headers, ...(cert === null ? {} : { cert }) };
  const res = await (protocol === 'h1' ? requestH1(url, options) : requestH2(url, options));
  return { res, seen: recordsTagged(s, tag) };
}

/** The request went through once, as alice and nothing else. */
async function assertSpoofStripped(
  s: Stack,
  protocol: Protocol,
  headers: Lines,
  expected: Expected = ALICE,
): Promise<void> {
  const { res, seen } = await send(s, protocol, headers);
  assert.equal(res.status, 200, res.body);
  assert.equal(seen.length, 1, 'exactly one request reached the apiserver');
  assertForwardedAs(seen[0] as RecordedRequest, expected, s.names);
}

/** Refused before anything goes upstream: 401 with a reason naming the problem. */
async function assertRefused(
  protocol: Protocol,
  headers: Lines,
  cert: IssuedCert,
  reason: RegExp,
): Promise<void> {
  const { res, seen } = await send(stack, protocol, headers, cert);
  assert.equal(res.status, 401, `${protocol}: ${res.body}`);
  assert.match(res.body, reason);
  await settle();
  assert.deepEqual(seen, []);
}

/** Every case mix and spelling of the identity headers a client could try. */
const INJECTIONS: ReadonlyArray<readonly [string, Lines]> = [
  ['X-Remote-User', [['X-Remote-User', 'spoof-admin']]],
  ['x-remote-user (lowercase)', [['x-remote-user', 'spoof-admin']]],
  ['X-REMOTE-USER (uppercase)', [['X-REMOTE-USER', 'spoof-admin']]],
  ['x-ReMoTe-UsEr (mixed case)', [['x-ReMoTe-UsEr', 'spoof-admin']]],
  ['X_Remote_User (underscores)', [['X_Remote_User', 'spoof-admin']]],
  ['x_remote-USER (mixed separators)', [['x_remote-USER', 'spoof-admin']]],
  ['X-Remote-Group', [['X-Remote-Group', 'spoof:system:masters']]],
  ['x-remote-group (lowercase)', [['x-remote-group', 'spoof:system:masters']]],
  ['X-REMOTE-GROUP (uppercase)', [['X-REMOTE-GROUP', 'spoof:system:masters']]],
  ['X_Remote_Group (underscores)', [['X_Remote_Group', 'spoof:system:masters']]],
  ['X-Remote-Extra-Scopes', [['X-Remote-Extra-Scopes', 'spoof-scope']]],
  ['x-remote-extra-acme.com%2Frole (escaped key)', [['x-remote-extra-acme.com%2Frole', 'spoof']]],
  ['X_REMOTE_EXTRA_SCOPES (underscores, uppercase)', [['X_REMOTE_EXTRA_SCOPES', 'spoof-scope']]],
  ['X-Remote-Extra- (empty key)', [['X-Remote-Extra-', 'spoof-scope']]],
  ['X-Remote-Uid', [['X-Remote-Uid', 'spoof-uid']]],
  ['x_remote_uid (underscores)', [['x_remote_uid', 'spoof-uid']]],
  [
    'X-Remote-User duplicated',
    [
      ['X-Remote-User', 'spoof-first'],
      ['X-Remote-User', 'spoof-second'],
    ],
  ],
  [
    'X-Remote-Group duplicated across spellings',
    [
      ['X-Remote-Group', 'spoof:a'],
      ['x-remote-group', 'spoof:b'],
      ['X_REMOTE_GROUP', 'spoof:c'],
    ],
  ],
  ['value with leading and trailing spaces', [['X-Remote-User', '   spoof-admin   ']]],
  ['empty value', [['X-Remote-User', '']]],
  [
    'every identity header at once',
    [
      ['X-Remote-User', 'spoof-admin'],
      ['X-Remote-Uid', 'spoof-uid'],
      ['X-Remote-Group', 'spoof:system:masters'],
      ['X-Remote-Extra-Scopes', 'spoof-scope'],
      ['x_remote_user', 'spoof-admin'],
      ['Accept', 'application/json'],
    ],
  ],
];

describe('client identity headers, every spelling, HTTP/1.1 and HTTP/2 (Node clients)', () => {
  for (const [label, headers] of INJECTIONS) {
    for (const protocol of ['h1', 'h2'] as const) {
      test(`${protocol}: ${label}`, () => assertSpoofStripped(stack, protocol, headers));
    }
  }

  test('h1: other headers keep their order and values next to the stripped ones', async () => {
    const { res, seen } = await send(stack, 'h1', [
      ['Accept', 'application/json'],
      ['X-Remote-User', 'spoof-admin'],
      ['User-Agent', 'kubectl/v1.32.4'],
    ]);
    assert.equal(res.status, 200);
    const rec = seen[0] as RecordedRequest;
    assertForwardedAs(rec, ALICE);
    assert.deepEqual(
      rec.rawHeaders.filter(([n]) => n === 'accept' || n === 'user-agent'),
      [
        ['accept', 'application/json'],
        ['user-agent', 'kubectl/v1.32.4'],
      ],
    );
  });
});

/** Raw request heads a Node client would refuse to write. */
function rawGet(tag: string, lines: readonly string[]): string {
  return `GET /api?${tag} HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;
}

/** A malformed head: 400 Status, connection closed, nothing reached the apiserver. */
async function assertRefusedRaw(tag: string, bytes: string, code = 400): Promise<void> {
  await withRawH1(bytes, async (client) => {
    assert.ok(await closedWithin(client, 10_000), 'the proxy closed the connection');
    assert.deepEqual(statusCodes(client.text), [code], client.text);
    assert.match(client.text, /"kind":"Status"/);
    await settle();
    assert.deepEqual(recordsTagged(stack, tag), [], 'nothing reached the apiserver');
  });
}

describe('raw HTTP/1.1: spaces, obs-fold and pipelining', () => {
  test('space between the name and the colon is a 400', async () => {
    const tag = nextTag();
    await assertRefusedRaw(tag, rawGet(tag, ['X-Remote-User : spoof-admin']));
  });

  test('tab between the name and the colon is a 400', async () => {
    const tag = nextTag();
    await assertRefusedRaw(tag, rawGet(tag, ['X-Remote-User\t: spoof-admin']));
  });

  test('a header line starting with a space (leading space in the name) is a 400', async () => {
    const tag = nextTag();
    await assertRefusedRaw(
      tag,
      `GET /api?${tag} HTTP/1.1\r\n X-Remote-User: spoof-admin\r\nHost: 127.0.0.1\r\n\r\n`,
    );
  });

  test('obs-fold continuing another header into an identity line is a 400', async () => {
    const tag = nextTag();
    await assertRefusedRaw(tag, rawGet(tag, ['X-Note: a', ' X-Remote-User: spoof-admin']));
  });

  test('obs-fold continuing an identity value is a 400', async () => {
    const tag = nextTag();
    await assertRefusedRaw(tag, rawGet(tag, ['X-Remote-Group: spoof-a', '\tspoof:system:masters']));
  });

  test('leading and trailing spaces around a raw identity value: stripped', async () => {
    const tag = nextTag();
    const head = rawGet(tag, [
      'X-Remote-User:    spoof-admin   ',
      'X_Remote_Group:\tspoof:masters\t',
    ]);
    await withRawH1(head, async (client) => {
      await client.waitForResponse();
      assert.deepEqual(statusCodes(client.text), [200]);
      assertOnceAsAlice(tag);
    });
  });

  test('a pipelined second request on one connection is sanitised like the first', async () => {
    const first = nextTag();
    const second = nextTag();
    const bytes =
      rawGet(first, ['X-Remote-User: spoof-1']) +
      rawGet(second, ['X_Remote_Group: spoof:masters', 'X-REMOTE-USER: spoof-2']);
    await withRawH1(bytes, async (client) => {
      await client.waitFor((text) => completeResponses(text) === 2);
      assert.deepEqual(statusCodes(client.text), [200, 200]);
      for (const tag of [first, second]) assertOnceAsAlice(tag, tag);
    });
  });

  test('a pipelined request behind a Content-Length body is sanitised too', async () => {
    const first = nextTag();
    const second = nextTag();
    const body = '{"kind":"Status"}';
    const bytes =
      `POST /api?${first} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nX-Remote-User: spoof-1\r\n\r\n${body}` +
      rawGet(second, ['X-Remote-User: spoof-2', 'X-Remote-Extra-Scopes: spoof']);
    await withRawH1(bytes, async (client) => {
      await client.waitFor((text) => completeResponses(text) === 2);
      for (const tag of [first, second]) assertOnceAsAlice(tag, tag);
    });
  });
});

/** One raw HTTP/2 request on a fresh connection; `check` reads it once its stream is done. */
async function rawH2(
  send: (client: RawH2Client) => void,
  check: (client: RawH2Client) => Promise<void> | void,
): Promise<void> {
  const client = await RawH2Client.connect(stack.proxy.url, pki.clusterCa.certPem, alice);
  try {
    send(client);
    await client.waitFor(() => client.streamDone(1), 'the end of stream 1');
    await check(client);
  } finally {
    client.destroy();
  }
}

/*
 * HTTP/2 casing: Node's client lowercases every name, so odd casing is sent as raw HPACK here.
 * The relay checks request fields as nghttp2 does (src/proxy/h2/request.ts): an uppercase name
 * makes the request malformed (stream reset). Names with spaces and values with CR, LF, NUL or
 * surrounding whitespace are dropped as invalid fields; the request goes on without them.
 */
describe('raw HTTP/2 header blocks (HPACK literals)', () => {
  function assertAnsweredOnceAsAlice(client: RawH2Client, tag: string): void {
    assert.equal(client.status(1), 200, client.describe());
    assertOnceAsAlice(tag);
  }

  test('an uppercase identity name is a malformed request: stream reset, nothing forwarded', async () => {
    const tag = nextTag();
    await rawH2(
      (c) =>
        c.send(headersFrame(1, requestFields(`/api?${tag}`, [['X-Remote-User', 'spoof-admin']]))),
      async (client) => {
        assert.equal(client.resetCode(1), ErrorCode.ProtocolError, client.describe());
        await settle();
        assert.deepEqual(recordsTagged(stack, tag), []);
      },
    );
  });

  for (const [label, fields] of [
    [
      'lowercase identity names',
      [
        ['x-remote-user', 'spoof-admin'],
        ['x-remote-group', 'spoof'],
      ],
    ],
    [
      'underscore identity names',
      [
        ['x_remote_user', 'spoof-admin'],
        ['x_remote_extra_a', 'spoof'],
      ],
    ],
    [
      'a name with a trailing space (dropped, as nghttp2 does)',
      [['x-remote-user ', 'spoof-admin']],
    ],
    [
      'a value with CR LF inside (dropped, as nghttp2 does)',
      [['x-note', 'a\r\nx-remote-user: spoof']],
    ],
    ['a value with NUL inside (dropped, as nghttp2 does)', [['x-remote-user', 'spoof\u0000admin']]],
  ] as const) {
    test(`${label}: only the proxy's identity goes upstream`, async () => {
      const tag = nextTag();
      await rawH2(
        (c) => c.send(headersFrame(1, requestFields(`/api?${tag}`, fields))),
        (client) => assertAnsweredOnceAsAlice(client, tag),
      );
    });
  }

  test('identity headers split across HEADERS and two CONTINUATION frames are stripped', async () => {
    const tag = nextTag();
    const block = headerBlock(
      requestFields(`/api?${tag}`, [
        ['x-remote-user', 'spoof-admin'],
        ['x-remote-group', 'spoof:system:masters'],
      ]),
    );
    await rawH2(
      (c) => {
        c.send(frame(FrameType.Headers, Flag.EndStream, 1, block.subarray(0, 41)));
        c.send(frame(FrameType.Continuation, 0, 1, block.subarray(41, 67)));
        c.send(frame(FrameType.Continuation, Flag.EndHeaders, 1, block.subarray(67)));
      },
      (client) => assertAnsweredOnceAsAlice(client, tag),
    );
  });
});

describe('trailers', () => {
  let recorded: RecordedProxy;

  before(async () => {
    recorded = await startRecordedProxy(pki);
  });
  after(() => recorded?.stop());

  const chunkedWithTrailers = (host: string, tag: string) =>
    `POST /api?${tag} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nTrailer: X-Remote-User, X-Remote-Group\r\n\r\n` +
    '5\r\nhello\r\n0\r\nX-Remote-User: spoof-admin\r\nX-Remote-Group: spoof:masters\r\nX-Checksum: abc\r\n\r\n';

  test('h1 chunked trailers: the fake sees only the proxy identity', async () => {
    const tag = nextTag();
    await withRawH1(chunkedWithTrailers('127.0.0.1', tag), async (client) => {
      await client.waitForResponse();
      assertOnceAsAlice(tag);
    });
  });

  test('h1 chunked trailers: no identity trailer is forwarded (recording upstream)', async () => {
    const tag = nextTag();
    await withRawH1(
      chunkedWithTrailers('127.0.0.1', tag),
      async () => {
        const rec = await recorded.recorder.waitFor((r) => r.path.endsWith(tag));
        assert.equal(rec.body, 'hello');
        assert.ok(rec.complete);
        assert.deepEqual(
          rec.trailers.filter(([n]) => n.includes('remote') || n.includes(SPOOF)),
          [],
          `trailers forwarded: ${JSON.stringify(rec.trailers)}`,
        );
        assert.ok(!JSON.stringify(rec.trailers).includes(SPOOF));
        assert.deepEqual(
          rec.headers.filter(([n]) => n.startsWith('x-remote-')),
          [
            ['x-remote-user', 'alice'],
            ['x-remote-group', 'dev'],
            ['x-remote-group', 'ops'],
          ],
        );
      },
      recorded.proxy.url,
    );
  });

  /** POST with h2 request trailers carrying identity headers, through `proxyUrl`. */
  function h2WithTrailers(proxyUrl: string, tag: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const session = h2connect(proxyUrl, {
        ca: pki.clusterCa.certPem,
        cert: alice.certPem,
        key: alice.keyPem,
      });
      const timer = setTimeout(() => {
        session.destroy();
        reject(new Error('h2 request with trailers timed out'));
      }, 10_000);
      session.on('error', reject);
      const stream = session.request(
        { ':method': 'POST', ':path': `/api?${tag}` },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () =>
        stream.sendTrailers({
          'x-remote-user': 'spoof-admin',
          'x-remote-group': 'spoof:masters',
          x_remote_extra_a: 'spoof',
          'x-checksum': 'abc',
        }),
      );
      let status = 0;
      stream.on('response', (h) => {
        status = Number(h[':status']);
      });
      stream.resume();
      stream.on('end', () => {
        clearTimeout(timer);
        session.close();
        resolve(status);
      });
      stream.on('error', reject);
      stream.end('hello');
    });
  }

  test('h2 trailers: the fake sees only the proxy identity', async () => {
    const tag = nextTag();
    await h2WithTrailers(stack.proxy.url, tag);
    assertOnceAsAlice(tag);
  });

  test('h2 trailers: identity trailers are stripped, others kept (recording upstream)', async () => {
    const tag = nextTag();
    assert.equal(await h2WithTrailers(recorded.proxy.url, tag), 200);
    const rec = await recorded.recorder.waitFor((r) => r.path.endsWith(tag));
    assert.equal(rec.protocol, 'h2');
    assert.ok(rec.complete);
    assert.equal(rec.body, 'hello');
    assert.deepEqual(rec.trailers, [['x-checksum', 'abc']]);
  });
});

describe('upgrade requests', () => {
  const SPOOF_LINES = [
    'X-Remote-User: spoof-admin',
    'x_remote_group: spoof:system:masters',
    'X-REMOTE-EXTRA-SCOPES: spoof',
    'X-Remote-Uid: spoof-uid',
  ];

  /** An upgrade head with `extra` lines before the blank line. */
  function withLines(head: string, extra: readonly string[]): string {
    return `${head.slice(0, -2)}${extra.map((l) => `${l}\r\n`).join('')}\r\n`;
  }

  const QUERY = 'command=true&container=app&stdout=true';

  /** A WebSocket exec upgrade head for the request tagged `tag`, with `extra` lines. */
  function websocketExec(tag: string, extra: readonly string[]): string {
    return withLines(websocketUpgradeHead(`${EXEC}?${QUERY}&${tag}`, '127.0.0.1'), extra);
  }

  /** The upgrade `head` got 101 and went upstream once; the apiserver's record of it. */
  async function upgraded(s: Stack, head: string, tag: string): Promise<RecordedRequest> {
    const { status, rec } = await withRawH1(
      head,
      async (client) => {
        await client.waitFor((text) => text.includes('\r\n\r\n'));
        const seen = recordsTagged(s, `${QUERY}&${tag}`);
        assert.equal(seen.length, 1, 'exactly one upgrade request reached the apiserver');
        return { status: statusCodes(client.text)[0] ?? 0, rec: seen[0] as RecordedRequest };
      },
      s.proxy.url,
    );
    assert.equal(status, 101);
    return rec;
  }

  test('WebSocket exec (v5.channel.k8s.io): identity headers stripped on the upgrade request', async () => {
    const tag = nextTag();
    const rec = await upgraded(stack, websocketExec(tag, SPOOF_LINES), tag);
    assert.equal(rec.upgrade, 'websocket');
    assertForwardedAs(rec, ALICE);
  });

  test('SPDY/3.1 exec: identity headers stripped on the upgrade request', async () => {
    const tag = nextTag();
    const head = [
      `POST ${EXEC}?${QUERY}&${tag} HTTP/1.1`,
      'Host: 127.0.0.1',
      'Connection: Upgrade',
      'Upgrade: SPDY/3.1',
      'X-Stream-Protocol-Version: v4.channel.k8s.io',
      'Content-Length: 0',
      ...SPOOF_LINES,
      '',
      '',
    ].join('\r\n');
    const rec = await upgraded(stack, head, tag);
    assert.equal(rec.upgrade, 'spdy/3.1');
    assertForwardedAs(rec, ALICE);
  });

  test('custom names: the WebSocket upgrade carries only the configured identity headers', async () => {
    const tag = nextTag();
    const extra = ['X-Auth-User: spoof-admin', 'x_auth_group: spoof', 'X-Alt-User: spoof'];
    const rec = await upgraded(custom, websocketExec(tag, [...SPOOF_LINES, ...extra]), tag);
    assertForwardedAs(rec, ALICE, CUSTOM);
  });
});

describe('clients without a usable certificate', () => {
  const SPOOFS: Lines = [
    ['X-Remote-User', 'spoof-admin'],
    ['X-Remote-Group', 'spoof:system:masters'],
    ['X_Remote_Extra_Scopes', 'spoof'],
  ];

  for (const protocol of ['h1', 'h2'] as const) {
    test(`${protocol}: anonymous client: identity headers stripped, none added, no front-proxy cert`, async () => {
      const { res, seen } = await send(stack, protocol, SPOOFS, null, '/version');
      assert.equal(res.status, 200, res.body);
      assert.equal(seen.length, 1);
      const rec = seen[0] as RecordedRequest;
      assert.deepEqual(identityLines(rec), []);
      assert.equal(rec.peerCommonName, null);
      assert.equal(rec.authenticatedBy, 'anonymous');
      assert.equal(rec.user?.username, 'system:anonymous');
      assertNoSpoof(rec);
    });

    test(`${protocol}: bearer-token client: the token decides, identity headers stripped`, async () => {
      const { res, seen } = await send(
        stack,
        protocol,
        [...SPOOFS, ['Authorization', `Bearer ${TOKEN}`]],
        null,
        '/version',
      );
      assert.equal(res.status, 200, res.body);
      const rec = seen[0] as RecordedRequest;
      assert.deepEqual(identityLines(rec), []);
      assert.equal(rec.authenticatedBy, 'token');
      assert.deepEqual(rec.user, {
        username: 'system:serviceaccount:default:robot',
        groups: ['robots', 'system:authenticated'],
        extra: {},
      });
    });

    test(`${protocol}: revoked client: 401 naming the reason, nothing reaches the apiserver`, () =>
      assertRefused(protocol, SPOOFS, mallory, /client certificate revoked \(serial [0-9A-F]+/));

    test(`${protocol}: client of an unknown CA (O=system:masters): 401, nothing reaches the apiserver`, () =>
      assertRefused(protocol, SPOOFS, stranger, /not signed by a trusted CA/));
  }

  test('revoked client: an upgrade request with identity headers gets 401, nothing upstream', async () => {
    const tag = nextTag();
    const head = `${websocketUpgradeHead(`${EXEC}?command=true&stdout=true&${tag}`, '127.0.0.1').slice(0, -2)}X-Remote-User: spoof-admin\r\n\r\n`;
    await withRawH1(
      head,
      async (client) => {
        await client.waitForResponse();
        assert.deepEqual(statusCodes(client.text), [401]);
        assert.ok(await closedWithin(client, 10_000));
        await settle();
        assert.deepEqual(recordsTagged(stack, `command=true&stdout=true&${tag}`), []);
      },
      stack.proxy.url,
      mallory,
    );
  });
});

describe('custom --requestheader-* names', () => {
  const CUSTOM_SPOOFS: Lines = [
    ['X-Auth-User', 'spoof-admin'],
    ['x_auth_user', 'spoof-admin'],
    ['X-Alt-User', 'spoof-alt'],
    ['X-AUTH-GROUP', 'spoof:system:masters'],
    ['X-Auth-Extra-Scopes', 'spoof'],
    ['X-Auth-Uid', 'spoof-uid'],
  ];
  const STANDARD_SPOOFS: Lines = [
    ['X-Remote-User', 'spoof-admin'],
    ['X-Remote-Group', 'spoof:system:masters'],
    ['X-Remote-Extra-Scopes', 'spoof'],
    ['X_Remote_Uid', 'spoof-uid'],
  ];

  for (const protocol of ['h1', 'h2'] as const) {
    test(`${protocol}: the configured names are stripped and set (first name), any case`, () =>
      assertSpoofStripped(custom, protocol, CUSTOM_SPOOFS));

    test(`${protocol}: the standard X-Remote-* names are stripped too`, () =>
      assertSpoofStripped(custom, protocol, STANDARD_SPOOFS));
  }
});

describe('Impersonate-* headers pass through untouched', () => {
  const IMPERSONATE: Lines = [
    ['Impersonate-User', 'jane'],
    ['Impersonate-Group', 'viewers'],
    ['Impersonate-Group', 'auditors'],
    ['Impersonate-Uid', 'uid-1234'],
    ['Impersonate-Extra-Acme.com%2Fproject', 'alpha'],
  ];

  for (const protocol of ['h1', 'h2'] as const) {
    test(`${protocol}: every Impersonate-* line arrives as sent, the user is still the CN`, async () => {
      const { res, seen } = await send(stack, protocol, [
        ...IMPERSONATE,
        ['X-Remote-User', 'spoof-admin'],
      ]);
      assert.equal(res.status, 200, res.body);
      const rec = seen[0] as RecordedRequest;
      assertForwardedAs(rec, ALICE);
      assert.deepEqual(
        rec.rawHeaders.filter(([n]) => n.startsWith('impersonate-')),
        IMPERSONATE.map(([n, v]) => [n.toLowerCase(), v]),
      );
    });
  }
});

describe('certificate names that are awkward as header values', () => {
  /** The certificate's CN/O reach the apiserver byte for byte, one line per value. */
  async function assertExactIdentity(cert: IssuedCert, expected: Expected): Promise<void> {
    for (const protocol of ['h1', 'h2'] as const) {
      const { res, seen } = await send(stack, protocol, [['X-Remote-Group', 'spoof']], cert);
      assert.equal(res.status, 200, `${protocol}: ${res.body}`);
      assert.equal(seen.length, 1);
      assertForwardedAs(seen[0] as RecordedRequest, expected, stack.names, protocol);
    }
  }

  async function assertRefusedIdentity(cert: IssuedCert, reason: RegExp): Promise<void> {
    for (const protocol of ['h1', 'h2'] as const) await assertRefused(protocol, [], cert, reason);
  }

  test('non-ASCII (Jürgen), commas, quotes and CJK: exact UTF-8 bytes, one line per O', async () => {
    const groups = ['Équipe "A", Paris', 'a,b', '日本', 'x;y=z'];
    const cert = await pki.user('Jürgen, Müller', groups);
    await assertExactIdentity(cert, { user: 'Jürgen, Müller', groups });
  });

  test('Unicode line separators (U+0085, U+2028) travel as their UTF-8 bytes on one line', async () => {
    const cert = await pki.user('line\u2028sep', ['next\u0085line']);
    await assertExactIdentity(cert, { user: 'line\u2028sep', groups: ['next\u0085line'] });
  });

  test('a CN of exactly 4096 bytes is forwarded whole on one line', async () => {
    const cn = `big${'x'.repeat(4093)}`;
    const cert = await pki.user(cn, ['dev']);
    await assertExactIdentity(cert, { user: cn, groups: ['dev'] });
  });

  test('CN with CR LF and a header after it: 401 invalid identity, nothing upstream', async () => {
    const cert = await pki.user('spoof\r\nX-Remote-Group: system:masters', ['dev']);
    await assertRefusedIdentity(
      cert,
      /CN cannot be forwarded as a header: it contains the control character 0x0d/,
    );
  });

  test('O with a bare LF: 401 invalid identity, nothing upstream', async () => {
    const cert = await pki.user('carol', ['dev\nX-Remote-User: spoof']);
    await assertRefusedIdentity(
      cert,
      /O cannot be forwarded as a header: it contains the control character 0x0a/,
    );
  });

  test('CN with NUL: 401 invalid identity, nothing upstream', async () => {
    const cert = await pki.user('carol\u0000spoof', ['dev']);
    await assertRefusedIdentity(cert, /control character 0x00/);
  });

  test('CN with a tab, or DEL: 401 invalid identity', async () => {
    await assertRefusedIdentity(await pki.user('carol\tx', []), /control character 0x09/);
    await assertRefusedIdentity(await pki.user('carol\u007fx', []), /control character 0x7f/);
  });

  test('CN over 4096 bytes: 401 naming the size and the limit', async () => {
    const cert = await pki.user('x'.repeat(5000), ['dev']);
    await assertRefusedIdentity(cert, /it is 5000 bytes long \(limit 4096\)/);
  });

  test('CN of 64 KiB: refused (TLS alert or 401), nothing upstream, the proxy keeps serving', async () => {
    const cert = await pki.user('x'.repeat(64 * 1024), ['dev']);
    for (const protocol of ['h1', 'h2'] as const) {
      const tag = nextTag();
      const url = `${stack.proxy.url}/api?${tag}`;
      const options = { ca: pki.clusterCa.certPem, cert };
      const outcome = await (protocol === 'h1'
        ? requestH1(url, options)
        : requestH2(url, options)
      ).then(
        (res) => `${res.status} ${res.body}`,
        (err: Error) => `error ${err.message}`,
      );
      // OpenSSL cannot put a 64 KiB client certificate into a TLS 1.3 session ticket and
      // ends the handshake with an internal_error alert; a 401 would do as well.
      assert.match(outcome, /^(?:401 .*bytes long \(limit 4096\)|error .*alert)/, outcome);
      await settle();
      assert.deepEqual(recordsTagged(stack, tag), []);
    }
    await assertSpoofStripped(stack, 'h1', [['X-Remote-User', 'spoof-after']]);
  });

  test('CN with leading or trailing spaces: 401 (HTTP would drop them)', async () => {
    await assertRefusedIdentity(
      await pki.user(' padded ', ['dev']),
      /leading or trailing whitespace/,
    );
  });

  test('an O that looks like a header list is one group line, not several', async () => {
    const groups = ['system:masters, dev', 'X-Remote-Group: ops'];
    const cert = await pki.user('dave', groups);
    await assertExactIdentity(cert, { user: 'dave', groups });
  });
});

describe('after the battery', () => {
  test('both proxies still serve and no request anywhere carried an injected value', async () => {
    await assertSpoofStripped(stack, 'h1', [['X-Remote-User', 'spoof-final']]);
    await assertSpoofStripped(custom, 'h2', [['X-Auth-User', 'spoof-final']]);
    for (const rec of [...stack.fake.requests, ...custom.fake.requests]) assertNoSpoof(rec);
    assert.equal(stack.proxy.child.exitCode, null);
    assert.equal(custom.proxy.child.exitCode, null);
  });
});
