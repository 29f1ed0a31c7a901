/**
 * --reject-mode=alert: a refused TLS 1.3 client gets a fatal alert naming why, as the first
 * record after the handshake, so every TLS client reports the reason before any request.
 *
 * The record (alert.ts) is sealed under the server's application traffic key as that key's
 * record number 0, and written to the socket's file descriptor from the 'secureConnection'
 * listener. Three facts make that record the next one on the wire, and the only one under that
 * key and nonce:
 * - Node emits 'secureConnection' from OpenSSL's handshake-done callback, which a TLS 1.3 server
 *   calls before it builds its NewSessionTickets (ssl/statem/statem_srvr.c,
 *   ossl_statem_server_pre_work: tls_finish_handshake before the first ticket), so OpenSSL
 *   has sealed nothing under that key yet. That is checked
 *   for each connection: the session has no id until the first ticket is built (sessionIdOf).
 * - Every byte the server wrote before is in the kernel: the client's Finished, which triggered
 *   the callback, could only be sent once it had received the server's whole flight.
 * - Nothing OpenSSL seals afterwards leaves the process: the tickets it builds next call the
 *   'newSession' listener, and Node holds back all of the connection's TLS output until that
 *   listener's callback is called (src/crypto/crypto_tls.cc, TLSWrap::EncOut), which it never
 *   is for a refused connection. Records sealed
 *   by OpenSSL with the same key and sequence number as the alert therefore never reach the
 *   network (a repeated AES-GCM or ChaCha20-Poly1305 nonce would expose the key's
 *   authenticator).
 * Then the connection lingers: our write side is shut down (a FIN; OpenSSL's close_notify is
 * held back with the rest), the client's bytes are read and dropped for a bounded time and
 * size, and the socket closes when the client closes or the bound is reached. Closing at once
 * could reset the connection while the client still writes its first request, and a client
 * whose write fails reports that failure ("write: broken pipe") instead of the alert.
 *
 * Writing the record through the TLSSocket's underlying net.Socket instead crashed Node 20;
 * the descriptor is written to directly. Whenever the alert cannot be sent exactly so (TLS 1.2,
 * no secret, a ticket already built, no descriptor, the kernel refusing the write), refuse()
 * returns false and the caller refuses the client at HTTP level.
 */
import { writeSync } from 'node:fs';
import type { Server, TLSSocket } from 'node:tls';
import { type AlertDescription, sealAlert, serverTrafficSecret, TLS13_SUITES } from './alert.js';
import { sessionIdOf } from './ssl-session.js';

/**
 * After the alert, the client's bytes are read for at most this long and this much: enough for
 * a client to read the alert and close (it needs one round trip), and for an HTTP/2 client to
 * send the 64 KiB of request body its initial flow-control window allows.
 */
const LINGER_MS = 5_000;
const LINGER_BYTES = 256 * 1024;

export class AlertRefusals {
  /** SERVER_TRAFFIC_SECRET_0 of each connection whose handshake has not been judged yet. */
  private readonly secrets = new WeakMap<TLSSocket, Buffer>();
  /** The connection just refused, whose tickets OpenSSL builds next, within the same read. */
  private refusing: TLSSocket | null = null;

  constructor(server: Server) {
    server.on('keylog', (line: Buffer, socket: TLSSocket) => {
      const secret = serverTrafficSecret(line);
      line.fill(0);
      if (secret !== null) this.secrets.set(socket, secret);
    });
    server.on('newSession', (id: Buffer, session: Buffer, done: () => void) => {
      session.fill(0);
      if (!this.isRefusing(id)) done();
    });
    server.on('tlsClientError', (_err: Error, socket: TLSSocket) => this.forget(socket));
  }

  /** The connection was judged, or its handshake failed: its secret is wiped. */
  forget(socket: TLSSocket): void {
    this.secrets.get(socket)?.fill(0);
    this.secrets.delete(socket);
  }

  /**
   * Sends `description` as a fatal alert and takes the connection over until it closes.
   * false: nothing was written and the connection is left as it was.
   */
  refuse(socket: TLSSocket, description: AlertDescription): boolean {
    const secret = this.secrets.get(socket);
    this.secrets.delete(socket);
    if (secret === undefined) return false;
    try {
      const suite = TLS13_SUITES[socket.getCipher()?.name ?? ''];
      const fd = descriptorOf(socket);
      if (socket.getProtocol() !== 'TLSv1.3' || suite === undefined || fd === null) return false;
      if (!noTicketBuilt(socket)) return false;
      const record = sealAlert(suite, secret, description);
      let written: number;
      try {
        written = writeSync(fd, record);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return false;
        socket.destroy();
        return true;
      }
      if (written === 0) return false;
      if (written !== record.length) {
        // Part of a record went out: nothing the client reads after it can make sense.
        socket.destroy();
        return true;
      }
      this.linger(socket);
      return true;
    } finally {
      secret.fill(0);
    }
  }

  private linger(socket: TLSSocket): void {
    this.refusing = socket;
    const close = () => socket.destroy();
    socket.on('error', close);
    socket.on('end', close);
    let read = 0;
    socket.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read > LINGER_BYTES) close();
    });
    const timer = setTimeout(close, LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    // Out of OpenSSL's callback, where Node would shut the TLS session down re-entrantly.
    setImmediate(() => {
      if (this.refusing === socket) this.refusing = null;
      if (!socket.destroyed) socket.end();
    });
  }

  /** Whether the ticket just built (its session id) belongs to the connection being refused. */
  private isRefusing(id: Buffer): boolean {
    const socket = this.refusing;
    if (socket === null || socket.destroyed) return false;
    const session = socket.getSession();
    if (session === undefined) return false;
    try {
      return sessionIdOf(session)?.equals(id) === true;
    } finally {
      session.fill(0);
    }
  }
}

/** True when OpenSSL has built no NewSessionTicket (so sealed no record) for this connection. */
function noTicketBuilt(socket: TLSSocket): boolean {
  const session = socket.getSession();
  if (session === undefined) return false;
  try {
    return sessionIdOf(session)?.length === 0;
  } finally {
    session.fill(0);
  }
}

/**
 * The connection's file descriptor. Node has no public API for it; `fd` of the socket's native
 * handle is the descriptor of the TCP connection under the TLS layer (TLSWrap::GetFD).
 */
function descriptorOf(socket: TLSSocket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : null;
}
