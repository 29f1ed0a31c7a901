/**
 * Open client connections a test expects the proxy to cut: an HTTP/1.1 keep-alive connection
 * and an HTTP/2 session of one certificate, each past one answered request.
 */
import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { RawTlsClient } from '../fake-apiserver/testkit.js';

/** Opens both connections (each gets a 200 for /api); resolves with promises of their close. */
export async function openH1AndH2(
  url: string,
  ca: string,
  cert: IssuedCert,
): Promise<Promise<void>[]> {
  const h1 = await RawTlsClient.connect(url, ca, cert);
  h1.socket.write('GET /api HTTP/1.1\r\nHost: x\r\n\r\n');
  await h1.waitFor((text) => text.startsWith('HTTP/1.1 200'));
  const h2 = await new Promise<ClientHttp2Session>((resolve, reject) => {
    const session = h2connect(url, { ca, cert: cert.certPem, key: cert.keyPem });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
  h2.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    const stream = h2.request({ ':path': '/api' });
    stream.on('response', (headers) =>
      headers[':status'] === 200 ? resolve() : reject(new Error(`h2 ${headers[':status']}`)),
    );
    stream.on('error', reject);
    stream.resume();
  });
  return [h1.closed, new Promise<void>((resolve) => h2.once('close', () => resolve()))];
}

/** Resolves with the ms from `since` once every connection closed; fails after `timeoutMs`. */
export async function allClosed(
  closed: readonly Promise<void>[],
  since: number,
  what: string,
  timeoutMs = 5000,
): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(closed),
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what}: connections still open after ${timeoutMs} ms`)),
        timeoutMs,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  return Date.now() - since;
}
