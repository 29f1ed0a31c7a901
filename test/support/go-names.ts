/**
 * How kube-apiserver 1.32 reads a certificate name's attribute values, taken from the source of
 * the Go it is built with: go1.23, src/crypto/x509/parser.go, parseASN1String (every string
 * type) and parseName (any refused value of the issuer or the subject fails ParseCertificate,
 * so crypto/tls refuses the handshake); src/crypto/x509/pkix/pkix.go, FillFromRDNSequence
 * (CommonName is the last CN, Organization every O in order). go1.22.2 has the same code, and
 * test/e2e/go-names.test.ts checks the table against kubectl 1.32.4's go1.23.8. Later Go
 * changed T61String (read as Latin-1, re-encoded as UTF-8) and BMPString (surrogates and the
 * noncharacters U+FFFE, U+FFFF, U+FDD0–U+FDEF refused): golang/go#71862, filed after Go 1.24's
 * release, parser.go at db60962; parser.go at 01f40d36 also accepts non-string values
 * (INTEGER, …), which FillFromRDNSequence skips. `newerGo` notes each case where they differ.
 *
 * `openssl`: whether OpenSSL (3.0.x in Node 20, 3.5.x in Node 26, measured with
 * X509Certificate) parses a certificate carrying the value. When it does not, the proxy's TLS
 * handshake fails inside OpenSSL before any check of ours runs: the certificate never reaches
 * the apiserver, and no 401 reason is sent.
 */

import * as der from '../../src/pki/der.js';
import { Tag } from '../../src/pki/der.js';

export type GoResult = { readonly bytes: Buffer } | { readonly error: string };

export interface StringCase {
  readonly label: string;
  readonly tag: number;
  /** The value's contents octets. */
  readonly value: Buffer;
  /** go1.23: the Go string's bytes, or parseASN1String's error. */
  readonly go: GoResult;
  readonly openssl: boolean;
  readonly newerGo?: string;
}

const NUMERIC_STRING = 0x12;
const VISIBLE_STRING = 0x1a;

const ascii = (text: string) => Buffer.from(text, 'latin1');
const utf8 = (text: string) => Buffer.from(text, 'utf8');
const bytes = (...parts: Array<string | number[]>) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? ascii(p) : Buffer.from(p))));
const utf16be = (text: string) => Buffer.from(text, 'utf16le').swap16();
const ok = (value: Buffer): GoResult => ({ bytes: value });
const refused = (error: string): GoResult => ({ error });
/** Go keeps the value's bytes as they are. */
const KEPT = 'kept';
const PARSED = true;
const UNPARSED = false;

function row(
  label: string,
  tag: number,
  value: Buffer,
  go: GoResult | typeof KEPT,
  openssl: boolean,
  newerGo?: string,
): StringCase {
  return {
    label,
    tag,
    value,
    go: go === KEPT ? { bytes: value } : go,
    openssl,
    ...(newerGo === undefined ? {} : { newerGo }),
  };
}

const { utf8String: UTF8, printableString: PRINTABLE, ia5String: IA5, t61String: T61 } = Tag;
const { bmpString: BMP, universalString: UNIVERSAL, integer: INTEGER } = Tag;
const NEWER_BMP = 'refused: invalid BMPString';
const NOT_UTF8 = refused('invalid UTF-8 string');
const NOT_PRINTABLE = refused('invalid PrintableString');
const NOT_IA5 = refused('invalid IA5String');
const NOT_NUMERIC = refused('invalid NumericString');
const NOT_BMP = refused('invalid BMPString');
const unsupported = (tag: number) => refused(`unsupported string type: ${tag}`);

export const STRING_CASES: readonly StringCase[] = [
  row('UTF8String', UTF8, utf8('zoë-utf8'), KEPT, PARSED),
  row('UTF8String, not UTF-8', UTF8, bytes('bad-', [0xff]), NOT_UTF8, UNPARSED),
  row('UTF8String, a surrogate', UTF8, bytes('s', [0xed, 0xa0, 0x80]), NOT_UTF8, UNPARSED),
  row('PrintableString', PRINTABLE, ascii("O'Neil (ops) +,-./:=?"), KEPT, PARSED),
  row('PrintableString with *', PRINTABLE, ascii('wild*card'), KEPT, PARSED),
  row('PrintableString with &', PRINTABLE, ascii('R&D'), KEPT, PARSED),
  row('PrintableString with @', PRINTABLE, ascii('alice@example.com'), NOT_PRINTABLE, PARSED),
  row('PrintableString with _', PRINTABLE, ascii('system_masters'), NOT_PRINTABLE, PARSED),
  row('IA5String', IA5, ascii('alice@example.com'), KEPT, PARSED),
  row('IA5String with 0xE9', IA5, bytes('caf', [0xe9]), NOT_IA5, PARSED),
  row('NumericString', NUMERIC_STRING, ascii('12 345'), KEPT, PARSED),
  row('NumericString with -', NUMERIC_STRING, ascii('12-345'), NOT_NUMERIC, PARSED),
  row('T61String', T61, ascii('t61-ascii'), KEPT, PARSED),
  row('T61String with 0xE9', T61, bytes('t61-x', [0xe9]), KEPT, PARSED, 'UTF-8 "t61-xé"'),
  row('T61String with 0xE8', T61, bytes('t61-x', [0xe8]), KEPT, PARSED, 'UTF-8 "t61-xè"'),
  row('BMPString', BMP, utf16be('bmp-é中'), ok(utf8('bmp-é中')), PARSED),
  row('BMPString with a 0000 terminator', BMP, utf16be('end\u0000'), ok(utf8('end')), PARSED),
  row('BMPString with U+FFFE', BMP, utf16be('x\ufffe'), ok(utf8('x\ufffe')), PARSED, NEWER_BMP),
  row('BMPString, a surrogate pair', BMP, utf16be('x😀'), ok(utf8('x😀')), UNPARSED, NEWER_BMP),
  row(
    'BMPString, lone surrogate',
    BMP,
    bytes([0, 0x62, 0xd8, 0]),
    ok(utf8('b\ufffd')),
    UNPARSED,
    NEWER_BMP,
  ),
  row('BMPString, odd length', BMP, bytes([0, 0x62, 0]), NOT_BMP, UNPARSED),
  row('UniversalString', UNIVERSAL, bytes([0, 0, 0, 0x75, 0, 0, 0, 0x6e]), unsupported(28), PARSED),
  row('VisibleString', VISIBLE_STRING, ascii('visible'), unsupported(26), UNPARSED),
  row('INTEGER', INTEGER, bytes([5]), unsupported(2), UNPARSED, 'an int64, so no CN or O'),
];

export const OID_CN = '2.5.4.3';
export const OID_O = '2.5.4.10';
export const OID_OU = '2.5.4.11';

/** One AttributeTypeAndValue: an OID and a value of any tag. */
export interface RawAttribute {
  readonly oid: string;
  readonly tag: number;
  readonly value: Uint8Array;
}

export function utf8Attribute(oid: string, text: string): RawAttribute {
  return { oid, tag: Tag.utf8String, value: utf8(text) };
}

/** A Name of one single-valued RDN per attribute, in order, values encoded as given. */
export function nameDer(...attributes: RawAttribute[]): Buffer {
  return der.seq(
    ...attributes.map(({ oid, tag, value }) =>
      der.tlv(Tag.set, der.seq(der.oid(oid), der.tlv(tag, value))),
    ),
  );
}

export type Where = 'CN' | 'O';

/** A subject with the case's value as its CN (after O=dev) or as its O (before CN=alice). */
export function subjectFor(c: StringCase, where: Where): Buffer {
  const value: RawAttribute = { oid: where === 'CN' ? OID_CN : OID_O, tag: c.tag, value: c.value };
  return where === 'CN'
    ? nameDer(utf8Attribute(OID_O, 'dev'), value)
    : nameDer(value, utf8Attribute(OID_CN, 'alice'));
}

/** The identity kube-apiserver sees for subjectFor(c, where) (wire bytes), or why it refuses. */
export function identityFor(
  c: StringCase,
  where: Where,
): { readonly user: string; readonly groups: readonly string[] } | { readonly refused: string } {
  if (!('bytes' in c.go)) return { refused: `client certificate subject ${where}: ${c.go.error}` };
  const value = wireOf(c.go.bytes);
  return where === 'CN' ? { user: value, groups: ['dev'] } : { user: 'alice', groups: [value] };
}

/** A Go string's bytes in the form the proxy and Node's header parsers hold them. */
export function wireOf(value: Buffer): string {
  return value.toString('latin1');
}
