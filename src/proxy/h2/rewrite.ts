/**
 * Request header blocks on their way upstream: the client's decoded and checked fields,
 * sanitised (identity and hop-by-hop fields out, the certificate's identity in), encoded again
 * with the relay's own HPACK context for the upstream, and framed.
 */
import { Buffer } from 'node:buffer';
import {
  type ConnectionHeaders,
  type HeaderList,
  type IdentityHeaderRules,
  sanitizeRequestHeaders,
} from '../headers.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  headerFrames,
  writeFrameHeader,
} from './frames.js';
import { FieldFlag, type FieldList } from './hpack.js';
import { HpackEncoder } from './hpack-encoder.js';

/** Room for the table size updates a block may start with. */
const SIZE_UPDATES = 12;

/** Where the requests come from: what it adds to each (a ClientConnection, made at its first). */
export interface RequestOrigin {
  ownHeaders(rules: IdentityHeaderRules): ConnectionHeaders;
}

export class RequestRewriter {
  private readonly encoder = new HpackEncoder();

  constructor(
    private readonly origin: RequestOrigin,
    private readonly rules: IdentityHeaderRules,
  ) {}

  /** The upstream's SETTINGS_HEADER_TABLE_SIZE is in force. */
  setTableLimit(limit: number): void {
    this.encoder.setLimit(limit);
  }

  /**
   * The HEADERS (and CONTINUATION) frames of a request head for upstream: `fields` without
   * the dropped ones, sanitised, with the connection's identity appended.
   */
  head(fields: FieldList, streamId: number, endStream: boolean): Buffer {
    const regular: HeaderList = [];
    let neverIndexed: Set<string> | null = null;
    let pseudoBound = 0;
    for (let i = 0; i < fields.length; i++) {
      if (fields.has(i, FieldFlag.Dropped)) continue;
      const name = fields.name(i);
      const value = fields.value(i);
      if (name.charCodeAt(0) === 0x3a) {
        pseudoBound += HpackEncoder.bound(name, value);
        continue;
      }
      regular.push([name, value]);
      if (fields.has(i, FieldFlag.NeverIndexed)) {
        neverIndexed ??= new Set();
        neverIndexed.add(name);
      }
    }
    const sanitized = this.origin.ownHeaders(this.rules).fields(regular, true);
    const out = Buffer.allocUnsafe(
      FRAME_HEADER_LENGTH + SIZE_UPDATES + pseudoBound + encodedBound(sanitized),
    );
    const encoder = this.encoder;
    let pos = encoder.beginBlock(out, FRAME_HEADER_LENGTH);
    for (let i = 0; i < fields.length; i++) {
      const name = fields.name(i);
      if (fields.has(i, FieldFlag.Dropped) || name.charCodeAt(0) !== 0x3a) continue;
      const never = fields.has(i, FieldFlag.NeverIndexed);
      pos = encoder.encodeRequestField(name, fields.value(i), never, out, pos);
    }
    pos = this.encodeRegular(sanitized, neverIndexed, out, pos);
    return framed(out, pos, streamId, endStream);
  }

  /** The HEADERS frame of request trailers for upstream: identity and hop-by-hop fields out. */
  trailers(fields: FieldList, streamId: number): Buffer {
    const pairs: HeaderList = [];
    let neverIndexed: Set<string> | null = null;
    for (let i = 0; i < fields.length; i++) {
      if (fields.has(i, FieldFlag.Dropped)) continue;
      const name = fields.name(i);
      pairs.push([name, fields.value(i)]);
      if (fields.has(i, FieldFlag.NeverIndexed)) {
        neverIndexed ??= new Set();
        neverIndexed.add(name);
      }
    }
    const sanitized = sanitizeRequestHeaders(pairs, null, this.rules).filter(
      ([name]) => name.toLowerCase() !== 'x-forwarded-for',
    );
    const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + SIZE_UPDATES + encodedBound(sanitized));
    let pos = this.encoder.beginBlock(out, FRAME_HEADER_LENGTH);
    pos = this.encodeRegular(sanitized, neverIndexed, out, pos);
    return framed(out, pos, streamId, true);
  }

  private encodeRegular(
    fields: HeaderList,
    neverIndexed: Set<string> | null,
    out: Buffer,
    pos: number,
  ): number {
    const encoder = this.encoder;
    for (const [rawName, value] of fields) {
      const name = rawName.toLowerCase();
      const never = neverIndexed?.has(name) === true;
      pos = encoder.encodeRequestField(name, value, never, out, pos);
    }
    return pos;
  }
}

function encodedBound(fields: HeaderList): number {
  let bound = 0;
  for (const [name, value] of fields) bound += HpackEncoder.bound(name, value);
  return bound;
}

/**
 * The header block encoded at `out[9, end)` as frames: one HEADERS frame written in place, or
 * HEADERS and CONTINUATION frames at the size every peer accepts.
 */
function framed(out: Buffer, end: number, streamId: number, endStream: boolean): Buffer {
  const length = end - FRAME_HEADER_LENGTH;
  if (length <= DEFAULT_MAX_FRAME_SIZE) {
    const flags = Flag.EndHeaders | (endStream ? Flag.EndStream : 0);
    writeFrameHeader(out, 0, length, FrameType.Headers, flags, streamId);
    return out.subarray(0, end);
  }
  return headerFrames(out, FRAME_HEADER_LENGTH, end, streamId, endStream, DEFAULT_MAX_FRAME_SIZE);
}
