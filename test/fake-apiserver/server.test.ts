/**
 * The REST core's own behaviour: lists and Tables, watch semantics (resume, synthetic ADDED,
 * Table events, timeout, 410), recording, upgrade handling (override, 401 on the socket,
 * hand-off to the streaming half with its context) and a prompt close().
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { Duplex, Readable } from 'node:stream';
import { after, before, type TestContext, test } from 'node:test';
import type { FakeApiserver, FakeApiserverOptions } from '../../src/demo/fake-apiserver/index.js';
import { startFakeApiserverWith } from '../../src/demo/fake-apiserver/server.js';
import { createStreamingHandlers } from '../../src/demo/fake-apiserver/streaming/index.js';
import type { StreamContext, StreamingHandlers } from '../../src/demo/fake-apiserver/types.js';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { makePki, type TestPki } from '../support/pki.js';
import { RawTlsClient, requestH1, requestH2, websocketUpgradeHead } from './testkit.js';

let pki: TestPki;
let admin: IssuedCert;

before(async () => {
  pki = await makePki();
  admin = await pki.clusterCa.issue({ commonName: 'admin', organizations: ['system:masters'] });
});

after(() => pki?.cleanup());

async function start(
  t: TestContext,
  opts: Partial<FakeApiserverOptions> = {},
  streaming: () => StreamingHandlers = createStreamingHandlers,
): Promise<FakeApiserver> {
  const fake = await startFakeApiserverWith(
    {
      tls: { cert: pki.apiserver.certPem, key: pki.apiserver.keyPem },
      clientCA: pki.clusterCa.certPem,
      ...opts,
    },
    streaming,
  );
  t.after(() => fake.close());
  return fake;
}

function getJson(fake: FakeApiserver, path: string, accept?: string) {
  return requestH2(`${fake.url}${path}`, {
    ca: pki.clusterCa.certPem,
    cert: admin,
    ...(accept === undefined ? {} : { headers: [['accept', accept]] }),
  });
}

const TABLE_ACCEPT =
  'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';

interface WatchEvent {
  readonly type: string;
  readonly object: { kind: string; metadata: { name?: string; resourceVersion?: string } } & Record<
    string,
    unknown
  >;
}

/** A live watch: events as they arrive, and whether the server ended the stream. */
class WatchStream {
  readonly events: WatchEvent[] = [];
  readonly ended: Promise<void>;
  private partial = '';
  private readonly waiting = new Set<() => void>();

  constructor(
    body: Readable,
    readonly close: () => void,
  ) {
    body.setEncoding('utf8');
    body.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop() ?? '';
      for (const line of parts) if (line !== '') this.events.push(JSON.parse(line));
      for (const check of [...this.waiting]) check();
    });
    body.on('error', () => {});
    this.ended = new Promise((resolve) => {
      body.once('end', () => resolve());
      body.once('close', () => resolve());
    });
  }

  waitForEvents(count: number, timeoutMs = 5000): Promise<WatchEvent[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.events.length < count) return;
        this.waiting.delete(check);
        clearTimeout(timer);
        resolve(this.events);
      };
      const timer = setTimeout(() => {
        this.waiting.delete(check);
        reject(new Error(`only ${this.events.length} of ${count} watch events`));
      }, timeoutMs);
      this.waiting.add(check);
      check();
    });
  }
}

function watchH2(
  fake: FakeApiserver,
  path: string,
  accept = 'application/json',
): Promise<WatchStream> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(fake.url, {
      ca: pki.clusterCa.certPem,
      cert: admin.certPem,
      key: admin.keyPem,
    });
    session.on('error', () => {});
    const stream = session.request({ ':path': path, accept });
    stream.on('error', reject);
    stream.on('response', (headers) => {
      assert.equal(headers[':status'], 200);
      assert.equal(headers['content-type'], 'application/json');
      resolve(new WatchStream(stream, () => session.destroy()));
    });
    stream.end();
  });
}

function watchH1(fake: FakeApiserver, path: string): Promise<WatchStream> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${fake.url}${path}`, {
      ca: pki.clusterCa.certPem,
      cert: admin.certPem,
      key: admin.keyPem,
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['transfer-encoding'], 'chunked');
      resolve(new WatchStream(res, () => req.destroy()));
    });
    req.end();
  });
}

test('lists carry a resourceVersion; a watch from it sees only later changes, live', async (t) => {
  const fake = await start(t);
  const list = JSON.parse((await getJson(fake, '/api/v1/namespaces/default/pods')).body);
  assert.equal(list.kind, 'PodList');
  assert.deepEqual(
    list.items.map((p: { metadata: { name: string } }) => p.metadata.name),
    ['demo'],
  );
  const rv = list.metadata.resourceVersion;
  assert.match(rv, /^\d+$/);
  const watch = await watchH2(
    fake,
    `/api/v1/namespaces/default/pods?resourceVersion=${rv}&watch=true`,
  );
  t.after(watch.close);
  fake.addPod('other', { namespace: 'elsewhere' });
  fake.addPod('web');
  const [added] = await watch.waitForEvents(1);
  assert.equal(added?.type, 'ADDED');
  assert.equal(added?.object.kind, 'Pod');
  assert.equal(added?.object.metadata.name, 'web');
  fake.setPodPhase('web', 'Failed');
  fake.deletePod('web');
  const events = await watch.waitForEvents(3);
  assert.deepEqual(
    events.map((e) => e.type),
    ['ADDED', 'MODIFIED', 'DELETED'],
  );
  const rvs = events.map((e) => Number(e.object.metadata.resourceVersion));
  assert.ok(
    rvs.every((v, i) => v > Number(rv) && (i === 0 || v > (rvs[i - 1] ?? 0))),
    `${rvs}`,
  );
});

test('a watch from resourceVersion 0 starts with synthetic ADDED events (HTTP/1.1)', async (t) => {
  const fake = await start(t);
  const watch = await watchH1(fake, '/api/v1/nodes?watch=1&resourceVersion=0');
  t.after(watch.close);
  const [first] = await watch.waitForEvents(1);
  assert.equal(first?.type, 'ADDED');
  assert.equal(first?.object.metadata.name, 'node-1');
  fake.addNode('node-2', { ready: false });
  const events = await watch.waitForEvents(2);
  assert.equal(events[1]?.object.metadata.name, 'node-2');
});

test('Table watch events: one row each, column definitions only in the first', async (t) => {
  const fake = await start(t);
  const table = JSON.parse(
    (await getJson(fake, '/api/v1/namespaces/default/pods', TABLE_ACCEPT)).body,
  );
  assert.equal(table.kind, 'Table');
  assert.deepEqual(table.columnDefinitions.map((c: { name: string }) => c.name).slice(0, 5), [
    'Name',
    'Ready',
    'Status',
    'Restarts',
    'Age',
  ]);
  assert.equal(table.rows[0].object.kind, 'PartialObjectMetadata');
  assert.equal(table.rows[0].object.metadata.namespace, 'default');
  const rv = table.metadata.resourceVersion;
  const watch = await watchH2(
    fake,
    `/api/v1/namespaces/default/pods?resourceVersion=${rv}&watch=true`,
    TABLE_ACCEPT,
  );
  t.after(watch.close);
  fake.addPod('a');
  fake.addPod('b', { phase: 'Pending' });
  const events = await watch.waitForEvents(2);
  const [a, b] = events.map(
    (e) =>
      e.object as unknown as {
        kind: string;
        columnDefinitions: unknown;
        rows: { cells: unknown[] }[];
      },
  );
  assert.equal(a?.kind, 'Table');
  assert.ok(Array.isArray(a?.columnDefinitions));
  assert.equal(b?.columnDefinitions, null);
  assert.deepEqual(b?.rows[0]?.cells.slice(0, 4), ['b', '0/1', 'ContainerCreating', '0']);
});

test('a watch ends after timeoutSeconds', async (t) => {
  const fake = await start(t);
  const started = Date.now();
  const watch = await watchH2(fake, '/api/v1/pods?watch=true&timeoutSeconds=1');
  t.after(watch.close);
  await watch.ended;
  const took = Date.now() - started;
  assert.ok(took >= 900 && took < 5000, `ended after ${took} ms`);
});

test('a watch from a compacted resourceVersion gets a 410 Expired ERROR event', async (t) => {
  const fake = await start(t);
  const before = JSON.parse((await getJson(fake, '/api/v1/pods')).body).metadata.resourceVersion;
  for (let i = 0; i < 600; i++) {
    fake.setPodPhase('demo', 'Pending');
    fake.setPodPhase('demo', 'Running');
  }
  const watch = await watchH2(fake, `/api/v1/pods?watch=true&resourceVersion=${before}`);
  t.after(watch.close);
  const [error] = await watch.waitForEvents(1);
  assert.equal(error?.type, 'ERROR');
  assert.equal(error?.object.code, 410);
  assert.equal(error?.object.reason, 'Expired');
  await watch.ended;
});

test('single objects, Tables of one, 404 Status, selectors and 406', async (t) => {
  const fake = await start(t);
  const pod = JSON.parse((await getJson(fake, '/api/v1/namespaces/default/pods/demo')).body);
  assert.equal(pod.kind, 'Pod');
  assert.equal(pod.status.phase, 'Running');
  const node = JSON.parse((await getJson(fake, '/api/v1/nodes/node-1', TABLE_ACCEPT)).body);
  assert.deepEqual(node.rows[0].cells.slice(0, 3), ['node-1', 'Ready', 'control-plane']);
  const missing = await getJson(fake, '/api/v1/nodes/nope');
  assert.equal(missing.status, 404);
  assert.deepEqual(JSON.parse(missing.body), {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'nodes "nope" not found',
    reason: 'NotFound',
    details: { name: 'nope', kind: 'nodes' },
    code: 404,
  });
  fake.addPod('web', { namespace: 'prod' });
  const selected = JSON.parse(
    (await getJson(fake, '/api/v1/pods?fieldSelector=metadata.namespace%3Dprod')).body,
  );
  assert.deepEqual(
    selected.items.map((p: { metadata: { name: string } }) => p.metadata.name),
    ['web'],
  );
  const badField = await getJson(fake, '/api/v1/pods?fieldSelector=spec.color%3Dred');
  assert.equal(badField.status, 400);
  const protobufOnly = await getJson(fake, '/api/v1/pods', 'application/vnd.kubernetes.protobuf');
  assert.equal(protobufOnly.status, 406);
  const unknown = await getJson(fake, '/apis/apps/v1/deployments');
  assert.equal(unknown.status, 404);
  assert.equal(
    JSON.parse(unknown.body).message,
    'the server could not find the requested resource',
  );
});

test('discovery is legacy JSON and lists authentication.k8s.io for auth whoami', async (t) => {
  const fake = await start(t);
  const apis = await getJson(
    fake,
    '/apis',
    'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json',
  );
  assert.equal(apis.headers['content-type'], 'application/json');
  assert.deepEqual(
    JSON.parse(apis.body).groups.map((g: { name: string }) => g.name),
    ['authentication.k8s.io'],
  );
  const core = JSON.parse((await getJson(fake, '/api/v1')).body);
  assert.deepEqual(
    core.resources.map((r: { name: string }) => r.name),
    ['nodes', 'pods', 'pods/attach', 'pods/exec', 'pods/log', 'pods/portforward', 'pods/status'],
  );
  const api = JSON.parse((await getJson(fake, '/api')).body);
  assert.deepEqual(api.versions, ['v1']);
});

test('requests are recorded with connection, protocol and raw header lines', async (t) => {
  const fake = await start(t);
  await requestH1(`${fake.url}/version`, {
    ca: pki.clusterCa.certPem,
    cert: admin,
    headers: [
      ['X-Trace', 'one'],
      ['X-Trace', 'two'],
    ],
  });
  await requestH2(`${fake.url}/version?a=b`, {
    ca: pki.clusterCa.certPem,
    headers: [['X-Trace', 'h2']],
  });
  const [h1, h2] = fake.requests;
  assert.equal(h1?.protocol, 'http/1.1');
  assert.equal(h2?.protocol, 'h2');
  assert.notEqual(h1?.connectionId, h2?.connectionId);
  assert.deepEqual(
    h1?.rawHeaders.filter(([n]) => n === 'x-trace'),
    [
      ['x-trace', 'one'],
      ['x-trace', 'two'],
    ],
  );
  assert.ok(h2?.rawHeaders.every(([n]) => !n.startsWith(':')));
  assert.equal(h2?.query, 'a=b');
  assert.equal(h2?.peerCommonName, null);
  assert.equal(h1?.peerCommonName, 'admin');
  assert.ok(h1?.upgrade === null && (h1?.receivedAt ?? 0) <= (h2?.receivedAt ?? 0));
});

test('maxRecordedRequests keeps the newest requests', async (t) => {
  const fake = await start(t, { maxRecordedRequests: 2 });
  for (let i = 0; i < 3; i++) await getJson(fake, `/version?n=${i}`);
  assert.deepEqual(
    fake.requests.map((r) => [r.id, r.query]),
    [
      [2, 'n=1'],
      [3, 'n=2'],
    ],
  );
});

/** A stub streaming half that records what the REST core hands it. */
function stubStreaming() {
  const contexts: StreamContext[] = [];
  let closed = false;
  const handlers: StreamingHandlers = {
    handleUpgrade(_req, socket: Duplex, _head, ctx) {
      contexts.push(ctx);
      const session = ctx.openSession('websocket');
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      );
      socket.end('bye', () => ctx.endSession(session, 'server'));
    },
    handleRequest(_req, res, ctx) {
      contexts.push(ctx);
      const session = ctx.openSession('http');
      ctx.endSession(session, 'client');
      ctx.endSession(session, 'server');
      res.setHeader('content-type', 'text/plain');
      res.statusCode = 200;
      res.end(ctx.logs.lines.join('\n'));
    },
    async close() {
      closed = true;
    },
  };
  return { handlers, contexts, isClosed: () => closed };
}

async function rawUpgrade(
  fake: FakeApiserver,
  path: string,
  cert?: IssuedCert,
): Promise<RawTlsClient> {
  const client = await RawTlsClient.connect(fake.url, pki.clusterCa.certPem, cert);
  client.socket.write(websocketUpgradeHead(path, `127.0.0.1:${fake.port}`));
  return client;
}

const EXEC_PATH = '/api/v1/namespaces/default/pods/demo/exec?command=sh&container=app&stdout=true';

test('pod subresources go to the streaming half with their context', async (t) => {
  const stub = stubStreaming();
  const fake = await start(t, {}, () => stub.handlers);
  const client = await rawUpgrade(fake, EXEC_PATH, admin);
  t.after(() => client.destroy());
  await client.waitFor((text) => text.endsWith('bye'));
  const [ctx] = stub.contexts;
  assert.equal(ctx?.kind, 'exec');
  assert.equal(ctx?.pod, 'demo');
  assert.equal(ctx?.namespace, 'default');
  assert.equal(ctx?.user.username, 'admin');
  assert.equal(ctx?.request.upgrade, 'websocket');
  assert.equal(ctx?.request.authenticatedBy, 'x509');
  await client.closed;
  assert.equal(fake.sessions[0]?.transport, 'websocket');
  assert.equal(fake.sessions[0]?.endedBy, 'server');
  assert.equal(fake.sessions[0]?.requestId, ctx?.request.id);

  fake.appendLog('demo', 'line one');
  const followed: string[] = [];
  const stop = ctx?.logs.follow((line) => followed.push(line));
  fake.appendLog('demo', 'line two');
  stop?.();
  fake.appendLog('demo', 'line three');
  assert.deepEqual(followed, ['line two']);
  const logs = await getJson(fake, '/api/v1/namespaces/default/pods/demo/log?container=app');
  assert.equal(logs.body, 'line one\nline two\nline three');
  assert.equal(stub.contexts[1]?.kind, 'log');
  assert.equal(fake.sessions[1]?.endedBy, 'client', 'the first end of a session wins');
  await fake.close();
  assert.ok(stub.isClosed());
});

test('subresources of missing, pending or wrongly addressed pods are refused like kube', async (t) => {
  const stub = stubStreaming();
  const fake = await start(t, {}, () => stub.handlers);
  fake.addPod('starting', { phase: 'Pending' });
  fake.addPod('multi', { containers: ['a', 'b'] });
  const pending = await rawUpgrade(fake, EXEC_PATH.replace('/demo/', '/starting/'), admin);
  t.after(() => pending.destroy());
  const answer = await pending.waitForResponse();
  assert.match(answer, /^HTTP\/1\.1 500 /);
  assert.match(answer, /container not found \("app"\)$/);
  await pending.closed;

  const cases: [string, number, RegExp][] = [
    ['/api/v1/namespaces/default/pods/ghost/exec?command=sh', 404, /pods "ghost" not found/],
    [
      '/api/v1/namespaces/default/pods/demo/exec?container=nope',
      400,
      /container nope is not valid for pod demo/,
    ],
    ['/api/v1/namespaces/default/pods/multi/log', 400, /choose one of: \[a b\]/],
    ['/api/v1/namespaces/default/pods/starting/log', 400, /is waiting to start: ContainerCreating/],
  ];
  for (const [path, code, message] of cases) {
    const res = await getJson(fake, path);
    assert.equal(res.status, code, path);
    assert.match(JSON.parse(res.body).message, message);
  }
  assert.equal(stub.contexts.length, 0);
});

test('an unauthenticated upgrade gets a 401 Status on its socket, which is then closed', async (t) => {
  const fake = await start(t, { anonymousAuth: false });
  const client = await rawUpgrade(fake, EXEC_PATH);
  t.after(() => client.destroy());
  const answer = await client.waitForResponse();
  assert.match(answer, /^HTTP\/1\.1 401 Unauthorized\r\n/);
  assert.match(answer, /\r\nconnection: close\r\n/i);
  assert.match(answer, /"reason":"Unauthorized"/);
  await client.closed;
  assert.equal(fake.requests[0]?.upgrade, 'websocket');
});

test('upgradeOverride answers raw and counts bytes sent after it', async (t) => {
  const fake = await start(t);
  fake.upgradeOverride = (req) =>
    req.path.endsWith('/exec')
      ? { status: 403, headers: { 'Content-Type': 'application/json' }, body: '{"kind":"Status"}' }
      : null;
  const client = await rawUpgrade(fake, EXEC_PATH, admin);
  t.after(() => client.destroy());
  const answer = await client.waitForResponse();
  assert.equal(
    answer,
    'HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{"kind":"Status"}',
  );
  assert.equal(fake.bytesAfterRejectedUpgrade(), 0);
  const smuggled = 'GET /api/v1/secrets HTTP/1.1\r\nHost: x\r\n\r\n';
  client.socket.write(smuggled);
  const started = Date.now();
  await client.closed;
  const held = Date.now() - started;
  assert.ok(held > 500 && held < 3000, `held ${held} ms`);
  assert.equal(fake.bytesAfterRejectedUpgrade(), smuggled.length);
  assert.equal(fake.requests.length, 1, 'the smuggled request was never parsed as one');
});

test('close() is prompt with open watches on both protocols, leaves no connection, fails waiters', async (t) => {
  const fake = await start(t);
  const h2 = await watchH2(fake, '/api/v1/pods?watch=true');
  const h1 = await watchH1(fake, '/api/v1/nodes?watch=true');
  t.after(() => {
    h1.close();
    h2.close();
  });
  assert.equal(fake.openConnections, 2);
  const waiterFails = assert.rejects(
    fake.waitForRequest(() => false, 60_000),
    /fake apiserver closed/,
  );
  const started = Date.now();
  await fake.close();
  assert.ok(Date.now() - started < 1000, `close took ${Date.now() - started} ms`);
  assert.equal(fake.openConnections, 0);
  await Promise.all([h1.ended, h2.ended]);
  await waiterFails;
});
