/**
 * The HTTP/2 frame relay between a raw HTTP/2 client and a raw HTTP/2 upstream that record every
 * frame: what passes byte for byte, what is rewritten (request header blocks), what the relay
 * adds (pings, its own answers, resets, GOAWAY) and what it refuses (floods, bad sizes, rapid
 * reset). The end-to-end suites cover the same path with kubectl and Node's own clients.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createSecureServer, connect as h2connect, type ServerHttp2Stream } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import {
  ErrorCode,
  Flag,
  FrameType,
  PREFACE,
  Setting,
  settingsFrame,
  writeFrameHeader,
} from '../../src/proxy/h2/frames.js';
import { HpackDecoder } from '../../src/proxy/h2/hpack.js';
import { HpackEncoder } from '../../src/proxy/h2/hpack-encoder.js';
import {
  dataFrame,
  frame,
  headerBlock,
  headerFragment,
  headersFrame,
  RawH2Client,
  type ReceivedFrame,
  requestFields,
  splitFrames,
} from '../security/h2-frames.js';
import { decodedFields } from '../support/hpack.js';
import { makePkiWithAlice, proxyArgs, type TestPki } from '../support/pki.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy-process.js';
import { Waiters } from '../support/wait.js';

type Field = [string, string];

let pki: TestPki;
let alice: IssuedCert;

before(async () => {
  ({ pki, alice } = await makePkiWithAlice());
});

after(() => pki?.cleanup());

/** Frames of a byte stream, parsed as they arrive. */
class FrameLog {
  readonly frames: ReceivedFrame[] = [];
  private buffered: Buffer = Buffer.alloc(0);
  private readonly waiters = new Waiters();
  closed = false;

  push(chunk: Buffer, onFrame: (f: ReceivedFrame) => void): void {
    this.buffered = splitFrames(Buffer.concat([this.buffered, chunk]), (received) => {
      this.frames.push(received);
      onFrame(received);
    });
    this.notify();
  }

  notify(): void {
    this.waiters.notify();
  }

  waitFor(done: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    return this.waiters.waitFor(done, timeoutMs, () => `${what} not seen within ${timeoutMs} ms`);
  }
}

/** One upstream connection: records frames, decodes request blocks, answers SETTINGS. */
class UpstreamSession {
  readonly log = new FrameLog();
  readonly decoder = new HpackDecoder();
  readonly encoder = new HpackEncoder();
  /** Decoded request header blocks, in arrival order. */
  readonly blocks: Array<{ streamId: number; fields: Field[]; frames: ReceivedFrame[] }> = [];
  private preface = 0;
  private block: ReceivedFrame[] = [];
  private readonly sentTableSizes: Array<number | undefined> = [];

  constructor(
    readonly socket: TLSSocket,
    settings: ReadonlyArray<readonly [number, number]> | null,
    readonly autoAck: boolean,
  ) {
    if (settings !== null) this.sendSettings(settings);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.once('close', () => {
      this.log.closed = true;
      this.log.notify();
    });
  }

  get frames(): ReceivedFrame[] {
    return this.log.frames;
  }

  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  sendSettings(settings: ReadonlyArray<readonly [number, number]>): void {
    this.sentTableSizes.push(settings.find(([id]) => id === Setting.HeaderTableSize)?.[1]);
    this.send(settingsFrame(settings));
  }

  /** A response HEADERS (our encoder, indexing on) and optionally DATA (ending the stream or not). */
  respond(streamId: number, fields: readonly Field[], body?: string, end = true): Buffer {
    const out = Buffer.alloc(4096);
    let pos = this.encoder.beginBlock(out, 9);
    for (const [name, value] of fields)
      pos = this.encoder.encodeRequestField(name, value, false, out, pos);
    const endStream = body === undefined ? Flag.EndStream : 0;
    writeFrameHeader(out, 0, pos - 9, FrameType.Headers, Flag.EndHeaders | endStream, streamId);
    const bytes = Buffer.from(out.subarray(0, pos));
    this.send(bytes);
    if (body !== undefined) this.send(dataFrame(streamId, body, end));
    return bytes;
  }

  waitFor(done: () => boolean, what: string, timeoutMs?: number): Promise<void> {
    return this.log.waitFor(done, `upstream: ${what}`, timeoutMs);
  }

  private onData(chunk: Buffer): void {
    if (this.preface < PREFACE.length) {
      const n = Math.min(PREFACE.length - this.preface, chunk.length);
      this.preface += n;
      chunk = chunk.subarray(n);
    }
    this.log.push(chunk, (f) => this.onFrame(f));
  }

  private onFrame(f: ReceivedFrame): void {
    if (f.type === FrameType.Settings) {
      if (f.flags & Flag.Ack) {
        const size = this.sentTableSizes.shift();
        if (size !== undefined) this.decoder.setAllowedTableSize(size);
      } else if (this.autoAck) {
        this.send(frame(FrameType.Settings, Flag.Ack, 0, new Uint8Array(0)));
        for (let i = 0; i + 6 <= f.payload.length; i += 6)
          if (f.payload.readUInt16BE(i) === Setting.HeaderTableSize)
            this.encoder.setLimit(f.payload.readUInt32BE(i + 2));
      }
    }
    if (f.type === FrameType.Headers || f.type === FrameType.Continuation) {
      this.block.push(f);
      if (f.flags & Flag.EndHeaders) {
        const frames = this.block;
        this.block = [];
        const bytes = Buffer.concat(
          frames.map((b) => (b.type === FrameType.Headers ? headerFragment(b) : b.payload)),
        );
        this.decoder.decode(bytes, 0, bytes.length, 1 << 20, 1000);
        this.blocks.push({ streamId: f.streamId, fields: decodedFields(this.decoder), frames });
      }
    }
  }
}

/** A raw HTTP/2 upstream with the apiserver's certificate. */
class RawUpstream {
  readonly sessions: UpstreamSession[] = [];
  private readonly waiters = new Waiters();

  private constructor(
    readonly server: Server,
    readonly url: string,
  ) {}

  /** `settings` null: the upstream never sends its SETTINGS. */
  static async start(
    settings: ReadonlyArray<readonly [number, number]> | null = [],
    autoAck = true,
  ): Promise<RawUpstream> {
    let upstream: RawUpstream | null = null;
    const server = createServer(
      {
        cert: pki.apiserver.certPem,
        key: pki.apiserver.keyPem,
        ALPNProtocols: ['h2'],
        requestCert: true,
        rejectUnauthorized: false,
      },
      (socket) => {
        const session = new UpstreamSession(socket, settings, autoAck);
        upstream?.sessions.push(session);
        upstream?.notify();
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    upstream = new RawUpstream(server, `https://127.0.0.1:${port}`);
    return upstream;
  }

  notify(): void {
    this.waiters.notify();
  }

  /** The session the relay uses (the pool is off: the first one). */
  async session(timeoutMs = 5000): Promise<UpstreamSession> {
    await this.waiters.waitFor(
      () => this.sessions.length > 0,
      timeoutMs,
      () => 'no upstream connection',
    );
    return this.sessions[0] as UpstreamSession;
  }

  close(): Promise<void> {
    for (const s of this.sessions) s.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Rig {
  upstream: RawUpstream;
  proxy: ProxyProcess;
  client: RawH2Client;
  session: UpstreamSession;
}

/** A raw upstream, the proxy in front of it (no warm pool), a raw client connected. */
async function rig(
  t: { after: (fn: () => Promise<void> | void) => void },
  options: {
    settings?: ReadonlyArray<readonly [number, number]>;
    flags?: string[];
    autoAck?: boolean;
  } = {},
): Promise<Rig> {
  const upstream = await RawUpstream.start(options.settings ?? [], options.autoAck ?? true);
  const proxy = await startProxyProcess(
    proxyArgs(pki, upstream.url, ['--upstream-pool-size=0', ...(options.flags ?? [])]),
  );
  const client = await RawH2Client.connect(proxy.url, pki.clusterCa.certPem, alice);
  t.after(async () => {
    client.destroy();
    await proxy.stop();
    await upstream.close();
  });
  const session = await upstream.session();
  return { upstream, proxy, client, session };
}

function settingsOf(f: ReceivedFrame): Map<number, number> {
  const out = new Map<number, number>();
  for (let i = 0; i + 6 <= f.payload.length; i += 6)
    out.set(f.payload.readUInt16BE(i), f.payload.readUInt32BE(i + 2));
  return out;
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

const settle = (ms = 200) => new Promise((r) => setTimeout(r, ms));

describe('SETTINGS and the stream limit', () => {
  test("the upstream's SETTINGS reach the client with the limits lowered; the client's pass unchanged", async (t) => {
    const { client, session } = await rig(t, {
      settings: [
        [Setting.MaxConcurrentStreams, 500],
        [Setting.InitialWindowSize, 100_000],
        [Setting.EnableConnectProtocol, 1],
      ],
      flags: ['--h2-max-concurrent-streams=3'],
    });
    await client.waitFor(
      () => client.frames.some((f) => f.type === FrameType.Settings && !(f.flags & Flag.Ack)),
      'SETTINGS',
    );
    const seen = settingsOf(
      client.frames.find(
        (f) => f.type === FrameType.Settings && !(f.flags & Flag.Ack),
      ) as ReceivedFrame,
    );
    assert.equal(seen.get(Setting.MaxConcurrentStreams), 3);
    assert.equal(seen.get(Setting.InitialWindowSize), 100_000);
    assert.equal(seen.get(Setting.MaxHeaderListSize), 65536);
    assert.equal(seen.has(Setting.EnableConnectProtocol), false, 'extended CONNECT not offered');
    const mine = settingsFrame([
      [Setting.InitialWindowSize, 1 << 20],
      [Setting.HeaderTableSize, 8192],
    ]);
    client.send(mine);
    await session.waitFor(
      () => session.frames.some((f) => f.type === FrameType.Settings && f.payload.length === 12),
      "the client's SETTINGS",
    );
    const relayed = session.frames.find(
      (f) => f.type === FrameType.Settings && f.payload.length === 12,
    ) as ReceivedFrame;
    assert.deepEqual(relayed.payload, mine.subarray(9));
    // Both ACKs travel: the upstream's for the client's SETTINGS, the client's for the upstream's.
    await client.waitFor(
      () =>
        client.frames.filter((f) => f.type === FrameType.Settings && f.flags & Flag.Ack).length >=
        1,
      'ACK of the client SETTINGS',
    );
    await session.waitFor(
      () => session.frames.some((f) => f.type === FrameType.Settings && f.flags & Flag.Ack),
      'ACK of the upstream SETTINGS',
    );
  });

  test('a stream beyond --h2-max-concurrent-streams is refused and never reaches the upstream', async (t) => {
    const { client, session } = await rig(t, { flags: ['--h2-max-concurrent-streams=3'] });
    for (const id of [1, 3, 5, 7]) client.send(headersFrame(id, requestFields(`/api?s${id}`)));
    await client.waitFor(() => client.resetCode(7) !== null, 'RST_STREAM on 7');
    assert.equal(client.resetCode(7), ErrorCode.RefusedStream);
    await settle();
    assert.deepEqual(
      session.blocks.map((b) => b.streamId),
      [1, 3, 5],
    );
    // Once one finishes, there is room again.
    session.respond(1, [[':status', '200']]);
    await client.waitFor(() => client.streamDone(1), 'stream 1');
    client.send(headersFrame(9, requestFields('/api?s9')));
    await session.waitFor(() => session.blocks.some((b) => b.streamId === 9), 'stream 9 upstream');
  });
});

describe('request header blocks', () => {
  test('decoded, identity replaced, re-encoded; a large block goes out as contiguous HEADERS + CONTINUATION', async (t) => {
    const { client, session } = await rig(t);
    const big = 'b'.repeat(20_000);
    const block = headerBlock(
      requestFields('/api?big', [
        ['x-remote-user', 'spoof-admin'],
        ['x-remote-group', 'spoof:system:masters'],
        ['x-big', big],
        ['accept', 'application/json'],
      ]),
    );
    client.send(frame(FrameType.Headers, Flag.EndStream, 1, block.subarray(0, 30)));
    client.send(frame(FrameType.Continuation, 0, 1, block.subarray(30, 10_000)));
    client.send(frame(FrameType.Continuation, Flag.EndHeaders, 1, block.subarray(10_000)));
    await session.waitFor(() => session.blocks.length === 1, 'the request');
    const { fields, frames } = session.blocks[0] as (typeof session.blocks)[0];
    assert.deepEqual(fields, [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', '127.0.0.1'],
      [':path', '/api?big'],
      ['x-big', big],
      ['accept', 'application/json'],
      ['x-forwarded-for', '127.0.0.1'],
      ['x-remote-user', 'alice'],
      ['x-remote-group', 'dev'],
      ['x-remote-group', 'ops'],
    ]);
    assert.deepEqual(
      frames.map((f) => f.type),
      [FrameType.Headers, FrameType.Continuation],
    );
    assert.ok(frames.every((f) => f.payload.length <= 16_384));
    // Nothing else was interleaved between HEADERS and its CONTINUATION.
    const at = session.frames.indexOf(frames[0] as ReceivedFrame);
    assert.equal(session.frames[at + 1], frames[1]);
    assert.equal((frames[0] as ReceivedFrame).flags & Flag.EndStream, Flag.EndStream);
  });

  test('a frame inside a client header block is a connection error', async (t) => {
    const { client, session } = await rig(t);
    const block = headerBlock(requestFields('/api?split'));
    client.send(frame(FrameType.Headers, 0, 1, block.subarray(0, 10)));
    client.send(frame(FrameType.Ping, 0, 0, Buffer.alloc(8)));
    client.send(frame(FrameType.Continuation, Flag.EndHeaders, 1, block.subarray(10)));
    await client.waitFor(() => client.goawayCode() !== null, 'GOAWAY');
    assert.equal(client.goawayCode(), ErrorCode.ProtocolError);
    await settle();
    assert.equal(session.blocks.length, 0);
  });

  test("the upstream's header table size binds the encoder, and a smaller one is signalled after the client's ACK", async (t) => {
    const { client, session } = await rig(t, { settings: [[Setting.HeaderTableSize, 256]] });
    const acks = () =>
      session.frames.filter((f) => f.type === FrameType.Settings && f.flags & Flag.Ack).length;
    await session.waitFor(() => acks() === 1, "the client's ACK");
    const extra = (i: number): Field[] => [
      ['x-one', `value-${i % 3}`],
      ['x-two', 'a fairly long value that fills the table quickly'],
    ];
    let id = 1;
    /** A request; `update` is the client's own table size update (owed after a smaller size). */
    const request = async (i: number, update = '') => {
      const stream = id;
      id += 2;
      const block = Buffer.concat([
        Buffer.from(update, 'hex'),
        headerBlock(requestFields(`/api?n=${i}`, extra(i))),
      ]);
      client.send(frame(FrameType.Headers, Flag.EndHeaders | Flag.EndStream, stream, block));
      await session.waitFor(
        () => session.blocks.some((b) => b.streamId === stream),
        `request ${i}`,
      );
      session.respond(stream, [[':status', '200']]);
      return session.blocks.find((b) => b.streamId === stream) as (typeof session.blocks)[0];
    };
    const startsWithUpdate = (b: (typeof session.blocks)[0], max: number) => {
      const head = headerFragment(b.frames[0] as ReceivedFrame);
      const first = head[0] as number;
      assert.equal(first & 0xe0, 0x20, 'a dynamic table size update first');
      const size = (first & 0x1f) < 31 ? first & 0x1f : 31 + (head[1] as number);
      assert.ok(size <= max, `update to ${size}`);
    };
    // 256: 001 11111 then 225 (0xe1 0x01); 64: 001 11111 then 33.
    startsWithUpdate(await request(0, '3fe101'), 256);
    for (let i = 1; i < 5; i++) await request(i);
    assert.ok(session.decoder.snapshot().size <= 256);
    session.sendSettings([[Setting.HeaderTableSize, 64]]);
    await session.waitFor(() => acks() === 2, 'the ACK of the smaller size');
    startsWithUpdate(await request(5, '3f21'), 64);
    for (let i = 6; i < 10; i++) await request(i);
    assert.ok(session.decoder.snapshot().size <= 64);
    assert.deepEqual(session.blocks.at(-1)?.fields.slice(4, 6), extra(9));
  });

  test('a client that does not signal a smaller table size after its ACK: COMPRESSION_ERROR, as nghttp2 answered', async (t) => {
    const { client, session } = await rig(t, { settings: [[Setting.HeaderTableSize, 256]] });
    await session.waitFor(
      () => session.frames.some((f) => f.type === FrameType.Settings && f.flags & Flag.Ack),
      "the client's ACK",
    );
    client.send(headersFrame(1, requestFields('/api?no-update')));
    await client.waitFor(() => client.goawayCode() !== null, 'GOAWAY');
    assert.equal(client.goawayCode(), ErrorCode.CompressionError);
    assert.equal(session.blocks.length, 0);
  });

  test('an nghttp2 upstream with a tiny header table decodes every request (Node client, 40 requests)', async (t) => {
    const server = createSecureServer({
      cert: pki.apiserver.certPem,
      key: pki.apiserver.keyPem,
      settings: { headerTableSize: 64 },
    });
    const seen: string[] = [];
    server.on('stream', (stream: ServerHttp2Stream, headers) => {
      seen.push(String(headers['x-n']));
      stream.respond({ ':status': 200, 'x-echo': String(headers['x-n']), 'x-same': 'constant' });
      stream.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const proxy = await startProxyProcess(
      proxyArgs(pki, `https://127.0.0.1:${port}`, ['--upstream-pool-size=0']),
    );
    const session = h2connect(proxy.url, {
      ca: pki.clusterCa.certPem,
      cert: alice.certPem,
      key: alice.keyPem,
    });
    t.after(async () => {
      session.destroy();
      await proxy.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const one = (n: number) =>
      new Promise<string>((resolve, reject) => {
        const req = session.request({
          ':path': `/api?${n}`,
          'x-n': String(n),
          'x-pad': 'p'.repeat(n),
        });
        req.on('response', (h) => resolve(String(h['x-echo'])));
        req.on('error', reject);
        req.resume();
      });
    for (let n = 0; n < 40; n++) assert.equal(await one(n), String(n));
    assert.equal(seen.length, 40);
  });
});

describe('responses', () => {
  test('pass byte for byte; the status is read through the dynamic table for the metrics', async (t) => {
    const { client, session, proxy } = await rig(t);
    const sent: Buffer[] = [];
    for (let i = 0, id = 1; i < 3; i++, id += 2) {
      client.send(headersFrame(id, requestFields(`/api?r${i}`)));
      await session.waitFor(() => session.blocks.some((b) => b.streamId === id), `request ${id}`);
      // 201 is not in the static table: the first is a literal, the next ones indexed.
      sent.push(
        session.respond(
          id,
          [
            [':status', '201'],
            ['x-custom', 'same every time'],
          ],
          `body ${i}`,
        ),
      );
      await client.waitFor(() => client.streamDone(id), `stream ${id}`);
    }
    const received = client.frames.filter((f) => f.type === FrameType.Headers);
    assert.deepEqual(
      received.map((f) => f.payload),
      sent.map((b) => b.subarray(9)),
    );
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(
      metrics,
      /kube_crl_proxy_requests_total\{method="GET",code="201",protocol="h2"\} 3/,
    );
  });

  test("the relay's own answers leave the client's table alone (CONNECT between indexed responses)", async () => {
    const server = createSecureServer({
      cert: pki.apiserver.certPem,
      key: pki.apiserver.keyPem,
    });
    server.on('stream', (stream: ServerHttp2Stream) => {
      stream.respond({ ':status': 200, 'x-indexed': 'a value nghttp2 adds to its table' });
      stream.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const proxy = await startProxyProcess(proxyArgs(pki, `https://127.0.0.1:${port}`));
    const session = h2connect(proxy.url, {
      ca: pki.clusterCa.certPem,
      cert: alice.certPem,
      key: alice.keyPem,
    });
    try {
      const get = () =>
        new Promise<string>((resolve, reject) => {
          const req = session.request({ ':path': '/api' });
          req.on('response', (h) => resolve(String(h['x-indexed'])));
          req.on('error', reject);
          req.resume();
        });
      const connect = () =>
        new Promise<number>((resolve, reject) => {
          const req = session.request({ ':method': 'CONNECT', ':authority': 'x:1' });
          req.on('response', (h) => resolve(Number(h[':status'])));
          req.on('error', reject);
          req.resume();
        });
      assert.equal(await get(), 'a value nghttp2 adds to its table');
      assert.equal(await connect(), 400);
      assert.equal(await get(), 'a value nghttp2 adds to its table');
      assert.equal(await connect(), 400);
      assert.equal(await get(), 'a value nghttp2 adds to its table');
    } finally {
      session.destroy();
      await proxy.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('resets, pings and limits', () => {
  test('resets travel end to end with their code', async (t) => {
    const { client, session } = await rig(t);
    client.send(headersFrame(1, requestFields('/api?a'), { endStream: false }));
    client.send(headersFrame(3, requestFields('/api?b')));
    await session.waitFor(() => session.blocks.length === 2, 'two requests');
    client.send(frame(FrameType.RstStream, 0, 1, u32(ErrorCode.Cancel)));
    await session.waitFor(
      () => session.frames.some((f) => f.type === FrameType.RstStream && f.streamId === 1),
      'RST_STREAM 1',
    );
    const up = session.frames.find((f) => f.type === FrameType.RstStream) as ReceivedFrame;
    assert.equal(up.payload.readUInt32BE(0), ErrorCode.Cancel);
    session.send(frame(FrameType.RstStream, 0, 3, u32(ErrorCode.InternalError)));
    await client.waitFor(() => client.resetCode(3) !== null, 'RST_STREAM 3');
    assert.equal(client.resetCode(3), ErrorCode.InternalError);
  });

  test('keep-alive pings: recognised ACKs are swallowed; a silent client is closed', async (t) => {
    const { client, session } = await rig(t, { flags: ['--h2-ping-interval=1s'] });
    await client.waitFor(
      () => client.frames.some((f) => f.type === FrameType.Ping && !(f.flags & Flag.Ack)),
      'a PING',
      3000,
    );
    const ping = client.frames.find((f) => f.type === FrameType.Ping) as ReceivedFrame;
    client.send(frame(FrameType.Ping, Flag.Ack, 0, ping.payload));
    // The next one is left unanswered: the connection goes within two intervals.
    await client.waitFor(() => client.isClosed, 'the close of a silent client', 4000);
    assert.equal(
      session.frames.some((f) => f.type === FrameType.Ping),
      false,
      'no PING (nor its ACK) went upstream',
    );
  });

  test('a client PING goes to the upstream and its ACK comes back', async (t) => {
    const { client, session } = await rig(t);
    const payload = Buffer.from('12345678');
    client.send(frame(FrameType.Ping, 0, 0, payload));
    await session.waitFor(() => session.frames.some((f) => f.type === FrameType.Ping), 'PING');
    session.send(frame(FrameType.Ping, Flag.Ack, 0, payload));
    await client.waitFor(
      () => client.frames.some((f) => f.type === FrameType.Ping && f.flags & Flag.Ack),
      'PING ACK',
    );
  });

  const connectionErrors: ReadonlyArray<readonly [string, (c: RawH2Client) => void, number]> = [
    [
      'rapid reset (1,100 HEADERS + RST_STREAM)',
      (c) => {
        const burst: Buffer[] = [];
        for (let i = 0, id = 1; i < 1100; i++, id += 2) {
          burst.push(headersFrame(id, requestFields('/api?rr')));
          burst.push(frame(FrameType.RstStream, 0, id, u32(ErrorCode.Cancel)));
        }
        c.send(Buffer.concat(burst));
      },
      ErrorCode.EnhanceYourCalm,
    ],
    [
      'a SETTINGS flood',
      (c) => c.send(Buffer.concat(Array.from({ length: 1100 }, () => settingsFrame([])))),
      ErrorCode.EnhanceYourCalm,
    ],
    [
      'a PING flood',
      (c) =>
        c.send(
          Buffer.concat(
            Array.from({ length: 1100 }, () => frame(FrameType.Ping, 0, 0, Buffer.alloc(8))),
          ),
        ),
      ErrorCode.EnhanceYourCalm,
    ],
    [
      'an empty DATA flood',
      (c) => {
        c.send(headersFrame(1, requestFields('/api', [], 'POST'), { endStream: false }));
        c.send(Buffer.concat(Array.from({ length: 1100 }, () => dataFrame(1, '', false))));
      },
      ErrorCode.EnhanceYourCalm,
    ],
    [
      'a connection window overflow',
      (c) => {
        c.send(frame(FrameType.WindowUpdate, 0, 0, u32(0x7fffffff)));
      },
      ErrorCode.FlowControlError,
    ],
    [
      'a frame larger than the upstream allows',
      (c) => c.send(frame(FrameType.Ping, 0, 0, Buffer.alloc(16_385))),
      ErrorCode.FrameSizeError,
    ],
    [
      'a PING of the wrong size',
      (c) => c.send(frame(FrameType.Ping, 0, 0, Buffer.alloc(7))),
      ErrorCode.FrameSizeError,
    ],
    [
      'a header block above --max-header-bytes',
      (c) => {
        const block = headerBlock(requestFields('/api', [['x-huge', 'h'.repeat(70_000)]]));
        c.send(frame(FrameType.Headers, 0, 1, block.subarray(0, 16_000)));
        for (let at = 16_000; at < block.length; at += 16_000)
          c.send(
            frame(
              FrameType.Continuation,
              at + 16_000 >= block.length ? Flag.EndHeaders : 0,
              1,
              block.subarray(at, at + 16_000),
            ),
          );
      },
      ErrorCode.EnhanceYourCalm,
    ],
  ];
  for (const [label, send, code] of connectionErrors) {
    test(`${label}: GOAWAY ${code} and the connection closes`, async (t) => {
      const { client } = await rig(t);
      send(client);
      await client.waitFor(() => client.goawayCode() !== null, 'GOAWAY', 10_000);
      assert.equal(client.goawayCode(), code, client.describe().slice(-300));
      await client.waitFor(() => client.isClosed, 'the close');
    });
  }

  test('stream errors: WINDOW_UPDATE of 0 and a stream window overflow reset the stream, both ways', async (t) => {
    const { client, session } = await rig(t);
    client.send(headersFrame(1, requestFields('/api?w1'), { endStream: false }));
    client.send(headersFrame(3, requestFields('/api?w3'), { endStream: false }));
    await session.waitFor(() => session.blocks.length === 2, 'two requests');
    client.send(frame(FrameType.WindowUpdate, 0, 1, u32(0)));
    client.send(frame(FrameType.WindowUpdate, 0, 3, u32(0x7fffffff)));
    await client.waitFor(
      () => client.resetCode(1) !== null && client.resetCode(3) !== null,
      'resets',
    );
    assert.equal(client.resetCode(1), ErrorCode.ProtocolError);
    assert.equal(client.resetCode(3), ErrorCode.FlowControlError);
    await session.waitFor(
      () => session.frames.filter((f) => f.type === FrameType.RstStream).length === 2,
      'the upstream streams cancelled',
    );
    assert.equal(client.goawayCode(), null, 'the connection lives on');
  });
});

describe('connection lifecycle', () => {
  test('drain (SIGTERM): GOAWAY, a watch ends cleanly, a request in flight finishes, then close', async (t) => {
    const { client, session, proxy } = await rig(t, { flags: ['--shutdown-grace=10s'] });
    client.send(headersFrame(1, requestFields('/api/v1/pods?watch=true')));
    client.send(headersFrame(3, requestFields('/api/v1/pods')));
    await session.waitFor(() => session.blocks.length === 2, 'two requests');
    session.respond(1, [[':status', '200']], '{"type":"ADDED"}\n', false);
    await client.waitFor(
      () => client.framesOf(1).some((f) => f.type === FrameType.Data),
      'watch event',
    );
    const stopped = proxy.stop();
    await client.waitFor(() => client.goawayCode() !== null, 'GOAWAY');
    const goaway = client.frames.find((f) => f.type === FrameType.Goaway) as ReceivedFrame;
    assert.equal(goaway.payload.readUInt32BE(0), 3, 'last stream id');
    assert.equal(goaway.payload.readUInt32BE(4), ErrorCode.NoError);
    await client.waitFor(() => client.streamDone(1), 'the watch ended');
    const end = client.framesOf(1).at(-1) as ReceivedFrame;
    assert.equal(end.type, FrameType.Data);
    assert.equal(end.flags & Flag.EndStream, Flag.EndStream);
    assert.equal(end.payload.length, 0);
    await session.waitFor(
      () => session.frames.some((f) => f.type === FrameType.RstStream && f.streamId === 1),
      'the watch cancelled upstream',
    );
    assert.equal(client.isClosed, false, 'still open for stream 3');
    session.respond(3, [[':status', '200']], '{"kind":"PodList"}');
    await client.waitFor(() => client.streamDone(3), 'stream 3 answered');
    await client.waitFor(() => client.isClosed, 'the close');
    await stopped;
  });

  test('an upstream GOAWAY reaches the client; the connection closes once its streams are done', async (t) => {
    const { client, session } = await rig(t);
    client.send(headersFrame(1, requestFields('/api?g1')));
    client.send(headersFrame(3, requestFields('/api?g3')));
    await session.waitFor(() => session.blocks.length === 2, 'two requests');
    session.send(frame(FrameType.Goaway, 0, 0, Buffer.concat([u32(1), u32(0)])));
    await client.waitFor(() => client.goawayCode() !== null, 'GOAWAY');
    assert.equal(client.isClosed, false);
    session.respond(1, [[':status', '200']]);
    await client.waitFor(() => client.isClosed, 'the close after stream 1');
    assert.ok(client.streamDone(1));
  });

  test('an upstream that goes away: 503 Status for the unanswered stream, GOAWAY, close', async (t) => {
    const { client, session } = await rig(t);
    client.send(headersFrame(1, requestFields('/api?gone')));
    await session.waitFor(() => session.blocks.length === 1, 'the request');
    session.socket.destroy();
    await client.waitFor(() => client.isClosed, 'the close');
    assert.equal(client.status(1), 503);
    assert.equal(client.goawayCode(), ErrorCode.NoError);
  });

  test('an upstream that never sends its SETTINGS: 503 Status after one ping interval', async (t) => {
    const upstream = await RawUpstream.start(null, false);
    const proxy = await startProxyProcess(
      proxyArgs(pki, upstream.url, ['--upstream-pool-size=0', '--h2-ping-interval=1s']),
    );
    const client = await RawH2Client.connect(proxy.url, pki.clusterCa.certPem, alice);
    t.after(async () => {
      client.destroy();
      await proxy.stop();
      await upstream.close();
    });
    client.send(headersFrame(1, requestFields('/api?silent')));
    const session = await upstream.session();
    await session.waitFor(() => session.blocks.length === 1, 'the request upstream');
    await client.waitFor(() => client.isClosed, 'the close', 5000);
    assert.equal(client.status(1), 503);
    assert.equal(client.goawayCode(), ErrorCode.NoError);
  });

  test('a preface and SETTINGS split across many writes', async (t) => {
    const upstream = await RawUpstream.start();
    const proxy = await startProxyProcess(proxyArgs(pki, upstream.url, ['--upstream-pool-size=0']));
    t.after(async () => {
      await proxy.stop();
      await upstream.close();
    });
    const { connect } = await import('node:tls');
    const socket = connect({
      host: '127.0.0.1',
      port: proxy.port,
      ca: pki.clusterCa.certPem,
      cert: alice.certPem,
      key: alice.keyPem,
      ALPNProtocols: ['h2'],
    });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    // The server's SETTINGS is acknowledged only once the pieces are all written.
    const log = new FrameLog();
    socket.on('data', (chunk: Buffer) => log.push(chunk, () => {}));
    const bytes = Buffer.concat([
      PREFACE,
      settingsFrame([]),
      headersFrame(1, requestFields('/api?split')),
    ]);
    let from = 0;
    for (const cut of [3, 11, 23, 24, 26, 33, 40, bytes.length]) {
      socket.write(bytes.subarray(from, cut));
      from = cut;
      await settle(20);
    }
    socket.write(frame(FrameType.Settings, Flag.Ack, 0, new Uint8Array(0)));
    const session = await upstream.session();
    await session.waitFor(() => session.blocks.length === 1, 'the request');
    assert.equal(session.blocks[0]?.fields[3]?.[1], '/api?split');
    session.respond(1, [[':status', '200']]);
    await log.waitFor(() => log.frames.some((f) => f.type === FrameType.Headers), 'the response');
    socket.destroy();
  });
});

describe('flow control and backpressure', () => {
  test('a client that stops reading: the upstream is stopped, the proxy holds little', async (t) => {
    const { client, session, proxy } = await rig(t);
    client.send(
      Buffer.concat([
        settingsFrame([[Setting.InitialWindowSize, 0x7fffffff]]),
        frame(FrameType.WindowUpdate, 0, 0, u32(0x7fffffff - 65_535)),
        headersFrame(1, requestFields('/api?big')),
      ]),
    );
    await session.waitFor(() => session.blocks.length === 1, 'the request');
    client.socket.pause();
    session.respond(1, [[':status', '200']], '');
    const chunk = Buffer.alloc(16_384, 0x61);
    const data = Buffer.concat([Buffer.alloc(9), chunk]);
    writeFrameHeader(data, 0, chunk.length, FrameType.Data, 0, 1);
    const rss = () =>
      Number(
        /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proxy.child.pid}/status`, 'utf8'))?.[1],
      ) * 1024;
    const before = rss();
    let written = 0;
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && written < 200 * 1024 * 1024) {
      if (session.socket.write(data)) written += data.length;
      // A 'drain' that does not come within 100 ms: its listener goes with the timeout.
      else
        await once(session.socket, 'drain', { signal: AbortSignal.timeout(100) }).catch(() => {});
    }
    const growth = rss() - before;
    assert.ok(written < 64 * 1024 * 1024, `the upstream wrote ${written} bytes`);
    assert.ok(growth < 48 * 1024 * 1024, `proxy RSS grew by ${growth}`);
    client.socket.resume();
  });
});
