/**
 * HTTP/2 framing (RFC 9113 section 4 and 6): frame types, flags, error codes, settings, and the
 * few frames the relay writes itself.
 */
import { Buffer } from 'node:buffer';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_LENGTH = 9;
/** SETTINGS_MAX_FRAME_SIZE's initial value, which every peer accepts. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const DEFAULT_WINDOW_SIZE = 65_535;
export const MAX_WINDOW_SIZE = 0x7fff_ffff;

export const FrameType = {
  Data: 0x0,
  Headers: 0x1,
  Priority: 0x2,
  RstStream: 0x3,
  Settings: 0x4,
  PushPromise: 0x5,
  Ping: 0x6,
  Goaway: 0x7,
  WindowUpdate: 0x8,
  Continuation: 0x9,
} as const;

export const Flag = {
  EndStream: 0x1,
  Ack: 0x1,
  EndHeaders: 0x4,
  Padded: 0x8,
  Priority: 0x20,
} as const;

export const ErrorCode = {
  NoError: 0x0,
  ProtocolError: 0x1,
  InternalError: 0x2,
  FlowControlError: 0x3,
  SettingsTimeout: 0x4,
  StreamClosed: 0x5,
  FrameSizeError: 0x6,
  RefusedStream: 0x7,
  Cancel: 0x8,
  CompressionError: 0x9,
  ConnectError: 0xa,
  EnhanceYourCalm: 0xb,
} as const;

export const Setting = {
  HeaderTableSize: 0x1,
  EnablePush: 0x2,
  MaxConcurrentStreams: 0x3,
  InitialWindowSize: 0x4,
  MaxFrameSize: 0x5,
  MaxHeaderListSize: 0x6,
  EnableConnectProtocol: 0x8,
} as const;

/** The settings the relay follows; `undefined` when a SETTINGS frame leaves one unchanged. */
export interface SettingsChange {
  headerTableSize?: number;
  initialWindowSize?: number;
  maxFrameSize?: number;
}

/** Why a SETTINGS payload is refused, or null. RFC 9113 6.5.2. */
export function settingsError(payload: Buffer): number | null {
  for (let i = 0; i + 6 <= payload.length; i += 6) {
    const id = payload.readUInt16BE(i);
    const value = payload.readUInt32BE(i + 2);
    if (id === Setting.EnablePush && value > 1) return ErrorCode.ProtocolError;
    if (id === Setting.InitialWindowSize && value > MAX_WINDOW_SIZE)
      return ErrorCode.FlowControlError;
    if (id === Setting.MaxFrameSize && (value < DEFAULT_MAX_FRAME_SIZE || value > 0xff_ffff))
      return ErrorCode.ProtocolError;
    if (id === Setting.EnableConnectProtocol && value > 1) return ErrorCode.ProtocolError;
  }
  return null;
}

/** The values of a SETTINGS payload that the relay tracks (the last one of each wins). */
export function settingsChange(payload: Buffer): SettingsChange {
  const change: SettingsChange = {};
  for (let i = 0; i + 6 <= payload.length; i += 6) {
    const id = payload.readUInt16BE(i);
    const value = payload.readUInt32BE(i + 2);
    if (id === Setting.HeaderTableSize) change.headerTableSize = value;
    else if (id === Setting.InitialWindowSize) change.initialWindowSize = value;
    else if (id === Setting.MaxFrameSize) change.maxFrameSize = value;
  }
  return change;
}

export function writeFrameHeader(
  out: Uint8Array,
  pos: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  out[pos] = length >>> 16;
  out[pos + 1] = (length >>> 8) & 0xff;
  out[pos + 2] = length & 0xff;
  out[pos + 3] = type;
  out[pos + 4] = flags;
  out[pos + 5] = (streamId >>> 24) & 0x7f;
  out[pos + 6] = (streamId >>> 16) & 0xff;
  out[pos + 7] = (streamId >>> 8) & 0xff;
  out[pos + 8] = streamId & 0xff;
}

function frameWith32(type: number, flags: number, streamId: number, value: number): Buffer {
  const out = Buffer.allocUnsafe(13);
  writeFrameHeader(out, 0, 4, type, flags, streamId);
  out.writeUInt32BE(value >>> 0, 9);
  return out;
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  return frameWith32(FrameType.RstStream, 0, streamId, code);
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  return frameWith32(FrameType.WindowUpdate, 0, streamId, increment);
}

/** GOAWAY; `debug` is its additional debug data (RFC 9113 §6.8), which Go's client prints. */
export function goawayFrame(lastStreamId: number, code: number, debug?: Uint8Array): Buffer {
  const length = 8 + (debug?.length ?? 0);
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + length);
  writeFrameHeader(out, 0, length, FrameType.Goaway, 0, 0);
  out.writeUInt32BE(lastStreamId & 0x7fff_ffff, 9);
  out.writeUInt32BE(code, 13);
  if (debug !== undefined) out.set(debug, 17);
  return out;
}

/**
 * `payload` as DATA frames of at most `maxFrameSize` octets on `streamId`, END_STREAM on the
 * last when `endStream`, contiguous in one buffer.
 */
export function dataFrames(
  payload: Uint8Array,
  streamId: number,
  endStream: boolean,
  maxFrameSize: number,
): Buffer {
  const frames = Math.max(1, Math.ceil(payload.length / maxFrameSize));
  const out = Buffer.allocUnsafe(payload.length + frames * FRAME_HEADER_LENGTH);
  let pos = 0;
  for (let i = 0, from = 0; i < frames; i++) {
    const chunk = Math.min(maxFrameSize, payload.length - from);
    const flags = i === frames - 1 && endStream ? Flag.EndStream : 0;
    writeFrameHeader(out, pos, chunk, FrameType.Data, flags, streamId);
    pos += FRAME_HEADER_LENGTH;
    out.set(payload.subarray(from, from + chunk), pos);
    pos += chunk;
    from += chunk;
  }
  return out;
}

export function pingFrame(payload: Buffer, ack: boolean): Buffer {
  const out = Buffer.allocUnsafe(17);
  writeFrameHeader(out, 0, 8, FrameType.Ping, ack ? Flag.Ack : 0, 0);
  payload.copy(out, 9, 0, 8);
  return out;
}

export function settingsFrame(entries: ReadonlyArray<readonly [number, number]>): Buffer {
  const out = Buffer.allocUnsafe(9 + entries.length * 6);
  writeFrameHeader(out, 0, entries.length * 6, FrameType.Settings, 0, 0);
  entries.forEach(([id, value], i) => {
    out.writeUInt16BE(id, 9 + i * 6);
    out.writeUInt32BE(value, 11 + i * 6);
  });
  return out;
}

export const SETTINGS_ACK = (() => {
  const out = Buffer.alloc(9);
  writeFrameHeader(out, 0, 0, FrameType.Settings, Flag.Ack, 0);
  return out;
})();

/** An empty DATA frame with END_STREAM. */
export function endStreamFrame(streamId: number): Buffer {
  const out = Buffer.allocUnsafe(9);
  writeFrameHeader(out, 0, 0, FrameType.Data, Flag.EndStream, streamId);
  return out;
}

/**
 * Frames a header block as HEADERS plus as many CONTINUATION frames as `maxFrameSize` needs,
 * contiguous in one buffer. `block` sits at `blockStart` of a buffer with room for the frame
 * headers before it; the result is a new buffer.
 */
export function headerFrames(
  block: Uint8Array,
  blockStart: number,
  blockEnd: number,
  streamId: number,
  endStream: boolean,
  maxFrameSize: number,
): Buffer {
  const length = blockEnd - blockStart;
  const frames = Math.max(1, Math.ceil(length / maxFrameSize));
  const out = Buffer.allocUnsafe(length + frames * FRAME_HEADER_LENGTH);
  let pos = 0;
  for (let i = 0, from = blockStart; i < frames; i++) {
    const chunk = Math.min(maxFrameSize, blockEnd - from);
    const last = i === frames - 1;
    const type = i === 0 ? FrameType.Headers : FrameType.Continuation;
    const flags = (last ? Flag.EndHeaders : 0) | (i === 0 && endStream ? Flag.EndStream : 0);
    writeFrameHeader(out, pos, chunk, type, flags, streamId);
    pos += FRAME_HEADER_LENGTH;
    out.set(block.subarray(from, from + chunk), pos);
    pos += chunk;
    from += chunk;
  }
  return out;
}
