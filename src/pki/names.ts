/**
 * X.501 Names, read the way kube-apiserver reads them, and their display form for logs and
 * Status messages.
 *
 * kube-apiserver takes a client's user and groups from Go's crypto/x509, whose parser decodes
 * every attribute value of a certificate's issuer and subject with parseASN1String and fails
 * the whole certificate on the first value it cannot decode (go1.23 src/crypto/x509/parser.go,
 * parseName; crypto/tls then refuses the handshake). The decoders below follow go1.23, the Go
 * of kube-apiserver 1.32; later Go changed T61String and BMPString (test/support/go-names.ts).
 *
 * A decoded value is a Go string: bytes that need not be UTF-8 (a T61String keeps its bytes).
 * It is held here as a JS string of one char per byte (latin1), the form header values take on
 * the wire, so the apiserver receives exactly the bytes Go would have.
 */
import { children, DerError, readOid, Tag, type Tlv } from './der.js';

const SHORT_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'street',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'title',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
};

const NUMERIC_STRING = 0x12;

const STRING_TYPE_NAMES: Record<number, string> = {
  [Tag.utf8String]: 'UTF8String',
  [NUMERIC_STRING]: 'NumericString',
  [Tag.printableString]: 'PrintableString',
  [Tag.t61String]: 'T61String',
  [Tag.ia5String]: 'IA5String',
  26: 'VisibleString',
  27: 'GeneralString',
  [Tag.universalString]: 'UniversalString',
  [Tag.bmpString]: 'BMPString',
};

export const OID_COMMON_NAME = '2.5.4.3';
export const OID_ORGANIZATION = '2.5.4.10';

/** Which Name of a certificate an attribute belongs to. */
export type NameRole = 'subject' | 'issuer';

export interface NameAttribute {
  readonly oid: string;
  /** The value as Go's crypto/x509 holds it: its bytes, one char per byte (latin1). */
  readonly value: string;
  /** Index of the RDN it belongs to (attributes of a multi-valued RDN share it). */
  readonly rdn: number;
}

/** A value Go's parseASN1String refuses; `reason` is Go's own wording. */
export class InvalidStringError extends Error {
  readonly code = 'ERR_INVALID_STRING';
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'InvalidStringError';
  }
}

/** An attribute of a certificate's Name that kube-apiserver's Go parser refuses. */
export class InvalidNameError extends Error {
  readonly code = 'ERR_INVALID_NAME';
  constructor(
    readonly role: NameRole,
    /** Short name (`CN`, `O`, …) or dotted OID of the attribute. */
    readonly attribute: string,
    readonly reason: string,
  ) {
    super(`${role} ${attribute}: ${reason}`);
    this.name = 'InvalidNameError';
  }
}

interface RawAttribute {
  readonly oid: string;
  readonly value: Tlv;
  readonly rdn: number;
}

function rawAttributes(buf: Uint8Array, name: Tlv): RawAttribute[] {
  if (name.tag !== Tag.sequence) throw new DerError('expected a Name (SEQUENCE)', name.start);
  const out: RawAttribute[] = [];
  children(buf, name).forEach((rdnTlv, rdn) => {
    if (rdnTlv.tag !== Tag.set) throw new DerError('expected an RDN (SET)', rdnTlv.start);
    for (const atv of children(buf, rdnTlv)) {
      const [type, value] = children(buf, atv);
      if (type === undefined || value === undefined) {
        throw new DerError('attribute without type or value', atv.start);
      }
      out.push({ oid: readOid(buf, type), value, rdn });
    }
  });
  return out;
}

/**
 * Every attribute of a Name, in certificate order, decoded as kube-apiserver decodes it.
 * Throws InvalidNameError for the first value Go refuses, DerError for broken DER.
 */
export function readNameAttributes(buf: Uint8Array, name: Tlv, role: NameRole): NameAttribute[] {
  return rawAttributes(buf, name).map(({ oid, value, rdn }) => {
    try {
      return { oid, value: goString(value.tag, contentsOf(buf, value)), rdn };
    } catch (err) {
      if (!(err instanceof InvalidStringError)) throw err;
      throw new InvalidNameError(role, SHORT_NAMES[oid] ?? oid, err.reason);
    }
  });
}

/**
 * One attribute value as go1.23's parseASN1String decodes it, as a Go string (one char per
 * byte). Throws InvalidStringError with Go's reason for what it refuses.
 */
export function goString(tag: number, bytes: Uint8Array): string {
  switch (tag) {
    case Tag.t61String:
      return t61String(bytes);
    case Tag.printableString:
      return printableString(bytes);
    case Tag.utf8String:
      return utf8String(bytes);
    case Tag.bmpString:
      return bmpString(bytes);
    case Tag.ia5String:
      return ia5String(bytes);
    case NUMERIC_STRING:
      return numericString(bytes);
    default: {
      const known = STRING_TYPE_NAMES[tag];
      // Go prints the tag as a number; the type's name is ours, for the reader.
      throw new InvalidStringError(
        `unsupported string type: ${tag}${known === undefined ? '' : ` (${known})`}`,
      );
    }
  }
}

/** go1.23 keeps the bytes as they are; later Go reads them as Latin-1 and re-encodes UTF-8. */
function t61String(bytes: Uint8Array): string {
  return latin1(bytes);
}

/** Go's isPrintable: the PrintableString set, plus `*` and `&`, which Go lets through. */
function printableString(bytes: Uint8Array): string {
  for (const b of bytes) {
    const printable =
      (b >= 0x61 && b <= 0x7a) || // a-z
      (b >= 0x41 && b <= 0x5a) || // A-Z
      (b >= 0x30 && b <= 0x39) || // 0-9
      (b >= 0x27 && b <= 0x29) || // ' ( )
      (b >= 0x2b && b <= 0x2f) || // + , - . /
      b === 0x20 ||
      b === 0x3a || // :
      b === 0x3d || // =
      b === 0x3f || // ?
      b === 0x2a || // *
      b === 0x26; // &
    if (!printable) throw new InvalidStringError('invalid PrintableString');
  }
  return latin1(bytes);
}

function utf8String(bytes: Uint8Array): string {
  if (!isValidUtf8(bytes)) throw new InvalidStringError('invalid UTF-8 string');
  return latin1(bytes);
}

/**
 * UTF-16BE after an odd length is refused and one trailing 0x0000 terminator dropped; Go's
 * utf16.Decode turns each unpaired surrogate into U+FFFD, and string() encodes UTF-8.
 */
function bmpString(bytes: Uint8Array): string {
  if (bytes.length % 2 !== 0) throw new InvalidStringError('invalid BMPString');
  let end = bytes.length;
  if (end >= 2 && bytes[end - 1] === 0 && bytes[end - 2] === 0) end -= 2;
  const units = (i: number) => ((bytes[i] as number) << 8) | (bytes[i + 1] as number);
  let text = '';
  for (let i = 0; i < end; i += 2) {
    const unit = units(i);
    if (unit >= 0xd800 && unit < 0xdc00 && i + 2 < end) {
      const next = units(i + 2);
      if (next >= 0xdc00 && next < 0xe000) {
        text += String.fromCharCode(unit, next);
        i += 2;
        continue;
      }
    }
    text += unit >= 0xd800 && unit < 0xe000 ? '\ufffd' : String.fromCharCode(unit);
  }
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** Go decodes runes and refuses any above 0x7F: every byte must be ASCII. */
function ia5String(bytes: Uint8Array): string {
  for (const b of bytes) if (b > 0x7f) throw new InvalidStringError('invalid IA5String');
  return latin1(bytes);
}

function numericString(bytes: Uint8Array): string {
  for (const b of bytes) {
    if (!((b >= 0x30 && b <= 0x39) || b === 0x20)) {
      throw new InvalidStringError('invalid NumericString');
    }
  }
  return latin1(bytes);
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

function contentsOf(buf: Uint8Array, value: Tlv): Uint8Array {
  return buf.subarray(value.contentStart, value.end);
}

/**
 * Length of the well-formed UTF-8 sequence at `i` (Unicode table 3-7, the set Go's utf8.Valid
 * accepts: no overlong forms, no surrogates, nothing above U+10FFFF), or 0.
 */
function utf8SequenceLength(bytes: ArrayLike<number>, i: number): number {
  const b0 = bytes[i] as number;
  if (b0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => {
    const b = bytes[i + k];
    return b !== undefined && b >= lo && b <= hi;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const lo = b0 === 0xe0 ? 0xa0 : 0x80;
    const hi = b0 === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const lo = b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

function isValidUtf8(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; ) {
    const n = utf8SequenceLength(bytes, i);
    if (n === 0) return false;
    i += n;
  }
  return true;
}

/**
 * A Go string for people: its UTF-8 text, with `escapeText` applied to the text and each byte
 * that is not part of valid UTF-8 written by `escapeByte`, so two different names never look
 * alike.
 */
function renderGoString(
  value: string,
  escapeText: (text: string) => string,
  escapeByte: (byte: number) => string,
): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII fast path
  if (/^[\u0000-\u007f]*$/.test(value)) return escapeText(value);
  const bytes = Buffer.from(value, 'latin1');
  let out = '';
  let runStart = 0;
  const flush = (end: number) => {
    if (end > runStart) out += escapeText(bytes.toString('utf8', runStart, end));
  };
  for (let i = 0; i < bytes.length; ) {
    const n = utf8SequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    flush(i);
    out += escapeByte(bytes[i] as number);
    i++;
    runStart = i;
  }
  flush(bytes.length);
  return out;
}

function hexByte(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/**
 * A Go string as Go's %q (strconv.Quote) writes it: `"alice"`, `"a\"b"`, `"t61-x\xe9"` for a
 * byte that is not UTF-8, `"\ufffe"` for a rune Go does not print. Unambiguous: equal output
 * means equal bytes.
 */
export function quoteGoString(value: string): string {
  return `"${renderGoString(value, quoteText, (byte) => `\\x${hexByte(byte)}`)}"`;
}

/** Go's unicode.IsPrint: categories L, M, N, P, S and the ASCII space; the rest is escaped. */
function quoteText(text: string): string {
  return text.replace(/["\\]|[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/gu, quoteRune);
}

const SHORT_ESCAPES: Record<string, string> = {
  '\u0007': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
};

/** strconv's appendEscapedRune. */
function quoteRune(rune: string): string {
  if (rune === '"' || rune === '\\') return `\\${rune}`;
  const short = SHORT_ESCAPES[rune];
  if (short !== undefined) return short;
  const code = rune.codePointAt(0) as number;
  if (code < 0x20 || code === 0x7f) return `\\x${hexByte(code)}`;
  if (code < 0x10000) return `\\u${code.toString(16).padStart(4, '0')}`;
  return `\\U${code.toString(16).padStart(8, '0')}`;
}

/**
 * A Go string as text, each byte that is not part of valid UTF-8 as U+FFFD: what the
 * apiserver's own JSON (Go's encoding/json) shows for such a name.
 */
export function goStringText(value: string): string {
  return renderGoString(
    value,
    (text) => text,
    () => '\ufffd',
  );
}

/**
 * `O=acme, CN=kubernetes-ca`: RDNs in certificate order, as `openssl x509 -subject` lists them.
 * Readable whatever the value: one Go refuses is shown as Go would have it if the type allowed
 * it, or as `#` and the hex of its DER (RFC 4514) when it is not text at all.
 */
export function formatName(buf: Uint8Array, name: Tlv): string {
  const rdns: string[][] = [];
  for (const attr of rawAttributes(buf, name)) {
    const atom = `${SHORT_NAMES[attr.oid] ?? attr.oid}=${displayValue(buf, attr.value)}`;
    const rdn = rdns[attr.rdn] ?? [];
    rdn.push(atom);
    rdns[attr.rdn] = rdn;
  }
  return rdns.map((atoms) => atoms.join('+')).join(', ');
}

/** Tags whose contents are bytes of text even when Go refuses them. */
const BYTE_STRINGS: ReadonlySet<number> = new Set([
  Tag.utf8String,
  Tag.printableString,
  Tag.t61String,
  Tag.ia5String,
  NUMERIC_STRING,
]);

function displayValue(buf: Uint8Array, value: Tlv): string {
  const bytes = contentsOf(buf, value);
  let decoded: string;
  try {
    decoded = goString(value.tag, bytes);
  } catch (err) {
    if (!(err instanceof InvalidStringError)) throw err;
    if (!BYTE_STRINGS.has(value.tag)) {
      return `#${Buffer.from(buf.subarray(value.start, value.end)).toString('hex')}`;
    }
    decoded = latin1(bytes);
  }
  const text = renderGoString(decoded, escapeValue, (byte) => `\\${hexByte(byte)}`);
  // A leading `#` would read as the hex form above.
  return text.startsWith('#') ? `\\${text}` : text;
}

/** RFC 4514 escapes; control characters as `\hh`, the form used for bytes that are not UTF-8. */
function escapeValue(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we escape
  return text.replace(/[,+"\\<>;\u0000-\u001f\u007f]/g, (c) =>
    c.charCodeAt(0) < 0x20 || c === '\u007f' ? `\\${hexByte(c.charCodeAt(0))}` : `\\${c}`,
  );
}
