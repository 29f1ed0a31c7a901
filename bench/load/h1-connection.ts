/**
 * A minimal HTTP/1.1 keep-alive client connection for load: one request in flight (as
 * kubectl and client-go do on HTTP/1.1), a pre-built request, responses framed by
 * Content-Length or chunked encoding, nothing else parsed. It speaks HTTP/1.0 with
 * `Connection: keep-alive` as ab -k does when asked: the connection then persists only while
 * responses say keep-alive.
 */
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { openTls } from './tls-client.js';

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');

export type H1Version = '1.1' | '1.0';

export function getRequest(path: string, host: string, version: H1Version = '1.1'): Buffer {
  const request =
    version === '1.1'
      ? `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: kubectl/v1.32.4 (linux/amd64) kubernetes/bench\r\nAccept: application/json, */*\r\n\r\n`
      : `GET ${path} HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: ${host}\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n`;
  return Buffer.from(request, 'latin1');
}

export interface H1Handlers {
  onReady(connection: H1Connection): void;
  /** A whole response arrived; the connection is free for the next request. */
  onResponse(connection: H1Connection, status: number): void;
  onClose(connection: H1Connection, error: Error | null, inFlight: boolean): void;
}

type BodyState =
  | { kind: 'head' }
  | { kind: 'length'; remaining: number }
  | { kind: 'chunked' }
  | { kind: 'until-close' };

export class H1Connection {
  readonly socket: TLSSocket;
  inFlight = false;
  private pending: Buffer | null = null;
  private state: BodyState = { kind: 'head' };
  private status = 0;
  private closeAfter = false;
  private closeError: Error | null = null;

  constructor(
    options: ConnectionOptions,
    private readonly handlers: H1Handlers,
    private readonly version: H1Version = '1.1',
  ) {
    this.socket = openTls(options);
    this.socket.once('secureConnect', () => handlers.onReady(this));
    this.socket.on('data', (chunk: Buffer) => this.onChunk(chunk));
    this.socket.on('error', (err) => {
      this.closeError ??= err;
    });
    this.socket.once('close', () => {
      if (this.inFlight && this.state.kind === 'until-close') {
        this.inFlight = false;
        handlers.onResponse(this, this.status);
      }
      handlers.onClose(this, this.closeError, this.inFlight);
    });
  }

  send(request: Buffer): void {
    this.inFlight = true;
    this.socket.write(request);
  }

  close(): void {
    this.socket.destroy();
  }

  private onChunk(chunk: Buffer): void {
    let buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    for (;;) {
      const used = this.advance(buf);
      if (used < 0) {
        this.pending = buf.length > 0 ? Buffer.from(buf) : null;
        return;
      }
      buf = buf.subarray(used);
      if (buf.length === 0 && this.state.kind === 'head') return;
    }
  }

  /** Consumes what it can of `buf`; -1 when it needs more bytes. */
  private advance(buf: Buffer): number {
    switch (this.state.kind) {
      case 'head': {
        const end = buf.indexOf(HEAD_END);
        if (end < 0) return -1;
        const head = buf.toString('latin1', 0, end);
        this.status = Number(head.slice(9, 12));
        this.closeAfter =
          /\r\nconnection:\s*close/i.test(head) ||
          (this.version === '1.0' && !/\r\nconnection:[^\r]*keep-alive/i.test(head));
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (length !== null) this.state = { kind: 'length', remaining: Number(length[1]) };
        else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) this.state = { kind: 'chunked' };
        else if (this.status === 204 || this.status === 304)
          this.state = { kind: 'length', remaining: 0 };
        else this.state = { kind: 'until-close' };
        return end + 4;
      }
      case 'length': {
        const take = Math.min(this.state.remaining, buf.length);
        this.state.remaining -= take;
        if (this.state.remaining > 0) return take === 0 ? -1 : take;
        this.complete();
        return take;
      }
      case 'chunked': {
        const lineEnd = buf.indexOf(CRLF);
        if (lineEnd < 0) return -1;
        const size = Number.parseInt(buf.toString('latin1', 0, lineEnd), 16);
        if (size === 0) {
          // Last chunk; no trailers expected from these servers.
          if (buf.length < lineEnd + 4) return -1;
          this.complete();
          return lineEnd + 4;
        }
        if (buf.length < lineEnd + 2 + size + 2) return -1;
        return lineEnd + 2 + size + 2;
      }
      case 'until-close':
        return buf.length === 0 ? -1 : buf.length;
    }
  }

  private complete(): void {
    this.state = { kind: 'head' };
    this.inFlight = false;
    // Ended first, so that no next request is sent on a connection the server closes.
    if (this.closeAfter) this.socket.end();
    this.handlers.onResponse(this, this.status);
  }
}
