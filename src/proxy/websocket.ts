/**
 * The server→client side of a WebSocket tunnel (RFC 6455 §5.2), read by frame headers only so
 * that a cut session can end at a message boundary with a message of the proxy's own: for the
 * Kubernetes remote-command protocols, the Status on the error channel, as the apiserver ends
 * an exec or attach itself (apimachinery/pkg/util/remotecommand, client-go's
 * tools/remotecommand/v4.go and v1.go decoders), then a Close frame with code 1000, the only
 * code client-go reads as the end of the streams rather than an error.
 */
import { Buffer } from 'node:buffer';
import type { StatusResponse } from './status.js';

const OPCODE_CONTINUATION = 0x0;
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const OPCODE_CLOSE = 0x8;
const FIN = 0x80;
const MASK = 0x80;
/** The remote-command protocols' error channel. */
const ERROR_CHANNEL = 3;
/** Close, code 1000 (normal closure), no reason: client-go reads it as EOF on every stream. */
const CLOSE_NORMAL = Buffer.from([FIN | OPCODE_CLOSE, 2, 0x03, 0xe8]);

/** Where a server→client WebSocket byte stream is, frame by frame. */
export class FrameReader {
  /** The header of the frame being read, gathered across reads (2 to 14 bytes). */
  private readonly header = Buffer.alloc(14);
  private headerHave = 0;
  private headerNeed = 2;
  /** Payload bytes of the current frame still to come. */
  private payloadLeft = 0;
  /** A data message is open: its last frame (FIN) has not been read. */
  private inMessage = false;
  /** The next payload byte is the first of a data message: its channel. */
  private channelNext = false;
  /** The server has written on the error channel (its own final Status). */
  errorChannelUsed = false;
  /** The server has sent its Close frame. */
  closeSent = false;

  /** Between messages: the next byte starts a frame and no fragmented message is open. */
  get atBoundary(): boolean {
    return this.headerHave === 0 && this.payloadLeft === 0 && !this.inMessage;
  }

  /**
   * Reads `buf[pos…]`; returns its end, or with `stopAtBoundary` the first message boundary
   * at or after `pos`.
   */
  feed(buf: Buffer, pos: number, stopAtBoundary: boolean): number {
    const end = buf.length;
    while (pos < end) {
      if (stopAtBoundary && this.atBoundary) return pos;
      if (this.payloadLeft > 0) {
        if (this.channelNext) {
          this.channelNext = false;
          if (isErrorChannel(buf[pos] as number)) this.errorChannelUsed = true;
        }
        const n = Math.min(this.payloadLeft, end - pos);
        pos += n;
        this.payloadLeft -= n;
        continue;
      }
      this.header[this.headerHave++] = buf[pos++] as number;
      if (this.headerHave === 2) this.headerNeed = headerLength(this.header);
      if (this.headerHave === this.headerNeed) this.frameHeader();
    }
    return pos;
  }

  private frameHeader(): void {
    const header = this.header;
    const fin = ((header[0] as number) & FIN) !== 0;
    const opcode = (header[0] as number) & 0x0f;
    const length7 = (header[1] as number) & 0x7f;
    let length = length7;
    if (length7 === 126) length = header.readUInt16BE(2);
    // Beyond 2^53 the count is inexact, which no tunnel lives long enough to notice.
    else if (length7 === 127) length = header.readUInt32BE(2) * 2 ** 32 + header.readUInt32BE(6);
    this.headerHave = 0;
    this.headerNeed = 2;
    this.payloadLeft = length;
    if (opcode === OPCODE_TEXT || opcode === OPCODE_BINARY) {
      this.channelNext = length > 0;
      this.inMessage = !fin;
    } else if (opcode === OPCODE_CONTINUATION) {
      if (fin) this.inMessage = false;
    } else if (opcode === OPCODE_CLOSE) this.closeSent = true;
  }
}

/** 2 bytes, the extended length (0, 2 or 8), the masking key if any (4). */
function headerLength(header: Buffer): number {
  const length7 = (header[1] as number) & 0x7f;
  const extended = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  return 2 + extended + (((header[1] as number) & MASK) !== 0 ? 4 : 0);
}

/** Channel 3 as a binary protocol (byte 3) or a base64 one (the digit '3') writes it. */
function isErrorChannel(first: number): boolean {
  return first === ERROR_CHANNEL || first === 0x30 + ERROR_CHANNEL;
}

/**
 * The last frames of a cut session: the Status on the error channel in the form the
 * negotiated subprotocol gives it (v4 and v5 carry a metav1.Status; v1 to v3 a plain message;
 * the base64 variants a text message led by the channel digit), unless the server has already
 * written its own, then the Close. Other subprotocols (the SPDY stream of port-forward, a
 * watch) have no place for it: the Close alone.
 */
export function finalFrames(protocol: string, status: StatusResponse, reader: FrameReader): Buffer {
  if (reader.closeSent) return Buffer.alloc(0);
  const message = reader.errorChannelUsed ? null : errorChannelMessage(protocol, status);
  return message === null ? CLOSE_NORMAL : Buffer.concat([message, CLOSE_NORMAL]);
}

function errorChannelMessage(protocol: string, status: StatusResponse): Buffer | null {
  const payload = statusPayload(protocol, status);
  if (payload === null) return null;
  const base64 = protocol.includes('base64.');
  const data = base64
    ? Buffer.from(`3${Buffer.from(payload).toString('base64')}`, 'latin1')
    : Buffer.concat([Buffer.of(ERROR_CHANNEL), Buffer.from(payload)]);
  return Buffer.concat([frameHeader(base64 ? OPCODE_TEXT : OPCODE_BINARY, data.length), data]);
}

/** What the error channel carries under `protocol`, or null when it is not a channel protocol. */
function statusPayload(protocol: string, status: StatusResponse): string | null {
  switch (protocol.trim().toLowerCase()) {
    case 'v5.channel.k8s.io':
    case 'v4.channel.k8s.io':
    case 'v4.base64.channel.k8s.io':
      return status.body;
    case 'channel.k8s.io':
    case 'base64.channel.k8s.io':
    case 'v2.channel.k8s.io':
    case 'v3.channel.k8s.io':
      return status.message;
    default:
      return null;
  }
}

/** An unmasked (server) frame header with FIN set. */
function frameHeader(opcode: number, length: number): Buffer {
  if (length < 126) return Buffer.of(FIN | opcode, length);
  if (length < 65536) {
    const header = Buffer.of(FIN | opcode, 126, 0, 0);
    header.writeUInt16BE(length, 2);
    return header;
  }
  const header = Buffer.alloc(10);
  header[0] = FIN | opcode;
  header[1] = 127;
  header.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
  header.writeUInt32BE(length >>> 0, 6);
  return header;
}
