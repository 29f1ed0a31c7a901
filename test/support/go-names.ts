/**
 * How kube-apiserver 1.32 reads a certificate name's attribute values, taken from the source of
 * the Go it is built with: go1.23, src/crypto/x509/parser.go, parseASN1String (every string
 * type) and parseName (any refused value of the issuer or the subject fails ParseCertificate,
 * so crypto/tls refuses the handshake); src/crypto/x509/pkix/pkix.go, FillFromRDNSequence
 * (CommonName is the last CN, Organization every O in order). The same source is in go1.22.2
 * and go1.24. Go 1.25 changed T61String (read as Latin-1 and re-encoded as UTF-8) and
 * BMPString (surrogates and the noncharacters U+FFFE, U+FFFF, U+FDD0–U+FDEF refused),
 * golang/go#71862; later Go (parser.go at 01f40d36) also accepts non-string values (INTEGER,
 * …), which FillFromRDNSequence then skips. `newerGo` notes each case where they differ.
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

export const STRING_CASES: readonly StringCase[] = [
  {
    label: 'UTF8String',
    tag: Tag.utf8String,
    value: utf8('zoë-utf8'),
    go: ok(utf8('zoë-utf8')),
    openssl: true,
  },
  {
    label: 'UTF8String, not UTF-8',
    tag: Tag.utf8String,
    value: bytes('bad-', [0xff]),
    go: refused('invalid UTF-8 string'),
    openssl: false,
  },
  {
    label: 'UTF8String, an encoded surrogate',
    tag: Tag.utf8String,
    value: bytes('s-', [0xed, 0xa0, 0x80]),
    go: refused('invalid UTF-8 string'),
    openssl: false,
  },
  {
    label: 'PrintableString',
    tag: Tag.printableString,
    value: ascii("O'Neil (ops) +,-./:=?"),
    go: ok(ascii("O'Neil (ops) +,-./:=?")),
    openssl: true,
  },
  {
    label: 'PrintableString with *',
    tag: Tag.printableString,
    value: ascii('wild*card'),
    go: ok(ascii('wild*card')),
    openssl: true,
  },
  {
    label: 'PrintableString with &',
    tag: Tag.printableString,
    value: ascii('R&D'),
    go: ok(ascii('R&D')),
    openssl: true,
  },
  {
    label: 'PrintableString with @',
    tag: Tag.printableString,
    value: ascii('alice@example.com'),
    go: refused('invalid PrintableString'),
    openssl: true,
  },
  {
    label: 'PrintableString with _',
    tag: Tag.printableString,
    value: ascii('system_masters'),
    go: refused('invalid PrintableString'),
    openssl: true,
  },
  {
    label: 'IA5String',
    tag: Tag.ia5String,
    value: ascii('alice@example.com'),
    go: ok(ascii('alice@example.com')),
    openssl: true,
  },
  {
    label: 'IA5String with 0xE9',
    tag: Tag.ia5String,
    value: bytes('caf', [0xe9]),
    go: refused('invalid IA5String'),
    openssl: true,
  },
  {
    label: 'NumericString',
    tag: NUMERIC_STRING,
    value: ascii('12 345'),
    go: ok(ascii('12 345')),
    openssl: true,
  },
  {
    label: 'NumericString with -',
    tag: NUMERIC_STRING,
    value: ascii('12-345'),
    go: refused('invalid NumericString'),
    openssl: true,
  },
  {
    label: 'T61String',
    tag: Tag.t61String,
    value: ascii('t61-ascii'),
    go: ok(ascii('t61-ascii')),
    openssl: true,
  },
  {
    label: 'T61String with 0xE9',
    tag: Tag.t61String,
    value: bytes('t61-x', [0xe9]),
    go: ok(bytes('t61-x', [0xe9])),
    openssl: true,
    newerGo: 'UTF-8 "t61-xé" (c3 a9)',
  },
  {
    label: 'T61String with 0xE8',
    tag: Tag.t61String,
    value: bytes('t61-x', [0xe8]),
    go: ok(bytes('t61-x', [0xe8])),
    openssl: true,
    newerGo: 'UTF-8 "t61-xè" (c3 a8)',
  },
  {
    label: 'BMPString',
    tag: Tag.bmpString,
    value: utf16be('bmp-é中'),
    go: ok(utf8('bmp-é中')),
    openssl: true,
  },
  {
    label: 'BMPString with a 0000 terminator',
    tag: Tag.bmpString,
    value: utf16be('bmp-end\u0000'),
    go: ok(utf8('bmp-end')),
    openssl: true,
  },
  {
    label: 'BMPString with U+FFFE',
    tag: Tag.bmpString,
    value: utf16be('bmp-\ufffe'),
    go: ok(utf8('bmp-\ufffe')),
    openssl: true,
    newerGo: 'refused: invalid BMPString',
  },
  {
    label: 'BMPString, a surrogate pair',
    tag: Tag.bmpString,
    value: utf16be('bmp-😀'),
    go: ok(utf8('bmp-😀')),
    openssl: false,
    newerGo: 'refused: invalid BMPString',
  },
  {
    label: 'BMPString, a lone surrogate',
    tag: Tag.bmpString,
    value: bytes([0, 0x62, 0xd8, 0x00]),
    go: ok(utf8('b\ufffd')),
    openssl: false,
    newerGo: 'refused: invalid BMPString',
  },
  {
    label: 'BMPString, odd length',
    tag: Tag.bmpString,
    value: bytes([0, 0x62, 0]),
    go: refused('invalid BMPString'),
    openssl: false,
  },
  {
    label: 'UniversalString',
    tag: Tag.universalString,
    value: Buffer.from([0, 0, 0, 0x75, 0, 0, 0, 0x6e]),
    go: refused('unsupported string type: 28'),
    openssl: true,
  },
  {
    label: 'VisibleString',
    tag: VISIBLE_STRING,
    value: ascii('visible'),
    go: refused('unsupported string type: 26'),
    openssl: false,
  },
  {
    label: 'INTEGER',
    tag: Tag.integer,
    value: Buffer.from([5]),
    go: refused('unsupported string type: 2'),
    openssl: false,
    newerGo: 'accepted as an int64; not a string, so no CN or O',
  },
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

/** A Go string's bytes in the form the proxy and Node's header parsers hold them. */
export function wireOf(value: Buffer): string {
  return value.toString('latin1');
}
