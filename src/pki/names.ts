/**
 * X.501 Names: display form for logs and Status messages.
 * Identity (CN, O) is taken from Node's parsed certificate, not from here.
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

const STRING_TAGS: ReadonlySet<number> = new Set([
  Tag.utf8String,
  Tag.printableString,
  Tag.t61String,
  Tag.ia5String,
]);

export const OID_COMMON_NAME = '2.5.4.3';
export const OID_ORGANIZATION = '2.5.4.10';

export interface NameAttribute {
  readonly oid: string;
  readonly value: string;
  /** Index of the RDN it belongs to (attributes of a multi-valued RDN share it). */
  readonly rdn: number;
}

/** Every attribute of a Name, in certificate order, values decoded to text. */
export function readNameAttributes(buf: Uint8Array, name: Tlv): NameAttribute[] {
  if (name.tag !== Tag.sequence) throw new DerError('expected a Name (SEQUENCE)', name.start);
  const out: NameAttribute[] = [];
  children(buf, name).forEach((rdnTlv, rdn) => {
    if (rdnTlv.tag !== Tag.set) throw new DerError('expected an RDN (SET)', rdnTlv.start);
    for (const atv of children(buf, rdnTlv)) {
      const [type, value] = children(buf, atv);
      if (type === undefined || value === undefined) {
        throw new DerError('attribute without type or value', atv.start);
      }
      out.push({ oid: readOid(buf, type), value: attributeText(buf, value), rdn });
    }
  });
  return out;
}

/** `O=acme, CN=kubernetes-ca`: RDNs in certificate order, as `openssl x509 -subject` lists them. */
export function formatName(buf: Uint8Array, name: Tlv): string {
  const rdns: string[][] = [];
  for (const attr of readNameAttributes(buf, name)) {
    const atom = `${SHORT_NAMES[attr.oid] ?? attr.oid}=${escapeValue(attr.value)}`;
    const rdn = rdns[attr.rdn] ?? [];
    rdn.push(atom);
    rdns[attr.rdn] = rdn;
  }
  return rdns.map((atoms) => atoms.join('+')).join(', ');
}

function attributeText(buf: Uint8Array, value: Tlv): string {
  const bytes = Buffer.from(
    buf.buffer,
    buf.byteOffset + value.contentStart,
    value.end - value.contentStart,
  );
  if (STRING_TAGS.has(value.tag)) return bytes.toString('utf8');
  if (value.tag === Tag.bmpString) return Buffer.from(bytes).swap16().toString('utf16le');
  return `#${bytes.toString('hex')}`;
}

function escapeValue(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we escape
  return text.replace(/[,+"\\<>;\u0000-\u001f\u007f]/g, (c) =>
    c.charCodeAt(0) < 0x20 || c === '\u007f'
      ? `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`
      : `\\${c}`,
  );
}
