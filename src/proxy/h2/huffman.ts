/**
 * The HPACK Huffman code (RFC 7541 Appendix B). The code is canonical, so the table below holds
 * only each symbol's code length; the codes follow from it. Decoding walks a byte at a time
 * through a table built once at load (256 tree states × 256 input bytes → next state and at
 * most two symbols), instead of a bit at a time. The relay only decodes it: what it encodes
 * goes out as plain literals.
 */

/** Code length in bits of symbols 0–255 and of EOS (256). */
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
  28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5,
  6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6,
  7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23,
  23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22,
  22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22,
  23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27,
  27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25,
  24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS = 256;

/** Code of each symbol, right-aligned (canonical: by length, then by symbol). */
export const HUFFMAN_CODES = new Uint32Array(257);
/** Length in bits of each symbol's code. */
export const HUFFMAN_LENGTHS = Uint8Array.from(CODE_LENGTHS);

{
  const order = [...HUFFMAN_LENGTHS.keys()].sort(
    (a, b) => (HUFFMAN_LENGTHS[a] as number) - (HUFFMAN_LENGTHS[b] as number) || a - b,
  );
  let code = 0;
  let length = HUFFMAN_LENGTHS[order[0] as number] as number;
  for (const symbol of order) {
    const l = HUFFMAN_LENGTHS[symbol] as number;
    code *= 2 ** (l - length);
    length = l;
    HUFFMAN_CODES[symbol] = code;
    code++;
  }
}

/*
 * Decoding table. States are the tree's 256 internal nodes (0 = root). Entry [state << 8 | byte]:
 * bits 0–7 next state, 8–15 first symbol, 16–23 second symbol, 24–25 symbols emitted,
 * bit 26 "may end here" (root, or at most 7 one-bits into the tree: valid padding),
 * bit 27 EOS met (an error inside a string).
 */
const ACCEPT = 1 << 26;
const FAIL = 1 << 27;
const DECODE_TABLE = new Uint32Array(256 * 256);

{
  // children[node * 2 + bit]: >= 0 an internal node, < 0 the leaf ~symbol.
  const children = new Int32Array(512).fill(0x7fffffff);
  let nodes = 1;
  for (let symbol = 0; symbol <= EOS; symbol++) {
    const length = HUFFMAN_LENGTHS[symbol] as number;
    const code = HUFFMAN_CODES[symbol] as number;
    let node = 0;
    for (let i = length - 1; i > 0; i--) {
      const slot = node * 2 + (Math.floor(code / 2 ** i) & 1);
      if (children[slot] === 0x7fffffff) children[slot] = nodes++;
      node = children[slot] as number;
    }
    children[node * 2 + (code & 1)] = ~symbol;
  }
  // A node on the all-ones path at depth <= 7 is a valid place for a string to end.
  const acceptable = new Uint8Array(256);
  acceptable[0] = 1;
  for (let node = 0, depth = 0; depth < 7; depth++) {
    node = children[node * 2 + 1] as number;
    acceptable[node] = 1;
  }
  for (let state = 0; state < 256; state++) {
    for (let byte = 0; byte < 256; byte++) {
      let node = state;
      let emitted = 0;
      let symbols = 0;
      let failed = false;
      for (let bit = 7; bit >= 0; bit--) {
        const child = children[node * 2 + ((byte >> bit) & 1)] as number;
        if (child >= 0) {
          node = child;
          continue;
        }
        const symbol = ~child;
        if (symbol === EOS) failed = true;
        symbols |= (symbol & 0xff) << (8 * emitted);
        emitted++;
        node = 0;
      }
      DECODE_TABLE[(state << 8) | byte] =
        node |
        (symbols << 8) |
        (emitted << 24) |
        (acceptable[node] ? ACCEPT : 0) |
        (failed ? FAIL : 0);
    }
  }
}

/**
 * Decodes `src[start, end)` into `out` from offset 0. Returns the decoded length, or -1 when the
 * input holds EOS, or ends in padding longer than 7 bits or not made of ones (RFC 7541 5.2).
 * `out` must hold `maxDecodedLength(end - start)` bytes.
 */
export function huffmanDecode(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
): number {
  let state = 0;
  let entry = ACCEPT;
  let n = 0;
  for (let i = start; i < end; i++) {
    entry = DECODE_TABLE[(state << 8) | (src[i] as number)] as number;
    if (entry & FAIL) return -1;
    const emitted = (entry >>> 24) & 3;
    if (emitted !== 0) {
      out[n++] = (entry >>> 8) & 0xff;
      if (emitted === 2) out[n++] = (entry >>> 16) & 0xff;
    }
    state = entry & 0xff;
  }
  return entry & ACCEPT ? n : -1;
}

/** Length of the decoded string without producing it (-1 when invalid, as huffmanDecode). */
export function huffmanDecodedLength(src: Uint8Array, start: number, end: number): number {
  let state = 0;
  let entry = ACCEPT;
  let n = 0;
  for (let i = start; i < end; i++) {
    entry = DECODE_TABLE[(state << 8) | (src[i] as number)] as number;
    if (entry & FAIL) return -1;
    n += (entry >>> 24) & 3;
    state = entry & 0xff;
  }
  return entry & ACCEPT ? n : -1;
}

/** Upper bound of the decoded length of `encodedLength` Huffman bytes (5-bit shortest code). */
export function maxDecodedLength(encodedLength: number): number {
  return Math.ceil((encodedLength * 8) / 5);
}
