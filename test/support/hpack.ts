/**
 * HPACK for tests: Huffman encoding (the relay never Huffman-codes what it sends; its peers
 * may), blocks written with the relay's encoder, and a decoder's fields as pairs.
 */
import type { HpackDecoder } from '../../src/proxy/h2/hpack.js';
import { HpackEncoder, writeInteger } from '../../src/proxy/h2/hpack-encoder.js';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from '../../src/proxy/h2/huffman.js';

export type Field = [string, string];

/** Octets the Huffman encoding of the latin1 string `text` takes. */
export function huffmanEncodedLength(text: string): number {
  let bits = 0;
  for (let i = 0; i < text.length; i++)
    bits += HUFFMAN_LENGTHS[text.charCodeAt(i) & 0xff] as number;
  return (bits + 7) >>> 3;
}

/**
 * Writes the Huffman encoding of the latin1 string `text` at `out[pos]`; returns the position
 * after it. The last octet is padded with the high bits of EOS (ones).
 */
export function huffmanEncode(text: string, out: Uint8Array, pos: number): number {
  // Pending bits, right-aligned in `acc`: at most 7 before a code is added, so codes of up to
  // 24 bits fit in 32; longer ones go in two parts.
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const symbol = text.charCodeAt(i) & 0xff;
    let length = HUFFMAN_LENGTHS[symbol] as number;
    let code = HUFFMAN_CODES[symbol] as number;
    if (length > 24) {
      const high = length - 16;
      acc = ((acc << high) | (code >>> 16)) >>> 0;
      bits += high;
      while (bits >= 8) {
        bits -= 8;
        out[pos++] = (acc >>> bits) & 0xff;
      }
      acc &= (1 << bits) - 1;
      code &= 0xffff;
      length = 16;
    }
    acc = ((acc << length) | code) >>> 0;
    bits += length;
    while (bits >= 8) {
      bits -= 8;
      out[pos++] = (acc >>> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out[pos++] = ((acc << (8 - bits)) | (0xff >>> bits)) & 0xff;
  return pos;
}

/**
 * The block `encoder` writes for `fields` (every field "never indexed" when `neverIndexed`),
 * with each string literal Huffman-coded where that is not longer when `huffman`.
 */
export function encodeBlock(
  encoder: HpackEncoder,
  fields: readonly Field[],
  { huffman = false, neverIndexed = false } = {},
): Buffer {
  let bound = 12;
  for (const [name, value] of fields) bound += HpackEncoder.bound(name, value);
  const out = Buffer.alloc(bound);
  let pos = encoder.beginBlock(out, 0);
  for (const [name, value] of fields)
    pos = encoder.encodeRequestField(name, value, neverIndexed, out, pos);
  const block = out.subarray(0, pos);
  return huffman ? withHuffman(block) : block;
}

/** The fields of the last block `decoder` decoded. */
export function decodedFields(decoder: HpackDecoder): Field[] {
  const { fields } = decoder;
  const out: Field[] = [];
  for (let i = 0; i < fields.length; i++) out.push([fields.name(i), fields.value(i)]);
  return out;
}

/** `block` (plain literals) with every string literal Huffman-coded where that is not longer. */
function withHuffman(block: Buffer): Buffer {
  const out = Buffer.alloc(block.length);
  let from = 0;
  let to = 0;
  const copyInteger = (prefixBits: number): number => {
    let value = (block[from] as number) & ((1 << prefixBits) - 1);
    const start = from++;
    if (value === (1 << prefixBits) - 1)
      for (let shift = 0; ; shift += 7) {
        const b = block[from++] as number;
        value += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) break;
      }
    to += block.copy(out, to, start, from);
    return value;
  };
  const rewriteString = () => {
    if ((block[from] as number) & 0x80) throw new Error('already Huffman-coded');
    const start = from;
    let length = (block[from] as number) & 0x7f;
    from++;
    if (length === 0x7f)
      for (let shift = 0; ; shift += 7) {
        const b = block[from++] as number;
        length += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) break;
      }
    const text = block.toString('latin1', from, from + length);
    from += length;
    const coded = huffmanEncodedLength(text);
    if (coded <= length) {
      to = writeInteger(out, to, coded, 7, 0x80);
      to = huffmanEncode(text, out, to);
    } else {
      to += block.copy(out, to, start, from);
    }
  };
  while (from < block.length) {
    const b = block[from] as number;
    if (b & 0x80) copyInteger(7);
    else if (b & 0x20 && !(b & 0x40)) copyInteger(5);
    else {
      if (copyInteger(b & 0x40 ? 6 : 4) === 0) rewriteString();
      rewriteString();
    }
  }
  return out.subarray(0, to);
}
