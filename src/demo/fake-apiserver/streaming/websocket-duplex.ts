/**
 * A server-side `ws` WebSocket as a Node Duplex, with the two behaviours kubectl depends on
 * that `ws`'s own createWebSocketStream lacks:
 *  - end() sends a Close frame with code 1000: client-go treats only 1000 as EOF; the 1005
 *    ("no status") that a bare ws.close() sends makes kubectl fail with "next reader: ...";
 *  - every write is one binary message (kubectl rejects text messages).
 *
 * `messageMode` keeps message boundaries on the readable side (each chunk is one message,
 * for the v5 channel protocol); without it the messages are a byte stream (the SPDY tunnel
 * of port-forward, where message boundaries mean nothing).
 *
 * Backpressure: a write completes while `ws`'s buffered amount (its queue plus the socket's)
 * stays under SEND_HIGH_WATER_MARK, otherwise when `ws` has flushed it; a full readable side
 * pauses the socket.
 */
import { Duplex } from 'node:stream';
import { type RawData, WebSocket } from 'ws';

const SEND_HIGH_WATER_MARK = 256 * 1024;
const CLOSE_NORMAL = 1000;

export interface WebSocketDuplexOptions {
  readonly messageMode: boolean;
}

export class WebSocketDuplex extends Duplex {
  /** Close code the peer sent (or 1006 when the TCP connection just dropped). */
  peerCloseCode: number | null = null;

  constructor(
    private readonly ws: WebSocket,
    options: WebSocketDuplexOptions,
  ) {
    super({
      readableObjectMode: options.messageMode,
      readableHighWaterMark: options.messageMode ? 64 : 64 * 1024,
      writableHighWaterMark: 64 * 1024,
    });
    this.on('error', () => undefined);
    ws.on('message', (data: RawData) => {
      if (!this.push(toBuffer(data))) ws.pause();
    });
    ws.on('close', (code: number) => {
      this.peerCloseCode = code;
      this.push(null);
    });
    ws.on('error', (error: Error) => this.destroy(error));
  }

  /** Hard stop (the fake is shutting down): no close handshake. */
  terminate(): void {
    this.ws.terminate();
    this.destroy();
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error) => void) {
    if (this.ws.readyState !== WebSocket.OPEN) {
      callback(new Error('the WebSocket is closed'));
      return;
    }
    let called = false;
    const done = (error?: Error): void => {
      if (called) return;
      called = true;
      callback(error);
    };
    this.ws.send(chunk, { binary: true }, (error?: Error) => done(error));
    if (this.ws.bufferedAmount <= SEND_HIGH_WATER_MARK) done();
  }

  override _final(callback: (error?: Error) => void): void {
    // The peer answers with its own Close and closes TCP after us: no RST truncates output.
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(CLOSE_NORMAL);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // A close handshake under way finishes on its own (ws has a 30 s timer); anything else
    // is an abort.
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    }
    callback(error);
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
