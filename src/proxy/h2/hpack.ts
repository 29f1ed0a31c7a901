/**
 * HPACK (RFC 7541) for the HTTP/2 relay: a decoder for the client's request header blocks, an
 * encoder for the blocks the relay sends upstream, and a reader that follows the upstream's
 * encoder through response blocks only far enough to learn `:status` (for metrics) and keep the
 * dynamic table in step. Tables are ring buffers; strings are latin1 (one char per octet), so
 * a string's length is its size in octets.
 */
import { Buffer } from 'node:buffer';
import { isJsonMediaType } from '../streaming.js';
import {
  huffmanDecode,
  huffmanDecodedLength,
  huffmanEncode,
  huffmanEncodedLength,
  maxDecodedLength,
} from './huffman.js';

/** A header block that cannot be decoded: a COMPRESSION_ERROR for the connection. */
export class HpackError extends Error {
  readonly code = 'ERR_HPACK';
  constructor(message: string) {
    super(message);
    this.name = 'HpackError';
  }
}

export const DEFAULT_TABLE_SIZE = 4096;
const ENTRY_OVERHEAD = 32;

/** RFC 7541 Appendix A; index 0 is unused. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  ['', ''],
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length - 1;
const STATIC_NAMES = STATIC_TABLE.map(([name]) => name);
const STATIC_VALUES = STATIC_TABLE.map(([, value]) => value);
/** name → value → static index, and name → its first static index. */
const STATIC_FULL = new Map<string, Map<string, number>>();
const STATIC_NAME = new Map<string, number>();
for (let i = STATIC_COUNT; i >= 1; i--) {
  const [name, value] = STATIC_TABLE[i] as readonly [string, string];
  STATIC_NAME.set(name, i);
  const values = STATIC_FULL.get(name) ?? new Map<string, number>();
  STATIC_FULL.set(name, values);
  values.set(value, i);
}
/** Static `:status` entries (indexes 8–14) and their codes. */
const STATIC_STATUS = [0, 0, 0, 0, 0, 0, 0, 0, 200, 204, 206, 304, 400, 404, 500];

/** Where a decoded field came from, for what follows decoding. */
export const FieldFlag = {
  /** The client sent it as "never indexed": it must be forwarded the same way (RFC 7541 7.1.3). */
  NeverIndexed: 1,
  /** The name is the static table's. */
  StaticName: 2,
  /** Name and value are the static table's. */
  StaticField: 4,
} as const;

/** A dynamic table of name/value strings: a ring buffer, newest first (index 0). */
class HeaderTable {
  names: string[] = new Array(16);
  values: string[] = new Array(16);
  private mask = 15;
  /** Slot the next entry goes to. */
  private head = 0;
  length = 0;
  /** Sum of entry sizes (RFC 7541 4.1). */
  size = 0;
  /** Entries inserted so far: the newest has absolute id `inserted - 1`. */
  inserted = 0;

  constructor(public maxSize: number) {}

  slot(index: number): number {
    return (this.head - 1 - index) & this.mask;
  }

  /** Makes room for an entry of `entrySize`; false when it cannot fit at all (table emptied). */
  makeRoom(
    entrySize: number,
    onEvict?: (name: string, value: string, id: number) => void,
  ): boolean {
    while (this.length > 0 && this.size + entrySize > this.maxSize) this.evict(onEvict);
    return entrySize <= this.maxSize;
  }

  push(name: string, value: string, entrySize: number): void {
    if (this.length === this.mask + 1) this.grow();
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.head = (this.head + 1) & this.mask;
    this.length++;
    this.size += entrySize;
    this.inserted++;
  }

  setMaxSize(maxSize: number, onEvict?: (name: string, value: string, id: number) => void): void {
    this.maxSize = maxSize;
    while (this.size > maxSize) this.evict(onEvict);
  }

  private evict(onEvict?: (name: string, value: string, id: number) => void): void {
    const slot = (this.head - this.length) & this.mask;
    const name = this.names[slot] as string;
    const value = this.values[slot] as string;
    onEvict?.(name, value, this.inserted - this.length);
    this.size -= name.length + value.length + ENTRY_OVERHEAD;
    this.names[slot] = '';
    this.values[slot] = '';
    this.length--;
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    const names: string[] = new Array(capacity);
    const values: string[] = new Array(capacity);
    for (let i = this.length - 1, j = 0; i >= 0; i--, j++) {
      const slot = this.slot(i);
      names[j] = this.names[slot] as string;
      values[j] = this.values[slot] as string;
    }
    this.names = names;
    this.values = values;
    this.head = this.length;
    this.mask = capacity - 1;
  }
}

/** A read position in a header block. */
interface Cursor {
  pos: number;
  /** Whether the last string literal read was Huffman-coded. */
  huffman: boolean;
}

/** Reads an HPACK integer (RFC 7541 5.1); the position after it is left in `cursor.pos`. */
function readInteger(src: Uint8Array, end: number, prefixBits: number, cursor: Cursor): number {
  const max = (1 << prefixBits) - 1;
  let pos = cursor.pos;
  let value = (src[pos++] as number) & max;
  if (value === max) {
    let shift = 0;
    for (;;) {
      if (pos >= end) throw new HpackError('truncated integer');
      const b = src[pos++] as number;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
      if (shift > 21) throw new HpackError('integer too large');
    }
  }
  cursor.pos = pos;
  return value;
}

/**
 * Reads the header of a string literal (RFC 7541 5.2) at the cursor: sets `cursor.huffman`,
 * moves the cursor past the string and returns where its bytes start.
 */
function stringLiteral(src: Uint8Array, end: number, cursor: Cursor): number {
  if (cursor.pos >= end) throw new HpackError('truncated string');
  cursor.huffman = ((src[cursor.pos] as number) & 0x80) !== 0;
  const length = readInteger(src, end, 7, cursor);
  const start = cursor.pos;
  if (length > end - start) throw new HpackError('string beyond the block');
  cursor.pos = start + length;
  return start;
}

function readString(src: Buffer, end: number, cursor: Cursor): string {
  const start = stringLiteral(src, end, cursor);
  return cursor.huffman
    ? decodeHuffmanString(src, start, cursor.pos)
    : latin1(src, start, cursor.pos);
}

/**
 * `buf.toString('latin1', start, end)` without its encoding dispatch: Node's Buffer has
 * latin1Slice (not in its typings); other runtimes get toString.
 */
const latin1: (buf: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as Latin1Slicing).latin1Slice === 'function'
    ? (buf, start, end) => (buf as unknown as Latin1Slicing).latin1Slice(start, end)
    : (buf, start, end) => buf.toString('latin1', start, end);

interface Latin1Slicing {
  latin1Slice(start: number, end: number): string;
}

/** Where Huffman strings are decoded before becoming strings: shared (single-threaded), grown on demand. */
let huffmanScratch = Buffer.allocUnsafeSlow(1024);

function decodeHuffmanString(src: Uint8Array, start: number, end: number): string {
  const room = maxDecodedLength(end - start);
  if (huffmanScratch.length < room) huffmanScratch = Buffer.allocUnsafeSlow(room);
  const n = huffmanDecode(src, start, end, huffmanScratch);
  if (n < 0) throw new HpackError('invalid Huffman string');
  return latin1(huffmanScratch, 0, n);
}

/** Largest size a table can be told to take (bounds also the integers read). */
const MAX_TABLE_SIZE = 1 << 28;

/**
 * Decoder for one connection's request header blocks. The table's size bound is the
 * SETTINGS_HEADER_TABLE_SIZE the client's encoder was told (the upstream's), in force once the
 * client acknowledged it.
 */
export class HpackDecoder {
  private readonly table = new HeaderTable(DEFAULT_TABLE_SIZE);
  private allowed = DEFAULT_TABLE_SIZE;
  /** The bound fell below the table's size: the next block must start with a size update. */
  private updateRequired = false;
  private readonly cursor: Cursor = { pos: 0, huffman: false };
  /** Fields of the last block (those within the limits), in order. */
  readonly names: string[] = [];
  readonly values: string[] = [];
  readonly flags: number[] = [];
  count = 0;
  /** Decoded size of the last block's header list (RFC 9113 6.5.2: name + value + 32 each). */
  listSize = 0;
  /** The last block went over the limits given to decode(): its fields are incomplete. */
  overLimit = false;

  /** The SETTINGS_HEADER_TABLE_SIZE the client's encoder must now respect. */
  setAllowedTableSize(size: number): void {
    this.allowed = Math.min(size, MAX_TABLE_SIZE);
    if (this.allowed < this.table.maxSize) this.updateRequired = true;
  }

  /** The dynamic table, newest entry first, and its size and bound (diagnostics, tests). */
  snapshot(): { entries: Array<[string, string]>; size: number; maxSize: number } {
    const entries: Array<[string, string]> = [];
    for (let i = 0; i < this.table.length; i++) {
      const slot = this.table.slot(i);
      entries.push([this.table.names[slot] as string, this.table.values[slot] as string]);
    }
    return { entries, size: this.table.size, maxSize: this.table.maxSize };
  }

  /**
   * Decodes a whole header block. Every block must be decoded, in order, even one that is then
   * refused: the table changes it makes are shared state. Fields past `maxListSize` or
   * `maxCount` are not kept (`overLimit`), but the block is still decoded to its end.
   */
  decode(src: Buffer, start: number, end: number, maxListSize: number, maxCount: number): void {
    const table = this.table;
    const cursor = this.cursor;
    this.count = 0;
    this.listSize = 0;
    this.overLimit = false;
    cursor.pos = start;
    let fieldSeen = false;
    while (cursor.pos < end) {
      const b = src[cursor.pos] as number;
      if (this.updateRequired && (b & 0xe0) !== 0x20)
        throw new HpackError('missing dynamic table size update');
      let name: string;
      let value: string;
      let flag: number = 0;
      if (b & 0x80) {
        const index = readInteger(src, end, 7, cursor);
        if (index === 0) throw new HpackError('index 0');
        if (index <= STATIC_COUNT) {
          name = STATIC_NAMES[index] as string;
          value = STATIC_VALUES[index] as string;
          flag = FieldFlag.StaticName | FieldFlag.StaticField;
        } else {
          const i = index - STATIC_COUNT - 1;
          if (i >= table.length) throw new HpackError(`index ${index} beyond the table`);
          const slot = table.slot(i);
          name = table.names[slot] as string;
          value = table.values[slot] as string;
        }
      } else if (b & 0x40) {
        const index = readInteger(src, end, 6, cursor);
        name = index === 0 ? this.readString(src, end) : this.nameAt(index);
        if (index !== 0 && index <= STATIC_COUNT) flag = FieldFlag.StaticName;
        value = this.readString(src, end);
        const entrySize = name.length + value.length + ENTRY_OVERHEAD;
        if (table.makeRoom(entrySize)) table.push(name, value, entrySize);
      } else if (b & 0x20) {
        if (fieldSeen) throw new HpackError('dynamic table size update after a field');
        const size = readInteger(src, end, 5, cursor);
        if (size > this.allowed)
          throw new HpackError(`table size ${size} above the allowed ${this.allowed}`);
        table.setMaxSize(size);
        this.updateRequired = false;
        continue;
      } else {
        if (b & 0x10) flag = FieldFlag.NeverIndexed;
        const index = readInteger(src, end, 4, cursor);
        name = index === 0 ? this.readString(src, end) : this.nameAt(index);
        if (index !== 0 && index <= STATIC_COUNT) flag |= FieldFlag.StaticName;
        value = this.readString(src, end);
      }
      fieldSeen = true;
      this.listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (this.overLimit) continue;
      if (this.listSize > maxListSize || this.count >= maxCount) {
        this.overLimit = true;
        continue;
      }
      this.names[this.count] = name;
      this.values[this.count] = value;
      this.flags[this.count] = flag;
      this.count++;
    }
  }

  private nameAt(index: number): string {
    if (index <= STATIC_COUNT) return STATIC_NAMES[index] as string;
    const i = index - STATIC_COUNT - 1;
    if (i >= this.table.length) throw new HpackError(`index ${index} beyond the table`);
    return this.table.names[this.table.slot(i)] as string;
  }

  private readString(src: Buffer, end: number): string {
    return readString(src, end, this.cursor);
  }
}

/** How the encoder writes one field. */
export const Indexing = {
  /** Full match indexed, else a literal added to the table (the default). */
  Incremental: 0,
  /** Literal, table untouched (values that change on every request). */
  Without: 1,
  /** Literal that no intermediary may ever index (credentials). */
  Never: 2,
} as const;
export type Indexing = (typeof Indexing)[keyof typeof Indexing];

/**
 * How fields of a static name are best written (nghttp2's policy): values that change on every
 * request are not indexed (they would only churn the table), credentials never are; a short
 * cookie is a credential too. Other names are indexed.
 */
const NAME_POLICY: ReadonlyMap<string, Indexing | 'cookie'> = new Map<string, Indexing | 'cookie'>([
  [':path', Indexing.Without],
  ['content-length', Indexing.Without],
  ['if-modified-since', Indexing.Without],
  ['if-none-match', Indexing.Without],
  ['authorization', Indexing.Never],
  ['proxy-authorization', Indexing.Never],
  ['cookie', 'cookie'],
]);

/** What the encoder knows of a name: its static index and full matches, its dynamic entries. */
interface NameEntry {
  /** First static index with this name (0: none). */
  readonly staticIndex: number;
  /** Static full matches, by value. */
  readonly staticValues: Map<string, number> | undefined;
  /** Dynamic entries, by value: absolute id of the newest (null for the shared static ones). */
  readonly values: Map<string, number> | null;
  /** Absolute id of the newest dynamic entry with this name (-1: none). */
  newest: number;
  /** How request fields of this name are written (see NAME_POLICY). */
  readonly policy: Indexing | 'cookie';
}

/** Entries of the static names, shared by every encoder until a name gets a dynamic entry. */
const STATIC_ENTRIES = new Map<string, NameEntry>();
for (const [name, staticIndex] of STATIC_NAME)
  STATIC_ENTRIES.set(name, {
    staticIndex,
    staticValues: STATIC_FULL.get(name),
    values: null,
    newest: -1,
    policy: NAME_POLICY.get(name) ?? Indexing.Incremental,
  });

/**
 * Encoder for the blocks the relay sends upstream. Its table never exceeds `limit`, the
 * upstream's SETTINGS_HEADER_TABLE_SIZE in force (as acknowledged by the client, whose ACK is
 * what the upstream receives).
 */
export class HpackEncoder {
  private readonly table: HeaderTable;
  /**
   * Names with dynamic entries (dropped with their last entry, so the map stays within the
   * table's entries); other names are looked up in STATIC_ENTRIES.
   */
  private readonly names = new Map<string, NameEntry>();
  /** Smallest size set since the last block, when it must be signalled (-1: none). */
  private pendingMin = -1;
  private pendingSize = -1;
  private readonly onEvict = (name: string, value: string, id: number) => {
    const entry = this.names.get(name);
    if (entry === undefined || entry.values === null) return;
    if (entry.values.get(value) === id) entry.values.delete(value);
    if (entry.newest === id) entry.newest = -1;
    if (entry.values.size === 0) this.names.delete(name);
  };

  /**
   * @param preferredSize the table size this encoder uses at most, whatever the peer allows
   * @param huffman whether literals are Huffman-coded (when that is not longer)
   */
  constructor(
    private readonly preferredSize = DEFAULT_TABLE_SIZE,
    private readonly huffman = false,
  ) {
    this.table = new HeaderTable(Math.min(preferredSize, DEFAULT_TABLE_SIZE));
  }

  /** The peer's decoder now allows `limit` octets: the table shrinks (or grows) to fit. */
  setLimit(limit: number): void {
    const size = Math.min(limit, this.preferredSize);
    if (size === this.table.maxSize && this.pendingSize < 0) return;
    this.table.setMaxSize(size, this.onEvict);
    this.pendingMin = this.pendingMin < 0 ? size : Math.min(this.pendingMin, size);
    this.pendingSize = size;
  }

  /** Upper bound of the octets encodeField() writes for this field. */
  static bound(name: string, value: string): number {
    return name.length + value.length + 16;
  }

  /** Starts a block: the table size updates owed to the peer (at most 12 octets). */
  beginBlock(out: Uint8Array, pos: number): number {
    if (this.pendingSize < 0) return pos;
    if (this.pendingMin < this.pendingSize) pos = writeInteger(out, pos, this.pendingMin, 5, 0x20);
    pos = writeInteger(out, pos, this.pendingSize, 5, 0x20);
    this.pendingMin = -1;
    this.pendingSize = -1;
    return pos;
  }

  /**
   * Writes one field of a request at `out[pos]` as nghttp2 would: indexed, or not, or never by
   * its name (see NAME_POLICY), never when the client sent it so. Returns the position after it.
   */
  encodeRequestField(
    name: string,
    value: string,
    neverIndexed: boolean,
    out: Uint8Array,
    pos: number,
  ): number {
    const entry = this.names.get(name) ?? STATIC_ENTRIES.get(name);
    let indexing: Indexing = Indexing.Incremental;
    if (neverIndexed) indexing = Indexing.Never;
    else if (entry !== undefined && entry.policy !== Indexing.Incremental)
      indexing =
        entry.policy === 'cookie'
          ? value.length < 20
            ? Indexing.Never
            : Indexing.Incremental
          : entry.policy;
    return this.encode(entry, name, value, indexing, out, pos);
  }

  /** Writes one field at `out[pos]` as `indexing` says; returns the position after it. */
  encodeField(
    name: string,
    value: string,
    indexing: Indexing,
    out: Uint8Array,
    pos: number,
  ): number {
    return this.encode(
      this.names.get(name) ?? STATIC_ENTRIES.get(name),
      name,
      value,
      indexing,
      out,
      pos,
    );
  }

  private encode(
    entry: NameEntry | undefined,
    name: string,
    value: string,
    indexing: Indexing,
    out: Uint8Array,
    pos: number,
  ): number {
    let nameIndex = 0;
    if (entry !== undefined) {
      if (indexing !== Indexing.Never) {
        const fixed = entry.staticValues?.get(value);
        if (fixed !== undefined) return writeInteger(out, pos, fixed, 7, 0x80);
        const id = entry.values?.get(value);
        if (id !== undefined)
          return writeInteger(out, pos, STATIC_COUNT + this.table.inserted - id, 7, 0x80);
      }
      nameIndex =
        entry.staticIndex !== 0
          ? entry.staticIndex
          : entry.newest >= 0
            ? STATIC_COUNT + this.table.inserted - entry.newest
            : 0;
    }
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (indexing === Indexing.Incremental && entrySize <= (this.table.maxSize * 3) / 4) {
      pos = writeInteger(out, pos, nameIndex, 6, 0x40);
      if (nameIndex === 0) pos = this.writeString(out, pos, name);
      pos = this.writeString(out, pos, value);
      this.insert(name, value, entrySize);
      return pos;
    }
    pos = writeInteger(out, pos, nameIndex, 4, indexing === Indexing.Never ? 0x10 : 0);
    if (nameIndex === 0) pos = this.writeString(out, pos, name);
    return this.writeString(out, pos, value);
  }

  private insert(name: string, value: string, entrySize: number): void {
    if (!this.table.makeRoom(entrySize, this.onEvict)) return;
    const id = this.table.inserted;
    this.table.push(name, value, entrySize);
    let entry = this.names.get(name);
    if (entry === undefined) {
      const fixed = STATIC_ENTRIES.get(name);
      entry = {
        staticIndex: fixed?.staticIndex ?? 0,
        staticValues: fixed?.staticValues,
        values: new Map(),
        newest: -1,
        policy: fixed?.policy ?? Indexing.Incremental,
      };
      this.names.set(name, entry);
    }
    (entry.values as Map<string, number>).set(value, id);
    entry.newest = id;
  }

  private writeString(out: Uint8Array, pos: number, text: string): number {
    if (this.huffman) {
      const length = huffmanEncodedLength(text);
      if (length <= text.length) {
        pos = writeInteger(out, pos, length, 7, 0x80);
        return huffmanEncode(text, out, pos);
      }
    }
    return writeRawString(out, pos, text);
  }
}

/** HPACK integer with a `prefixBits` prefix; `first` holds the representation's pattern bits. */
export function writeInteger(
  out: Uint8Array,
  pos: number,
  value: number,
  prefixBits: number,
  first: number,
): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[pos++] = first | value;
    return pos;
  }
  out[pos++] = first | max;
  let rest = value - max;
  while (rest >= 0x80) {
    out[pos++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  out[pos++] = rest;
  return pos;
}

/** A string literal without Huffman coding. */
function writeRawString(out: Uint8Array, pos: number, text: string): number {
  pos = writeInteger(out, pos, text.length, 7, 0);
  for (let i = 0; i < text.length; i++) out[pos++] = text.charCodeAt(i);
  return pos;
}

/**
 * Writes a field that leaves every dynamic table alone: a static full match, else a literal
 * without indexing (static name when there is one). For answers the relay gives itself on a
 * connection whose table belongs to the upstream's encoder.
 */
export function encodeWithoutTable(
  name: string,
  value: string,
  out: Uint8Array,
  pos: number,
): number {
  const full = STATIC_FULL.get(name)?.get(value);
  if (full !== undefined) return writeInteger(out, pos, full, 7, 0x80);
  const nameIndex = STATIC_NAME.get(name) ?? 0;
  pos = writeInteger(out, pos, nameIndex, 4, 0);
  if (nameIndex === 0) pos = writeRawString(out, pos, name);
  return writeRawString(out, pos, value);
}

/**
 * What the response reader keeps of a table entry, one number: a `:status` entry's code (>0,
 * or STATUS_OTHER when its value is not three digits), CONTENT_JSON or CONTENT_OTHER for a
 * `content-type` entry, 0 for any other name.
 */
const STATUS_OTHER = -1;
const CONTENT_OTHER = -2;
const CONTENT_JSON = -3;
/** `content-type` in the static table (RFC 7541 Appendix A: 31), with an empty value. */
const CONTENT_TYPE_INDEX = STATIC_NAMES.indexOf('content-type');

/**
 * Follows the upstream's encoder through response header blocks: keeps a table of entry sizes
 * (and the status code of `:status` entries, and whether a `content-type` is JSON) and returns
 * each block's `:status`, without building the other strings. Its bound is the client's
 * SETTINGS_HEADER_TABLE_SIZE in force.
 */
export class ResponseStatusReader {
  private sizes = new Int32Array(16);
  private nameLengths = new Int32Array(16);
  /** Per entry: what the reader keeps of it (STATUS_OTHER and the CONTENT_ kinds above). */
  private kinds = new Int32Array(16);
  private mask = 15;
  private head = 0;
  private length = 0;
  private size = 0;
  private maxSize = DEFAULT_TABLE_SIZE;
  private allowed = DEFAULT_TABLE_SIZE;
  private updateRequired = false;
  private readonly cursor: Cursor = { pos: 0, huffman: false };
  /** Whether the last block read changed the table (an insertion or a size update). */
  changedTable = false;
  /** Whether the last block's first `content-type` is JSON (streaming.ts, isJsonMediaType). */
  jsonContent = false;

  setAllowedTableSize(size: number): void {
    this.allowed = Math.min(size, MAX_TABLE_SIZE);
    if (this.allowed < this.maxSize) this.updateRequired = true;
  }

  /** Entries in the table and their total size (diagnostics, tests). */
  snapshot(): { length: number; size: number } {
    return { length: this.length, size: this.size };
  }

  /** The block's `:status` (0 when it has none: trailers). Throws HpackError. */
  read(src: Buffer, start: number, end: number): number {
    const cursor = this.cursor;
    cursor.pos = start;
    let status = 0;
    let contentType = 0;
    let fieldSeen = false;
    this.changedTable = false;
    while (cursor.pos < end) {
      const b = src[cursor.pos] as number;
      if (this.updateRequired && (b & 0xe0) !== 0x20)
        throw new HpackError('missing dynamic table size update');
      if (b & 0x80) {
        const kind = this.kindAt(readInteger(src, end, 7, cursor), true);
        if (kind > 0) {
          if (status === 0) status = kind;
        } else if (kind <= CONTENT_OTHER && contentType === 0) contentType = kind;
      } else if (b & 0x20 && !(b & 0x40)) {
        if (fieldSeen) throw new HpackError('dynamic table size update after a field');
        const size = readInteger(src, end, 5, cursor);
        if (size > this.allowed)
          throw new HpackError(`table size ${size} above the allowed ${this.allowed}`);
        this.maxSize = size;
        while (this.size > size) this.evict();
        this.updateRequired = false;
        this.changedTable = true;
        continue;
      } else {
        const indexed = (b & 0x40) !== 0;
        const index = readInteger(src, end, indexed ? 6 : 4, cursor);
        let nameLength: number;
        let nameKind: number;
        if (index === 0) {
          const name = this.readString(src, end);
          nameLength = name.length;
          nameKind =
            name === ':status' ? STATUS_OTHER : name === 'content-type' ? CONTENT_OTHER : 0;
        } else {
          nameLength = this.nameLengthAt(index);
          const kind = this.kindAt(index, false);
          nameKind =
            kind > 0 || kind === STATUS_OTHER ? STATUS_OTHER : kind < 0 ? CONTENT_OTHER : 0;
        }
        let valueLength: number;
        let kind = 0;
        if (nameKind === STATUS_OTHER) {
          const value = this.readString(src, end);
          valueLength = value.length;
          kind = /^\d{3}$/.test(value) ? Number(value) : STATUS_OTHER;
          if (status === 0 && kind > 0) status = kind;
        } else if (nameKind === CONTENT_OTHER) {
          const value = this.readString(src, end);
          valueLength = value.length;
          kind = isJsonMediaType(value) ? CONTENT_JSON : CONTENT_OTHER;
          if (contentType === 0) contentType = kind;
        } else {
          valueLength = this.skipString(src, end, indexed);
        }
        if (indexed) {
          this.insert(nameLength, valueLength, kind);
          this.changedTable = true;
        }
      }
      fieldSeen = true;
    }
    this.jsonContent = contentType === CONTENT_JSON;
    return status;
  }

  /**
   * What the reader keeps of entry `index`; `whole` when the value is used too (a static
   * `:status` name alone is STATUS_OTHER).
   */
  private kindAt(index: number, whole: boolean): number {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC_COUNT) {
      if (index >= 8 && index <= 14) return whole ? (STATIC_STATUS[index] as number) : STATUS_OTHER;
      return index === CONTENT_TYPE_INDEX ? CONTENT_OTHER : 0;
    }
    const i = index - STATIC_COUNT - 1;
    if (i >= this.length) throw new HpackError(`index ${index} beyond the table`);
    return this.kinds[(this.head - 1 - i) & this.mask] as number;
  }

  private nameLengthAt(index: number): number {
    if (index <= STATIC_COUNT) return (STATIC_NAMES[index] as string).length;
    const i = index - STATIC_COUNT - 1;
    if (i >= this.length) throw new HpackError(`index ${index} beyond the table`);
    return this.nameLengths[(this.head - 1 - i) & this.mask] as number;
  }

  private insert(nameLength: number, valueLength: number, kind: number): void {
    const entrySize = ENTRY_OVERHEAD + nameLength + valueLength;
    while (this.length > 0 && this.size + entrySize > this.maxSize) this.evict();
    if (entrySize > this.maxSize) return;
    if (this.length === this.mask + 1) this.grow();
    this.sizes[this.head] = entrySize;
    this.nameLengths[this.head] = nameLength;
    this.kinds[this.head] = kind;
    this.head = (this.head + 1) & this.mask;
    this.length++;
    this.size += entrySize;
  }

  private evict(): void {
    const slot = (this.head - this.length) & this.mask;
    this.size -= this.sizes[slot] as number;
    this.length--;
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    const sizes = new Int32Array(capacity);
    const nameLengths = new Int32Array(capacity);
    const kinds = new Int32Array(capacity);
    for (let i = this.length - 1, j = 0; i >= 0; i--, j++) {
      const slot = (this.head - 1 - i) & this.mask;
      sizes[j] = this.sizes[slot] as number;
      nameLengths[j] = this.nameLengths[slot] as number;
      kinds[j] = this.kinds[slot] as number;
    }
    this.sizes = sizes;
    this.nameLengths = nameLengths;
    this.kinds = kinds;
    this.head = this.length;
    this.mask = capacity - 1;
  }

  private readString(src: Buffer, end: number): string {
    return readString(src, end, this.cursor);
  }

  /** Skips a string; returns its decoded length when `measure` (it enters the table). */
  private skipString(src: Buffer, end: number, measure: boolean): number {
    const cursor = this.cursor;
    const start = stringLiteral(src, end, cursor);
    if (!measure || !cursor.huffman) return cursor.pos - start;
    const n = huffmanDecodedLength(src, start, cursor.pos);
    if (n < 0) throw new HpackError('invalid Huffman string');
    return n;
  }
}
