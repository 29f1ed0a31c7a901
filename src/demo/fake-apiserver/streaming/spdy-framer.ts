/**
 * SPDY/3.1 framing: an incremental parser for what the peer sends and encoders for what the
 * fake sends. Header blocks stay compressed here; spdy-headers.ts owns the zlib state.
 *
 * Layout (draft-mbelshe-httpbis-spdy-00, as moby/spdystream reads and writes it):
 *   control: 1 bit C=1 | 15 bit version (3) | 16 bit type | 8 bit flags | 24 bit length
 *   data:    1 bit C=0 | 31 bit stream id   | 8 bit flags | 24 bit length
 */

import { SpdyProtocolError } from './errors.js';

const SPDY_VERSION = 3;
export const FLAG_FIN = 0x01;

const FRAME_HEADER_LENGTH = 8;
/** The length field is 24 bits. */
export const MAX_FRAME_PAYLOAD = 0xffffff;

const ControlType = {
  SynStream: 1,
  SynReply: 2,
  RstStream: 3,
  Settings: 4,
  Ping: 6,
  GoAway: 7,
  Headers: 8,
  WindowUpdate: 9,
} as const;

/** RST_STREAM status codes. */
export const RstStatus = {
  ProtocolError: 1,
  InvalidStream: 2,
  RefusedStream: 3,
  Cancel: 5,
  InternalError: 6,
  StreamInUse: 8,
  StreamAlreadyClosed: 9,
} as const;

/** GOAWAY status codes. */
export const GoAwayStatus = { Ok: 0, ProtocolError: 1, InternalError: 2 } as const;

export type SpdyFrame =
  | {
      readonly kind: 'data';
      readonly streamId: number;
      readonly flags: number;
      readonly payload: Buffer;
    }
  | {
      readonly kind: 'syn_stream';
      readonly streamId: number;
      readonly associatedStreamId: number;
      readonly priority: number;
      readonly flags: number;
      readonly headerBlock: Buffer;
    }
  | {
      readonly kind: 'syn_reply' | 'headers';
      readonly streamId: number;
      readonly flags: number;
      readonly headerBlock: Buffer;
    }
  | { readonly kind: 'rst_stream'; readonly streamId: number; readonly status: number }
  | { readonly kind: 'ping'; readonly id: number }
  | { readonly kind: 'goaway'; readonly lastGoodStreamId: number; readonly status: number }
  | { readonly kind: 'window_update'; readonly streamId: number; readonly delta: number }
  /** SETTINGS and unknown control types: read and ignored, as spdystream does. */
  | { readonly kind: 'ignored'; readonly type: number };

const STREAM_ID_MASK = 0x7fffffff;

/**
 * Turns a byte stream into frames. Input may be cut anywhere: over the WebSocket tunnel one
 * frame routinely arrives as several 4-byte messages, because spdystream writes each field
 * with its own Write call.
 */
export class SpdyFrameParser {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;

  /** Feeds bytes; returns every frame now complete, in order. */
  push(chunk: Buffer): SpdyFrame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: SpdyFrame[] = [];
    while (this.buffered >= FRAME_HEADER_LENGTH) {
      const header = this.peek(FRAME_HEADER_LENGTH);
      const length = header.readUIntBE(5, 3);
      if (this.buffered < FRAME_HEADER_LENGTH + length) break;
      frames.push(decodeFrame(this.take(FRAME_HEADER_LENGTH + length)));
    }
    return frames;
  }

  private peek(length: number): Buffer {
    this.coalesce(length);
    return (this.chunks[0] as Buffer).subarray(0, length);
  }

  private take(length: number): Buffer {
    this.coalesce(length);
    const first = this.chunks[0] as Buffer;
    const taken = first.subarray(0, length);
    if (first.length === length) this.chunks.shift();
    else this.chunks[0] = first.subarray(length);
    this.buffered -= length;
    return taken;
  }

  /** Makes the first chunk at least `length` bytes long by merging only what is needed. */
  private coalesce(length: number): void {
    if ((this.chunks[0] as Buffer).length >= length) return;
    const merged: Buffer[] = [];
    let size = 0;
    while (size < length) {
      const next = this.chunks.shift() as Buffer;
      merged.push(next);
      size += next.length;
    }
    this.chunks.unshift(Buffer.concat(merged, size));
  }
}

function decodeFrame(frame: Buffer): SpdyFrame {
  const flags = frame[4] as number;
  const payload = frame.subarray(FRAME_HEADER_LENGTH);
  if (((frame[0] as number) & 0x80) === 0) {
    return { kind: 'data', streamId: frame.readUInt32BE(0) & STREAM_ID_MASK, flags, payload };
  }
  const version = frame.readUInt16BE(0) & 0x7fff;
  if (version !== SPDY_VERSION) {
    throw new SpdyProtocolError(`unsupported SPDY version ${version}`);
  }
  const type = frame.readUInt16BE(2);
  const need = (minimum: number): void => {
    if (payload.length < minimum) {
      throw new SpdyProtocolError(`control frame type ${type} too short (${payload.length} bytes)`);
    }
  };
  switch (type) {
    case ControlType.SynStream:
      need(10);
      return {
        kind: 'syn_stream',
        streamId: payload.readUInt32BE(0) & STREAM_ID_MASK,
        associatedStreamId: payload.readUInt32BE(4) & STREAM_ID_MASK,
        priority: (payload[8] as number) >> 5,
        flags,
        headerBlock: payload.subarray(10),
      };
    case ControlType.SynReply:
    case ControlType.Headers:
      need(4);
      return {
        kind: type === ControlType.SynReply ? 'syn_reply' : 'headers',
        streamId: payload.readUInt32BE(0) & STREAM_ID_MASK,
        flags,
        headerBlock: payload.subarray(4),
      };
    case ControlType.RstStream:
      need(8);
      return {
        kind: 'rst_stream',
        streamId: payload.readUInt32BE(0) & STREAM_ID_MASK,
        status: payload.readUInt32BE(4),
      };
    case ControlType.Ping:
      need(4);
      return { kind: 'ping', id: payload.readUInt32BE(0) };
    case ControlType.GoAway:
      need(8);
      return {
        kind: 'goaway',
        lastGoodStreamId: payload.readUInt32BE(0) & STREAM_ID_MASK,
        status: payload.readUInt32BE(4),
      };
    case ControlType.WindowUpdate:
      need(8);
      return {
        kind: 'window_update',
        streamId: payload.readUInt32BE(0) & STREAM_ID_MASK,
        delta: payload.readUInt32BE(4) & STREAM_ID_MASK,
      };
    default:
      return { kind: 'ignored', type };
  }
}

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + payload.length);
  frame.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  frame.writeUInt16BE(type, 2);
  frame.writeUInt8(flags, 4);
  frame.writeUIntBE(payload.length, 5, 3);
  payload.copy(frame, FRAME_HEADER_LENGTH);
  return frame;
}

/** One DATA frame; callers split payloads above MAX_FRAME_PAYLOAD. */
export function encodeData(streamId: number, payload: Buffer, fin = false): Buffer {
  if (payload.length > MAX_FRAME_PAYLOAD) throw new RangeError('DATA payload over 16 MiB');
  const frame = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + payload.length);
  frame.writeUInt32BE(streamId & STREAM_ID_MASK, 0);
  frame.writeUInt8(fin ? FLAG_FIN : 0, 4);
  frame.writeUIntBE(payload.length, 5, 3);
  payload.copy(frame, FRAME_HEADER_LENGTH);
  return frame;
}

export function encodeSynStream(
  streamId: number,
  compressedHeaders: Buffer,
  flags = 0,
  priority = 0,
): Buffer {
  const payload = Buffer.alloc(10 + compressedHeaders.length);
  payload.writeUInt32BE(streamId & STREAM_ID_MASK, 0);
  payload.writeUInt8((priority & 0x7) << 5, 8);
  compressedHeaders.copy(payload, 10);
  return controlFrame(ControlType.SynStream, flags, payload);
}

export function encodeSynReply(streamId: number, compressedHeaders: Buffer, flags = 0): Buffer {
  const payload = Buffer.allocUnsafe(4 + compressedHeaders.length);
  payload.writeUInt32BE(streamId & STREAM_ID_MASK, 0);
  compressedHeaders.copy(payload, 4);
  return controlFrame(ControlType.SynReply, flags, payload);
}

export function encodeRstStream(streamId: number, status: number): Buffer {
  const payload = Buffer.allocUnsafe(8);
  payload.writeUInt32BE(streamId & STREAM_ID_MASK, 0);
  payload.writeUInt32BE(status, 4);
  return controlFrame(ControlType.RstStream, 0, payload);
}

export function encodePing(id: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(id >>> 0, 0);
  return controlFrame(ControlType.Ping, 0, payload);
}

export function encodeGoAway(lastGoodStreamId: number, status: number): Buffer {
  const payload = Buffer.allocUnsafe(8);
  payload.writeUInt32BE(lastGoodStreamId & STREAM_ID_MASK, 0);
  payload.writeUInt32BE(status, 4);
  return controlFrame(ControlType.GoAway, 0, payload);
}
