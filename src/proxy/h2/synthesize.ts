/**
 * Answers the relay gives itself on a client's HTTP/2 connection (a refused CONNECT, an
 * unavailable apiserver): HEADERS and DATA frames whose header block touches no dynamic table,
 * because the client's decoder table belongs to the upstream's encoder.
 */
import { Buffer } from 'node:buffer';
import { recordRequest } from '../record.js';
import type { StatusResponse } from '../status.js';
import { Flag, FRAME_HEADER_LENGTH, FrameType, writeFrameHeader } from './frames.js';
import { encodeWithoutTable } from './hpack-encoder.js';

/** HEADERS (`:status`, content-type, content-length) then DATA with END_STREAM, one buffer. */
export function statusFrames(streamId: number, status: StatusResponse): Buffer {
  const body = Buffer.from(status.body, 'utf8');
  const block = Buffer.allocUnsafe(64);
  let pos = encodeWithoutTable(':status', String(status.code), block, 0);
  pos = encodeWithoutTable('content-type', 'application/json', block, pos);
  pos = encodeWithoutTable('content-length', String(body.length), block, pos);
  const out = Buffer.allocUnsafe(2 * FRAME_HEADER_LENGTH + pos + body.length);
  writeFrameHeader(out, 0, pos, FrameType.Headers, Flag.EndHeaders, streamId);
  block.copy(out, FRAME_HEADER_LENGTH, 0, pos);
  const data = FRAME_HEADER_LENGTH + pos;
  writeFrameHeader(out, data, body.length, FrameType.Data, Flag.EndStream, streamId);
  body.copy(out, data + FRAME_HEADER_LENGTH);
  return out;
}

/**
 * The relay's own answer on stream `streamId`, counted like a forwarded one (its duration from
 * `started`, unless that is -1).
 */
export function ownAnswer(
  streamId: number,
  method: string,
  status: StatusResponse,
  started: number,
): Buffer {
  recordRequest('h2', method, status.code, started);
  return statusFrames(streamId, status);
}
