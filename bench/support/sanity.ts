/**
 * Before anything is measured: one request through each peer over HTTP/1.1 and HTTP/2 with
 * Node's own clients, checking the status and that the upstream saw the identity the peer is
 * supposed to inject (so a misconfigured peer cannot produce good-looking numbers).
 */
import { readFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { request } from 'node:https';
import type { Peer } from '../peers/types.js';
import type { BenchPki } from './pki.js';
import { LOOPBACK } from './ports.js';

interface Answer {
  readonly status: number;
  readonly body: string;
}

function tls(pki: BenchPki, peer: Peer) {
  return {
    cert: readFileSync(peer.client.certFile),
    key: readFileSync(peer.client.keyFile),
    ca: readFileSync(pki.servingCaFile),
  };
}

export function getH1(
  pki: BenchPki,
  peer: Peer,
  path: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: LOOPBACK,
        port: peer.port,
        path,
        agent: false,
        headers,
        ...tls(pki, peer),
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on ${peer.name}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

export function getH2(pki: BenchPki, peer: Peer, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = h2connect(`https://${LOOPBACK}:${peer.port}`, tls(pki, peer));
    session.on('error', reject);
    const stream = session.request({ ':path': path });
    let status = 0;
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      status = Number(h[':status']);
    });
    stream.on('data', (d: string) => {
      body += d;
    });
    stream.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    stream.on('error', reject);
  });
}

/**
 * Throws unless both protocols answer 200 and, through a proxy (`expectedUser` not null),
 * the upstream saw the expected user.
 */
export async function checkPeer(
  pki: BenchPki,
  peer: Peer,
  whoamiPath: string,
  expectedUser: string | null,
): Promise<void> {
  // A spoofed identity header must not survive any proxy.
  const h1 = await getH1(pki, peer, whoamiPath, { 'X-Remote-User': 'spoofed' });
  const h2 = await getH2(pki, peer, whoamiPath);
  for (const [proto, answer] of [
    ['HTTP/1.1', h1],
    ['HTTP/2', h2],
  ] as const) {
    if (answer.status !== 200)
      throw new Error(`${peer.name} ${proto}: status ${answer.status}: ${answer.body}`);
    const seen = (JSON.parse(answer.body) as { user: string }).user;
    if (expectedUser !== null && seen !== expectedUser)
      throw new Error(
        `${peer.name} ${proto}: upstream saw user '${seen}', expected '${expectedUser}'`,
      );
  }
}
