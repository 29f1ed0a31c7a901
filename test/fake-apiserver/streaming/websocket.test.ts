/**
 * exec/attach over WebSocket v5.channel.k8s.io, the port-forward tunnel handshake, logs and
 * non-upgrade answers, with small clients against the streaming half alone.
 */
import assert from 'node:assert/strict';
import { get, type IncomingMessage, request } from 'node:http';
import { test } from 'node:test';
import { type RawData, WebSocket } from 'ws';
import { websocketUpgradeHead } from '../testkit.js';
import {
  rawUpgrade,
  readToClose,
  type StreamingTestServer,
  startStreamingTestServer,
} from './test-harness.js';

const POD = '/api/v1/namespaces/default/pods/demo';

interface Received {
  readonly messages: Buffer[];
  readonly closeCode: number;
}

function execUrl(server: StreamingTestServer, sub: string, query: string): string {
  return `ws://127.0.0.1:${server.port}${POD}/${sub}?${query}`;
}

interface ExecClient {
  readonly ws: WebSocket;
  /** Every message and the close code; listening starts before the handshake completes. */
  readonly done: Promise<Received>;
}

const messagesOf = new WeakMap<WebSocket, Buffer[]>();

/** Stdout received so far on an open exec WebSocket. */
function channelSoFar(ws: WebSocket): string {
  return channel({ messages: messagesOf.get(ws) ?? [], closeCode: 0 }, 1);
}

/** Opens a v5 exec WebSocket, collecting messages from the very first one. */
function openExec(url: string): Promise<ExecClient> {
  const ws = new WebSocket(url, ['v5.channel.k8s.io']);
  const messages: Buffer[] = [];
  messagesOf.set(ws, messages);
  ws.on('message', (data: RawData) => messages.push(data as Buffer));
  const done = new Promise<Received>((resolve) =>
    ws.once('close', (closeCode: number) => resolve({ messages, closeCode })),
  );
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, done }));
    ws.once('error', reject);
  });
}

function channel(received: Received, id: number): string {
  return Buffer.concat(
    received.messages.filter((m) => m[0] === id).map((m) => m.subarray(1)),
  ).toString();
}

test('WebSocket exec: v5 subprotocol, ready message, stdout, Success on channel 3, close 1000', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  const { ws, done } = await openExec(
    execUrl(server, 'exec', 'command=echo&command=hi&stdout=true&stderr=true'),
  );
  assert.equal(ws.protocol, 'v5.channel.k8s.io');
  const received = await done;
  assert.deepEqual(received.messages[0], Buffer.of(1), 'first: empty message on stdout');
  assert.equal(channel(received, 1), 'hi\n');
  assert.equal(channel(received, 3), '{"metadata":{},"status":"Success"}');
  assert.equal(received.closeCode, 1000);
  const session = server.sessions[0];
  assert.equal(session?.transport, 'websocket');
  assert.equal(session?.kind, 'exec');
  assert.equal(session?.endedBy, 'server');
  assert.equal(session?.bytesOut, 3 + 34);
});

test('WebSocket exec: stdin in, [255, 0] closes it, non-zero exit as the translator reports it', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  const { ws, done } = await openExec(
    execUrl(
      server,
      'exec',
      'command=sh&command=-c&command=cat%3B+exit+4&stdin=true&stdout=true&stderr=true',
    ),
  );
  ws.send(Buffer.concat([Buffer.of(0), Buffer.from('abc')]));
  ws.send(Buffer.concat([Buffer.of(0), Buffer.from('def')]));
  ws.send(Buffer.of(255, 0));
  const received = await done;
  assert.equal(channel(received, 1), 'abcdef');
  assert.deepEqual(JSON.parse(channel(received, 3)), {
    metadata: {},
    status: 'Failure',
    message: 'command terminated with non-zero exit code: command terminated with exit code 4',
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: '4' }] },
  });
  assert.equal(server.sessions[0]?.bytesIn, 6);
});

test('WebSocket exec of a missing executable: InternalError Status, doubled like the 1.32 translator', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  const { done } = await openExec(execUrl(server, 'exec', 'command=nosuch&command=-l&stdout=true'));
  const status = JSON.parse(channel(await done, 3)) as { message: string; code: number };
  assert.equal(status.code, 500);
  assert.match(
    status.message,
    /^Internal error occurred: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "[0-9a-f]{64}": OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": executable file not found in \$PATH: unknown$/,
  );
});

test('WebSocket exec with a TTY waits for the first resize; stderr folds into stdout', async (t) => {
  const server = await startStreamingTestServer({ resizeWaitMs: 5_000 });
  t.after(() => server.close());
  const { ws, done } = await openExec(
    execUrl(
      server,
      'exec',
      'command=sh&command=-c&command=stty+size%3B+echo+e+%3E%262&stdout=true&tty=true',
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, 200));
  ws.send(Buffer.concat([Buffer.of(4), Buffer.from('{"Width":132,"Height":43}\n')]));
  const received = await done;
  assert.equal(channel(received, 1), '43 132\r\ne\r\n');
  assert.equal(channel(received, 2), '');
});

test('client gone mid-command: the session ends as the client, at once', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  const { ws } = await openExec(execUrl(server, 'exec', 'command=sleep&command=100&stdout=true'));
  await server.until(() => server.sessions.length === 1);
  const closedAt = Date.now();
  ws.terminate();
  await server.until(() => server.sessions[0]?.endedAt != null, 2_000, 'session end');
  assert.equal(server.sessions[0]?.endedBy, 'client');
  assert.ok((server.sessions[0]?.endedAt ?? 0) - closedAt < 1_000);
});

test('close() ends live sessions as the server and closes their connections', async (t) => {
  const server = await startStreamingTestServer();
  let closed = false;
  t.after(() => (closed ? undefined : server.close()));
  const { done } = await openExec(execUrl(server, 'attach', 'stdout=true'));
  await server.until(() => server.sessions.length === 1);
  server.log.append('to the attached client');
  await server.until(() => (server.sessions[0]?.bytesOut ?? 0) > 0);
  await server.close();
  closed = true;
  const received = await done;
  assert.equal(channel(received, 1), 'to the attached client\n');
  assert.equal(server.sessions[0]?.endedBy, 'server');
});

test('WebSocket stdout backpressure: 200 MB to a paused reader stay parked in the producer', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  const total = 200 * 1024 * 1024;
  // Counting only (200 MB must not pile up in the test either), from the first message on.
  const ws = new WebSocket(
    execUrl(
      server,
      'exec',
      `command=head&command=-c&command=${total}&command=/dev/urandom&stdout=true`,
    ),
    ['v5.channel.k8s.io'],
  );
  let received = 0;
  ws.on('message', (data: RawData) => {
    if ((data as Buffer)[0] === 1) received += (data as Buffer).length - 1;
  });
  const closed = new Promise<number>((resolve) => ws.once('close', resolve));
  await server.until(() => received > 0);
  ws.pause();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const stalledAt = server.sessions[0]?.bytesOut ?? 0;
  await new Promise((resolve) => setTimeout(resolve, 500));
  const produced = server.sessions[0]?.bytesOut ?? 0;
  assert.ok(produced - stalledAt < 1024 * 1024, `producer kept going: ${produced - stalledAt}`);
  assert.ok(produced < 32 * 1024 * 1024, `${produced} bytes produced for a paused reader`);
  ws.resume();
  assert.equal(await closed, 1000);
  assert.equal(received, total);
});

test('port-forward tunnel: 101 with exactly SPDY/3.1+portforward.k8s.io (which ws itself rejects)', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  const { socket, response } = await rawUpgrade(
    server.port,
    [
      `GET ${POD}/portforward HTTP/1.1`,
      'Host: 127.0.0.1',
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io',
      '',
      '',
    ].join('\r\n'),
  );
  t.after(() => socket.destroy());
  assert.match(response, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.match(response, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
  const protocols = response.split('\r\n').filter((line) => /^sec-websocket-protocol:/i.test(line));
  assert.deepEqual(protocols, ['Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io']);
  assert.equal(server.sessions[0]?.transport, 'spdy-over-websocket');
});

test('WebSocket upgrades without the expected subprotocol are refused before any session', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  for (const [sub, protocol] of [
    ['exec?command=true&stdout=true', 'v4.channel.k8s.io'],
    ['portforward', 'portforward.k8s.io'],
  ] as const) {
    const { socket, response, rest } = await rawUpgrade(
      server.port,
      websocketUpgradeHead(`${POD}/${sub}`, '127.0.0.1', protocol),
    );
    assert.match(response, /^HTTP\/1\.1 400 /);
    assert.match(await readToClose(socket, rest), /"reason":"BadRequest"/);
  }
  assert.equal(server.sessions.length, 0);
});

function httpGet(url: string): Promise<{ res: IncomingMessage; body: Promise<string> }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      resolve({ res, body: new Promise((done) => res.on('end', () => done(text))) });
    }).on('error', reject);
  });
}

test('exec/attach/portforward without an upgrade: 400 "Upgrade request required"', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  for (const sub of ['exec?command=ls&stdout=true', 'attach?stdout=true', 'portforward']) {
    const { res, body } = await httpGet(`http://127.0.0.1:${server.port}${POD}/${sub}`);
    assert.equal(res.statusCode, 400);
    assert.deepEqual(JSON.parse(await body), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Upgrade request required',
      reason: 'BadRequest',
      code: 400,
    });
  }
});

test('logs: the lines and end; follow streams appended lines until the client leaves', async (t) => {
  const server = await startStreamingTestServer();
  t.after(() => server.close());
  server.log.append('one');
  server.log.append('two');
  const plain = await httpGet(`http://127.0.0.1:${server.port}${POD}/log`);
  assert.equal(plain.res.headers['content-type'], 'text/plain');
  assert.equal(await plain.body, 'one\ntwo\n');
  const tail = await httpGet(`http://127.0.0.1:${server.port}${POD}/log?tailLines=1`);
  assert.equal(await tail.body, 'two\n');

  const chunks: string[] = [];
  const followed = request(`http://127.0.0.1:${server.port}${POD}/log?follow=true`);
  const response = new Promise<IncomingMessage>((resolve) => followed.on('response', resolve));
  followed.end();
  const res = await response;
  res.setEncoding('utf8');
  res.on('data', (d: string) => chunks.push(d));
  await server.until(() => chunks.join('') === 'one\ntwo\n', 5_000, 'existing lines');
  server.log.append('three');
  await server.until(() => chunks.join('').endsWith('three\n'), 5_000, 'appended line');
  assert.equal(server.sessions[2]?.endedAt, null);
  followed.destroy();
  await server.until(() => server.sessions[2]?.endedBy === 'client', 2_000, 'client end');
  assert.equal(server.sessions[2]?.transport, 'http');
});

test('TTY line discipline: echo, Enter runs the line, Ctrl-C interrupts the command, not the shell', async (t) => {
  const server = await startStreamingTestServer({ resizeWaitMs: 5_000 });
  t.after(() => server.close());
  const { ws, done } = await openExec(
    execUrl(server, 'exec', 'command=sh&command=-i&stdin=true&stdout=true&tty=true'),
  );
  const output = (): string => channelSoFar(ws);
  const typed = (text: string): void => ws.send(Buffer.concat([Buffer.of(0), Buffer.from(text)]));
  ws.send(Buffer.concat([Buffer.of(4), Buffer.from('{"Width":80,"Height":24}\n')]));
  await server.until(() => output() === '# ', 5_000, 'prompt');
  typed('sleep 30\r');
  await server.until(() => output().endsWith('sleep 30\r\n'), 5_000, 'echoed line');
  typed('\x03');
  await server.until(() => output().endsWith('^C\r\n# '), 5_000, 'interrupted');
  typed('echo $?; exit 5\r');
  const received = await done;
  assert.equal(channel(received, 1), '# sleep 30\r\n^C\r\n# echo $?; exit 5\r\n130\r\n');
  const status = JSON.parse(channel(received, 3)) as { details: { causes: { message: string }[] } };
  assert.equal(status.details.causes[0]?.message, '5');
});
