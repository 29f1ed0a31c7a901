/**
 * The one DER reader (and the small writer the fixtures and the demo use) of kube-crl-proxy.
 *
 * It works on offsets into one Buffer and never copies: a 1M-entry CRL is walked in place.
 * Everything it reads is untrusted until a signature over it verifies, so every length is
 * bounds-checked and every failure is a DerError naming the offset.
 */

export const Tag = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  enumerated: 0x0a,
  utf8String: 0x0c,
  printableString: 0x13,
  t61String: 0x14,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  universalString: 0x1c,
  bmpString: 0x1e,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Context-specific tag number `n`, constructed (as used by EXPLICIT tagging). */
export function contextTag(n: number, constructed = true): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

export class DerError extends Error {
  readonly code = 'ERR_DER';
  constructor(message: string, offset: number) {
    super(`malformed DER at byte ${offset}: ${message}`);
    this.name = 'DerError';
  }
}

/** One tag-length-value element: `start` is the tag byte, the contents are [contentStart, end). */
export interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

/** A Tlv that a walk rewrites in place (readTlvInto): no object per element read. */
export interface MutableTlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

export function scratchTlv(): MutableTlv {
  return { tag: 0, start: 0, contentStart: 0, end: 0 };
}

/** Reads the element at `offset`, which must end at or before `limit`. */
export function readTlv(buf: Uint8Array, offset: number, limit: number = buf.length): Tlv {
  return readTlvInto(buf, offset, limit, scratchTlv());
}

/**
 * readTlv into `into`, which is returned. For walks over a million elements (a CRL's entries),
 * where an object per element kept the worker's young generation collecting all through a
 * load (bench/README.md#figures-behind-design-choices-in-src), each collection waking V8's helper threads beside the event loop.
 */
export function readTlvInto(
  buf: Uint8Array,
  offset: number,
  limit: number,
  into: MutableTlv,
): MutableTlv {
  if (offset + 2 > limit) throw new DerError('truncated element header', offset);
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used here', offset);
  let pos = offset + 1;
  const first = buf[pos++] as number;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const octets = first & 0x7f;
    if (octets === 0) throw new DerError('indefinite length is not DER', offset);
    if (octets > 4) throw new DerError(`length of ${octets} octets is too large`, offset);
    if (pos + octets > limit) throw new DerError('truncated length', offset);
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (buf[pos++] as number);
  }
  const end = pos + length;
  if (end > limit) throw new DerError(`element of ${length} bytes overruns its container`, offset);
  into.tag = tag;
  into.start = offset;
  into.contentStart = pos;
  into.end = end;
  return into;
}

/** Reads the element at `offset` and checks its tag. */
export function expectTlv(
  buf: Uint8Array,
  offset: number,
  limit: number,
  tag: number,
  what: string,
  into: MutableTlv = scratchTlv(),
): Tlv {
  const tlv = readTlvInto(buf, offset, limit, into);
  if (tlv.tag !== tag) {
    throw new DerError(
      `expected ${what} (tag 0x${hex2(tag)}), found tag 0x${hex2(tlv.tag)}`,
      offset,
    );
  }
  return tlv;
}

/** The children of a constructed element, in order. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.contentStart; pos < parent.end; ) {
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

export function contents(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(tlv.contentStart, tlv.end);
}

export function whole(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(tlv.start, tlv.end);
}

const OID_CACHE = new Map<string, string>();

/**
 * An OBJECT IDENTIFIER that is not empty and whose last arc ends: what a reader that only
 * compares an OID's bytes still owes the input (readOid checks this before decoding).
 */
export function checkOidShape(buf: Uint8Array, tlv: Tlv): void {
  if (tlv.tag !== Tag.oid) throw new DerError('expected OBJECT IDENTIFIER', tlv.start);
  if (tlv.end === tlv.contentStart) throw new DerError('empty OBJECT IDENTIFIER', tlv.start);
  if ((buf[tlv.end - 1] as number) & 0x80) throw new DerError('unterminated OID arc', tlv.end - 1);
}

/** Dotted form of an OBJECT IDENTIFIER's contents. */
export function readOid(buf: Uint8Array, tlv: Tlv): string {
  checkOidShape(buf, tlv);
  const key = Buffer.from(
    buf.buffer,
    buf.byteOffset + tlv.contentStart,
    tlv.end - tlv.contentStart,
  ).toString('latin1');
  const cached = OID_CACHE.get(key);
  if (cached !== undefined) return cached;
  const arcs: number[] = [];
  let value = 0;
  for (let i = tlv.contentStart; i < tlv.end; i++) {
    const byte = buf[i] as number;
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER) throw new DerError('OID arc too large', i);
    if ((byte & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        arcs.push(first, value - first * 40);
      } else {
        arcs.push(value);
      }
      value = 0;
    }
  }
  const dotted = arcs.join('.');
  if (OID_CACHE.size < 1024) OID_CACHE.set(key, dotted);
  return dotted;
}

/** Milliseconds since the epoch of a UTCTime or GeneralizedTime (UTC, seconds precision). */
export function readTime(buf: Uint8Array, tlv: Tlv): number {
  const len = tlv.end - tlv.contentStart;
  let p = tlv.contentStart;
  let year: number;
  if (tlv.tag === Tag.utcTime) {
    if (len !== 13) throw new DerError('UTCTime must be YYMMDDHHMMSSZ', tlv.start);
    const yy = digits(buf, p, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    p += 2;
  } else if (tlv.tag === Tag.generalizedTime) {
    if (len !== 15) throw new DerError('GeneralizedTime must be YYYYMMDDHHMMSSZ', tlv.start);
    year = digits(buf, p, 4);
    p += 4;
  } else {
    throw new DerError('expected UTCTime or GeneralizedTime', tlv.start);
  }
  const month = digits(buf, p, 2);
  const day = digits(buf, p + 2, 2);
  const hour = digits(buf, p + 4, 2);
  const minute = digits(buf, p + 6, 2);
  const second = digits(buf, p + 8, 2);
  if (buf[p + 10] !== 0x5a) throw new DerError('time must end in Z', tlv.start);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    throw new DerError('time field out of range', tlv.start);
  }
  return utcMs(year, month, day, hour, minute, second);
}

/**
 * Date.UTC for these fields (month 1–12; a day past the month's end runs into the next month,
 * as with Date.UTC), in plain arithmetic: Date.UTC returns a boxed number, which cost the CRL
 * reader a heap object per entry (bench/README.md#figures-behind-design-choices-in-src). Days from the civil
 * date: H. Hinnant's algorithm, exact for the proleptic Gregorian calendar. Unlike Date.UTC,
 * years 0–99 are not taken as 1900–1999.
 */
export function utcMs(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * ((month + 9) % 12) + 2) / 5) + day - 1;
  const dayOfEra =
    yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  const days = era * 146097 + dayOfEra - 719468;
  return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000;
}

function digits(buf: Uint8Array, offset: number, count: number): number {
  let value = 0;
  for (let i = 0; i < count; i++) {
    const c = (buf[offset + i] as number) - 0x30;
    if (c < 0 || c > 9) throw new DerError('expected a digit in a time value', offset + i);
    value = value * 10 + c;
  }
  return value;
}

/**
 * The magnitude bytes of an INTEGER (leading zero octets removed), as a subarray.
 * Serial numbers are compared in this form everywhere.
 */
export function readUnsignedInteger(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(magnitudeStart(buf, tlv), tlv.end);
}

/**
 * Where the magnitude bytes of an INTEGER start (readUnsignedInteger without the subarray,
 * which the CRL reader would otherwise make twice per entry: 2M objects for a 1M-entry CRL).
 */
export function magnitudeStart(buf: Uint8Array, tlv: Tlv): number {
  if (tlv.tag !== Tag.integer) throw new DerError('expected INTEGER', tlv.start);
  if (tlv.end === tlv.contentStart) throw new DerError('empty INTEGER', tlv.start);
  let start = tlv.contentStart;
  while (start < tlv.end - 1 && buf[start] === 0) start++;
  return start;
}

/** A small non-negative INTEGER as a number (versions, CRL numbers up to 2^53). */
export function readSmallInteger(buf: Uint8Array, tlv: Tlv): number {
  const bytes = readUnsignedInteger(buf, tlv);
  if ((buf[tlv.contentStart] as number) & 0x80) throw new DerError('negative INTEGER', tlv.start);
  if (bytes.length > 7) throw new DerError('INTEGER too large', tlv.start);
  let value = 0;
  for (const b of bytes) value = value * 256 + b;
  return value;
}

/** The contents of a BIT STRING with no unused bits (signatures, keys). */
export function readBitStringBytes(buf: Uint8Array, tlv: Tlv): Uint8Array {
  if (tlv.tag !== Tag.bitString) throw new DerError('expected BIT STRING', tlv.start);
  if (tlv.end === tlv.contentStart) throw new DerError('empty BIT STRING', tlv.start);
  if (buf[tlv.contentStart] !== 0) throw new DerError('BIT STRING with unused bits', tlv.start);
  return buf.subarray(tlv.contentStart + 1, tlv.end);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

// ---- writer -------------------------------------------------------------------------------

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Encodes one element from its tag and already-encoded contents. */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

export function seq(...parts: Uint8Array[]): Buffer {
  return tlv(Tag.sequence, ...parts);
}

/** An INTEGER from unsigned big-endian magnitude bytes (a 0x00 is prepended when needed). */
export function integerFromBytes(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const needsPad = trimmed.length === 0 || ((trimmed[0] as number) & 0x80) !== 0;
  return tlv(Tag.integer, needsPad ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export function integer(value: number | bigint): Buffer {
  let hex = BigInt(value).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return integerFromBytes(Buffer.from(hex, 'hex'));
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const [a0, a1, ...rest] = arcs;
  if (a0 === undefined || a1 === undefined) throw new Error(`bad OID ${dotted}`);
  const out: number[] = [];
  for (const arc of [a0 * 40n + a1, ...rest]) {
    const septets: number[] = [];
    let n = arc;
    do {
      septets.unshift(Number(n & 0x7fn));
      n >>= 7n;
    } while (n > 0n);
    for (let i = 0; i < septets.length - 1; i++) septets[i] = (septets[i] as number) | 0x80;
    out.push(...septets);
  }
  return tlv(Tag.oid, Buffer.from(out));
}

/** UTCTime for years 1950–2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5). */
export function time(ms: number): Buffer {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const rest =
    pad(d.getUTCMonth() + 1) +
    pad(d.getUTCDate()) +
    pad(d.getUTCHours()) +
    pad(d.getUTCMinutes()) +
    pad(d.getUTCSeconds()) +
    'Z';
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) {
    return tlv(Tag.utcTime, Buffer.from(pad(year % 100) + rest, 'latin1'));
  }
  return tlv(Tag.generalizedTime, Buffer.from(pad(year, 4) + rest, 'latin1'));
}

export function octetString(bytes: Uint8Array): Buffer {
  return tlv(Tag.octetString, bytes);
}

export function bitString(bytes: Uint8Array): Buffer {
  return tlv(Tag.bitString, Buffer.from([0]), bytes);
}

export function boolean(value: boolean): Buffer {
  return tlv(Tag.boolean, Buffer.from([value ? 0xff : 0]));
}

export function enumerated(value: number): Buffer {
  return tlv(Tag.enumerated, Buffer.from([value]));
}
