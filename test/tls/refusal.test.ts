/**
 * AlertRefusals on a plain node:tls server: the alert when it can be sent exactly, and `false`
 * (nothing written, the connection left as it was) in every case it cannot: a TLS 1.2
 * connection, a refusal after OpenSSL has built its tickets, a connection with no descriptor.
 */
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { Authority, type IssuedCert } from '../../src/demo/pki-factory.js';
import { AlertDescription } from '../../src/tls/alert.js';
import { AlertRefusals } from '../../src/tls/refusal.js';
import { REVOKED_ALERT_CODE } from '../support/alerts.js';

let ca: Authority;
let serving: IssuedCert;
let client: IssuedCert;

before(async () => {
  ca = await Authority.create({ commonName: 'test-ca' });
  serving = await ca.issue({
    commonName: 'localhost',
    usage: 'server',
    ipAddresses: ['127.0.0.1'],
  });
  client = await ca.issue({ commonName: 'mallory' });
});

/** A server whose every connection is refused by `refuse`, called as the listener says. */
async function refusingServer(
  when: 'at once' | 'on the next turn',
): Promise<{ server: Server; port: number; results: boolean[]; descriptors: unknown[] }> {
  const server = createServer({
    cert: serving.certPem,
    key: serving.keyPem,
    ca: ca.certPem,
    requestCert: true,
    rejectUnauthorized: false,
  });
  const refusals = new AlertRefusals(server);
  const results: boolean[] = [];
  const descriptors: unknown[] = [];
  server.on('secureConnection', (socket: TLSSocket) => {
    descriptors.push((socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd);
    socket.on('error', () => socket.destroy());
    const refuse = () => {
      const sent = refusals.refuse(socket, AlertDescription.certificateRevoked);
      results.push(sent);
      if (!sent) socket.destroy();
    };
    if (when === 'at once') refuse();
    else setImmediate(refuse);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, results, descriptors };
}

/** The client's view: the alert's error code, or how else the connection ended. */
function clientOutcome(port: number, maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      ca: ca.certPem,
      cert: client.certPem,
      key: client.keyPem,
      maxVersion,
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.on('close', () => resolve('closed'));
  });
}

const servers: Array<Server | TcpServer> = [];
after(() => {
  for (const s of servers) s.close();
});

describe('AlertRefusals', () => {
  test('TLS 1.3, refused from secureConnection: the client reads the alert', async () => {
    const { server, port, results } = await refusingServer('at once');
    servers.push(server);
    assert.match(await clientOutcome(port, 'TLSv1.3'), REVOKED_ALERT_CODE);
    assert.deepEqual(results, [true]);
  });

  test('TLS 1.2: nothing is sent', async () => {
    const { server, port, results } = await refusingServer('at once');
    servers.push(server);
    assert.doesNotMatch(await clientOutcome(port, 'TLSv1.2'), /ALERT/);
    assert.deepEqual(results, [false]);
  });

  test('once OpenSSL has built its session tickets, nothing is sent', async () => {
    const { server, port, results } = await refusingServer('on the next turn');
    servers.push(server);
    assert.doesNotMatch(await clientOutcome(port, 'TLSv1.3'), /ALERT/);
    assert.deepEqual(results, [false]);
  });

  test('a connection with no descriptor (a JavaScript stream under TLS): nothing is sent', async () => {
    const { server, results, descriptors } = await refusingServer('at once');
    servers.push(server);
    // The TLS server takes a stream that is not a TCP socket: Node wraps it, with no descriptor.
    const tcp = createTcpServer((raw) => {
      const wrapped = new Duplex({
        read() {},
        write(chunk, _encoding, callback) {
          raw.write(chunk, callback);
        },
        final(callback) {
          raw.end(callback);
        },
      });
      raw.on('data', (d: Buffer) => wrapped.push(d));
      raw.on('end', () => wrapped.push(null));
      raw.on('error', () => wrapped.destroy());
      wrapped.on('close', () => raw.destroy());
      server.emit('connection', wrapped);
    });
    servers.push(tcp);
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const port = (tcp.address() as { port: number }).port;
    assert.doesNotMatch(await clientOutcome(port, 'TLSv1.3'), /ALERT/);
    assert.deepEqual(results, [false]);
    assert.deepEqual(descriptors, [-1], 'the premise: Node gives such a connection no descriptor');
  });
});
