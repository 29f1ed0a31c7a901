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

/** `O=acme, CN=kubernetes-ca`: RDNs in certificate order, as `openssl x509 -subject` lists them. */
export function formatName(buf: Uint8Array, name: Tlv): string {
  if (name.tag !== Tag.sequence) throw new DerError('expected a Name (SEQUENCE)', name.start);
  const parts: string[] = [];
  for (const rdn of children(buf, name)) {
    if (rdn.tag !== Tag.set) throw new DerError('expected an RDN (SET)', rdn.start);
    const atoms: string[] = [];
    for (const atv of children(buf, rdn)) {
      const [type, value] = children(buf, atv);
      if (type === undefined || value === undefined) {
        throw new DerError('attribute without type or value', atv.start);
      }
      const oid = readOid(buf, type);
      atoms.push(`${SHORT_NAMES[oid] ?? oid}=${escapeValue(attributeText(buf, value))}`);
    }
    parts.push(atoms.join('+'));
  }
  return parts.join(', ');
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
