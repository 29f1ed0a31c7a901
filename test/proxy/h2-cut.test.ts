/**
 * An HTTP/2 connection whose certificate is revoked while it is open, between a raw HTTP/2
 * client and a scripted raw HTTP/2 apiserver, frame by frame: each JSON watch ends with an
 * ERROR event carrying the 401 Status (DATA with END_STREAM), injected only between frames and
 * after a whole event, and only within the client's flow-control windows; then GOAWAY whose
 * debug data is the reason; the upstream's streams are reset. The kubectl-level outcome is in
 * test/e2e/cut-reason.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { Flag, FrameType, PREFACE, settingsFrame } from '../../src/proxy/h2/frames.js';
import type { ReceivedFrame } from '../security/h2-frames.js';
import {
  dataFrame,
  frame,
  headerBlock,
  headersFrame,
  RawH2Client,
  requestFields,
  splitFrames,
} from '../security/h2-frames.js';
import { makePki, proxyArgs, type TestPki } from '../support/pki.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { Revoker } from '../support/revoker.js';
import { until } from '../support/wait.js';

const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const CANCEL = 0x8;

/** One upstream connection: its SETTINGS sent, the client's ACKed, every frame recorded. */
class UpstreamPeer {
  readonly frames: ReceivedFrame[] = [];
  closed = false;
  private buffered: Buffer = Buffer.alloc(0);
  private prefaceLeft = PREFACE.length;

  constructor(readonly socket: TLSSocket) {
    socket.write(settingsFrame([]));
    socket.on('data', (chunk: Buffer) => {
      const n = Math.min(this.prefaceLeft, chunk.length);
      this.prefaceLeft -= n;
      this.buffered = splitFrames(Buffer.concat([this.buffered, chunk.subarray(n)]), (f) => {
        this.frames.push(f);
        if (f.type === FrameType.Settings && (f.flags & Flag.Ack) === 0)
          socket.write(frame(FrameType.Settings, Flag.Ack, 0, new Uint8Array(0)));
      });
    });
    socket.on('error', () => {});
    socket.once('close', () => {
      this.closed = true;
    });
  }

  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** A response's HEADERS (literal fields, no table), not ending the stream. */
  respond(streamId: number, contentType: string): void {
    const fields = [
      [':status', '200'],
      ['content-type', contentType],
    ] as const;
    this.send(frame(FrameType.Headers, Flag.EndHeaders, streamId, headerBlock(fields)));
  }

  resets(): number[] {
    return this.frames
      .filter((f) => f.type === FrameType.RstStream && f.payload.readUInt32BE(0) === CANCEL)
      .map((f) => f.streamId);
  }
}

let pki: TestPki;
let server: Server;
const peers: UpstreamPeer[] = [];
let proxy: ProxyProcess;
let revoker: Revoker;
let users = 0;

before(async () => {
  pki = await makePki();
  server = createServer(
    {
      cert: pki.apiserver.certPem,
      key: pki.apiserver.keyPem,
      ALPNProtocols: ['h2'],
      requestCert: true,
      rejectUnauthorized: false,
    },
    (socket) => peers.push(new UpstreamPeer(socket)),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  revoker = new Revoker(pki, 'h2-cut.crl');
  proxy = await startProxyProcess(
    proxyArgs(pki, `https://127.0.0.1:${port}`, [
      '--upstream-pool-size=0',
      `--crl-file=${revoker.file}`,
    ]),
  );
});

after(async () => {
  await proxy?.stop();
  for (const peer of peers) peer.socket.destroy();
  await new Promise((resolve) => server?.close(resolve));
  pki?.cleanup();
});

interface Session {
  readonly user: IssuedCert;
  readonly client: RawH2Client;
  readonly up: UpstreamPeer;
}

/**
 * A new user's connection with `requests` (stream id → path) open upstream; `settings` go
 * to the upstream (and are ACKed) before the requests.
 */
async function open(
  requests: ReadonlyArray<readonly [number, string]>,
  settings: ReadonlyArray<readonly [number, number]> = [],
): Promise<Session> {
  const user = await pki.user(`h2-cut-${++users}`);
  const before = peers.length;
  const client = await RawH2Client.connect(proxy.url, pki.clusterCa.certPem, user);
  await until(() => peers.length > before, 'the upstream connection');
  const up = peers[before] as UpstreamPeer;
  if (settings.length > 0) {
    client.send(settingsFrame(settings));
    await until(
      () =>
        up.frames.filter((f) => f.type === FrameType.Settings && !(f.flags & Flag.Ack)).length >= 2,
      "the client's SETTINGS upstream",
    );
    await client.waitFor(
      () =>
        client.frames.filter((f) => f.type === FrameType.Settings && f.flags & Flag.Ack).length >=
        2,
      'the ACK of its SETTINGS',
    );
  }
  for (const [id, path] of requests) client.send(headersFrame(id, requestFields(path)));
  await until(
    () =>
      requests.every(([id]) =>
        up.frames.some((f) => f.type === FrameType.Headers && f.streamId === id),
      ),
    'the requests upstream',
  );
  return { user, client, up };
}

const revoke = (user: IssuedCert) => revoker.revoke(user, proxy);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function goaway(client: RawH2Client): { lastStreamId: number; code: number; debug: string } {
  const f = client.frames.find((g) => g.type === FrameType.Goaway) as ReceivedFrame;
  return {
    lastStreamId: f.payload.readUInt32BE(0),
    code: f.payload.readUInt32BE(4),
    debug: f.payload.subarray(8).toString(),
  };
}

/** DATA payloads of a stream at the client, in order. */
function dataOf(client: RawH2Client, streamId: number): ReceivedFrame[] {
  return client.framesOf(streamId).filter((f) => f.type === FrameType.Data);
}

function reasonOf(user: IssuedCert): RegExp {
  return new RegExp(
    `^client certificate revoked \\(serial ${user.serial}, issuer CN=kubernetes, revoked 2026-11-01T00:00:00Z\\)$`,
  );
}

function assertErrorEvent(f: ReceivedFrame | undefined, user: IssuedCert): void {
  assert.ok(f !== undefined, 'an ERROR event');
  assert.equal(f.flags & Flag.EndStream, Flag.EndStream, 'it ends the stream');
  const event = f.payload.toString();
  assert.equal(event.indexOf('\n'), event.length - 1, 'one line');
  const parsed = JSON.parse(event) as { type: string; object: Record<string, unknown> };
  assert.equal(parsed.type, 'ERROR');
  assert.match(String(parsed.object.message), reasonOf(user));
  assert.deepEqual(parsed.object, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: parsed.object.message,
    reason: 'Unauthorized',
    code: 401,
  });
}

describe('HTTP/2 cut', () => {
  test('a watch cut inside an event split over DATA frames: the event completes, then ERROR, then GOAWAY with the reason; upstream streams reset', async () => {
    const { user, client, up } = await open([
      [1, '/api/v1/pods?watch=true'],
      [3, '/api/v1/namespaces/default/pods/demo/log?follow=true'],
    ]);
    const first = '{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a"}}}\n';
    const second = '{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"b"}}}\n';
    up.respond(1, 'application/json');
    up.respond(3, 'text/plain');
    up.send(dataFrame(1, first + second.slice(0, 25), false));
    up.send(dataFrame(3, 'a log line\n', false));
    await client.waitFor(() => dataOf(client, 3).length === 1, 'the data');
    await revoke(user);
    await pause(100);
    assert.equal(client.goawayCode(), null, 'the cut waits for the end of the event');
    up.send(dataFrame(1, second.slice(25), false));
    await client.closed;
    const watch = dataOf(client, 1);
    assert.deepEqual(
      watch.slice(0, 2).map((f) => f.payload.toString()),
      [first + second.slice(0, 25), second.slice(25)],
    );
    assertErrorEvent(watch[2], user);
    assert.equal(watch.length, 3);
    const last = client.frames.at(-1) as ReceivedFrame;
    assert.equal(last.type, FrameType.Goaway, 'GOAWAY comes last');
    const { lastStreamId, code, debug } = goaway(client);
    assert.deepEqual([lastStreamId, code], [3, 0]);
    assert.match(debug, reasonOf(user));
    assert.deepEqual(
      client.framesOf(3).map((f) => [f.type, f.flags & Flag.EndStream]),
      [
        [FrameType.Headers, 0],
        [FrameType.Data, 0],
      ],
      'logs -f is left to the GOAWAY: no END_STREAM, no reset',
    );
    await until(() => up.closed, 'the upstream connection closed');
    assert.deepEqual(up.resets().sort(), [1, 3]);
  });

  test('flow control: a watch whose window cannot take the event gets none; one whose window can, does', async () => {
    const { user, client, up } = await open(
      [
        [1, '/api/v1/pods?watch=true'],
        [3, '/api/v1/nodes?watch=true'],
      ],
      [[SETTINGS_INITIAL_WINDOW_SIZE, 64]],
    );
    client.send(frame(FrameType.WindowUpdate, 0, 3, Buffer.from([0, 0, 4, 0])));
    await until(
      () => up.frames.some((f) => f.type === FrameType.WindowUpdate && f.streamId === 3),
      'the WINDOW_UPDATE upstream',
    );
    up.respond(1, 'application/json');
    up.respond(3, 'application/json');
    up.send(dataFrame(1, '{"type":"ADDED"}\n', false));
    up.send(dataFrame(3, '{"type":"ADDED"}\n', false));
    await client.waitFor(() => dataOf(client, 3).length === 1, 'the data');
    await revoke(user);
    await client.closed;
    assert.equal(dataOf(client, 1).length, 1, 'no event: 47 octets of window left');
    const onThree = dataOf(client, 3);
    assert.equal(onThree.length, 2);
    assertErrorEvent(onThree[1], user);
    assert.match(goaway(client).debug, reasonOf(user));
  });

  test('a watch that is not JSON (protobuf) gets no event, only the GOAWAY', async () => {
    const { user, client, up } = await open([[1, '/api/v1/pods?watch=true']]);
    up.respond(1, 'application/vnd.kubernetes.protobuf;stream=watch');
    up.send(dataFrame(1, Buffer.from([0, 0, 0, 2, 0x0a, 0x00]), false));
    await client.waitFor(() => dataOf(client, 1).length === 1, 'the data');
    await revoke(user);
    await client.closed;
    assert.equal(dataOf(client, 1).length, 1);
    assert.match(goaway(client).debug, reasonOf(user));
  });

  test('fuzz: frames of a watch and a log split at random points across reads, cut at a random one', async () => {
    const events = Array.from(
      { length: 8 },
      (_, i) => `{"type":"MODIFIED","object":{"n":${i},"pad":"${'y'.repeat(i * 53)}"}}\n`,
    );
    const body = events.join('');
    for (let round = 0; round < 6; round++) {
      const { user, client, up } = await open([
        [1, '/api/v1/pods?watch=true'],
        [3, '/api/v1/namespaces/default/pods/demo/log?follow=true'],
      ]);
      up.respond(1, 'application/json');
      up.respond(3, 'text/plain');
      // The watch's DATA frames cut its events anywhere; log frames in between.
      const frames: Buffer[] = [];
      /** Where each watch frame ends in the body. */
      const frameEnds: number[] = [];
      for (let pos = 0; pos < body.length; ) {
        const size = 1 + ((pos * 7919 + round * 104729) % 120);
        frames.push(dataFrame(1, body.slice(pos, pos + size), false));
        pos += size;
        frameEnds.push(Math.min(pos, body.length));
        if (pos % 3 === 0) frames.push(dataFrame(3, `log ${pos}\n`, false));
      }
      const wire = Buffer.concat(frames);
      const cutAt = Math.floor(wire.length * ((round + 1) / 8));
      let writtenAtCut = 0;
      for (let pos = 0; pos < wire.length && !client.isClosed; ) {
        const size = 1 + ((pos * 31 + round * 17) % 90);
        if (pos <= cutAt && cutAt < pos + size) {
          writtenAtCut = pos;
          await revoke(user);
        }
        up.send(wire.subarray(pos, pos + size));
        pos += size;
        await pause(2);
      }
      await client.closed;
      const watch = dataOf(client, 1);
      const event = watch.pop();
      assertErrorEvent(event, user);
      const passed = watch.map((f) => f.payload.toString('latin1')).join('');
      assert.ok(body.startsWith(passed), `round ${round}: the watch's own bytes`);
      assert.ok(passed === '' || passed.endsWith('\n'), `round ${round}: ends with an event`);
      // Nothing past the first frame that ends an event after the cut came.
      const dataWritten = watchDataIn(wire.subarray(0, writtenAtCut));
      const stop = frameEnds.find((end) => end >= dataWritten && body[end - 1] === '\n');
      assert.ok(passed.length <= (stop ?? 0), `round ${round}: ${passed.length} > ${stop}`);
      assert.equal((client.frames.at(-1) as ReceivedFrame).type, FrameType.Goaway);
    }
  });
});

/** How much of stream 1's DATA payload the start `wire` of a frame sequence holds. */
function watchDataIn(wire: Buffer): number {
  let data = 0;
  for (let at = 0; at + 9 <= wire.length; ) {
    const length = wire.readUIntBE(at, 3);
    if (wire.readUInt32BE(at + 5) === 1) data += Math.min(length, wire.length - at - 9);
    at += 9 + length;
  }
  return data;
}
