/**
 * The one PEM/DER reader: every certificate, key and CRL file goes through `readBlocks`.
 */
import { DerError, readTlv, Tag } from './der.js';

export class PemError extends Error {
  readonly code = 'ERR_PEM';
  constructor(message: string) {
    super(message);
    this.name = 'PemError';
  }
}

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

const BEGIN = Buffer.from('-----BEGIN ', 'latin1');
const END = Buffer.from('-----END ', 'latin1');
const DASHES = Buffer.from('-----', 'latin1');

/** Byte classes of a PEM body: 0-63 a base64 digit, else one of these. */
const OTHER = -1;
const SPACE = -2;
const PAD = -3;
const BASE64 = (() => {
  const table = new Int8Array(256).fill(OTHER);
  const digits = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < digits.length; i++) table[digits.charCodeAt(i)] = i;
  for (const c of ' \t\n\v\f\r') table[c.charCodeAt(0)] = SPACE;
  table['='.charCodeAt(0)] = PAD;
  return table;
})();

function looksLikePem(bytes: Buffer): boolean {
  return bytes.includes(BEGIN);
}

/**
 * All blocks in a file, PEM (any number of blocks, text between them ignored as openssl
 * does) or DER (one or more concatenated top-level SEQUENCEs). Blocks whose label is not in
 * `labels` are skipped; an empty result is left to the caller to judge.
 */
export function readBlocks(bytes: Buffer, labels: readonly string[]): PemBlock[] {
  if (looksLikePem(bytes)) return readPemBlocks(bytes, labels);
  if (bytes.length > 0 && bytes[0] === Tag.sequence)
    return readDerBlocks(bytes, labels[0] ?? 'DER');
  return [];
}

/**
 * `-----BEGIN L-----` body `-----END L-----`, L of [A-Z0-9 ]+, found and decoded on the
 * bytes themselves: going through a string of a big CRL's PEM (then a second one without
 * the line breaks) cost the trust worker time and two heap objects the size of the file per
 * load, whose collection took CPU from the event loop's core (bench/README.md#figures-behind-design-choices-in-src).
 */
function readPemBlocks(bytes: Buffer, labels: readonly string[]): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (let pos = bytes.indexOf(BEGIN); pos >= 0; pos = bytes.indexOf(BEGIN, pos)) {
    const begin = labelAt(bytes, pos + BEGIN.length);
    if (begin === null) {
      pos += 1; // not a block start: text between blocks
      continue;
    }
    const bodyStart = pos + BEGIN.length + begin.length + DASHES.length;
    let end: string | null = null;
    let bodyEnd = bytes.indexOf(END, bodyStart);
    for (; bodyEnd >= 0; bodyEnd = bytes.indexOf(END, bodyEnd + 1)) {
      end = labelAt(bytes, bodyEnd + END.length);
      if (end !== null) break;
    }
    if (end === null) break; // no END marker after this BEGIN, nor after any later one
    if (begin !== end) throw new PemError(`PEM block BEGIN ${begin} ends with END ${end}`);
    pos = bodyEnd + END.length + end.length + DASHES.length;
    if (!labels.includes(begin)) continue;
    const der = decodeBody(bytes, bodyStart, bodyEnd, `PEM block ${begin}`);
    checkSingleElement(der, `PEM block ${begin}`);
    blocks.push({ label: begin, der });
  }
  return blocks;
}

/** The label of a marker ([A-Z0-9 ]+ then five dashes) starting at `at`, or null. */
function labelAt(bytes: Buffer, at: number): string | null {
  let i = at;
  for (; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x20)) break;
  }
  if (i === at || bytes.compare(DASHES, 0, DASHES.length, i, i + DASHES.length) !== 0) return null;
  return bytes.toString('latin1', at, i);
}

/**
 * Base64 between the markers: line breaks and other ASCII white space anywhere, padding
 * only at the end and only to complete the last group (or none at all); anything else,
 * headers included, is refused.
 */
function decodeBody(bytes: Buffer, start: number, end: number, what: string): Buffer {
  const out = Buffer.allocUnsafeSlow(Math.ceil(((end - start) * 3) / 4));
  let n = 0;
  let group = 0;
  let digits = 0;
  let pads = 0;
  for (let i = start; i < end; i++) {
    // A whole group of four digits at once (what a PEM line is made of) is faster than one
    // byte per turn (bench/README.md#figures-behind-design-choices-in-src). Anything else takes the byte-wise path below.
    if (digits === 0 && pads === 0 && i + 4 <= end) {
      const a = BASE64[bytes[i] as number] as number;
      const b = BASE64[bytes[i + 1] as number] as number;
      const c = BASE64[bytes[i + 2] as number] as number;
      const d = BASE64[bytes[i + 3] as number] as number;
      if ((a | b | c | d) >= 0) {
        const bits = (a << 18) | (b << 12) | (c << 6) | d;
        out[n] = bits >>> 16;
        out[n + 1] = (bits >>> 8) & 0xff;
        out[n + 2] = bits & 0xff;
        n += 3;
        i += 3;
        continue;
      }
    }
    const v = BASE64[bytes[i] as number] as number;
    if (v >= 0) {
      if (pads > 0) throw new PemError(`${what} has base64 after its padding`);
      group = (group << 6) | v;
      if (++digits === 4) {
        out[n++] = group >>> 16;
        out[n++] = (group >>> 8) & 0xff;
        out[n++] = group & 0xff;
        group = 0;
        digits = 0;
      }
    } else if (v === PAD) {
      pads++;
    } else if (v !== SPACE) {
      throw new PemError(`${what} has headers or characters outside base64`);
    }
  }
  if (digits === 1 || (pads > 0 && digits + pads !== 4)) {
    throw new PemError(`${what} has truncated or misplaced base64 padding`);
  }
  if (digits === 2) out[n++] = group >>> 4;
  if (digits === 3) {
    out[n++] = group >>> 10;
    out[n++] = (group >>> 2) & 0xff;
  }
  if (n === 0) throw new PemError(`${what} is empty`);
  return out.subarray(0, n);
}

function readDerBlocks(bytes: Buffer, label: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    const element = readTlv(bytes, pos, bytes.length);
    if (element.tag !== Tag.sequence) {
      throw new DerError('expected a SEQUENCE at the top level', pos);
    }
    blocks.push({ label, der: bytes.subarray(element.start, element.end) });
    pos = element.end;
  }
  return blocks;
}

function checkSingleElement(der: Buffer, what: string): void {
  const element = readTlv(der, 0, der.length);
  if (element.end !== der.length) {
    throw new PemError(`${what} has ${der.length - element.end} bytes after its DER element`);
  }
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
