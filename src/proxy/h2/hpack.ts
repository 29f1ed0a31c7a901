/**
 * HPACK (RFC 7541) decoding for the HTTP/2 relay: a decoder for the client's request header
 * blocks, and a reader that follows the upstream's encoder through response blocks only far
 * enough to learn `:status` (for metrics) and keep the dynamic table in step. The encoder is in
 * hpack-encoder.ts, the tables in hpack-table.ts.
 */
import { Buffer } from 'node:buffer';
import { isJsonMediaType } from '../streaming.js';
import {
  DEFAULT_TABLE_SIZE,
  ENTRY_OVERHEAD,
  HeaderTable,
  STATIC_COUNT,
  STATIC_NAMES,
  STATIC_VALUES,
} from './hpack-table.js';
import { huffmanDecode, huffmanDecodedLength, maxDecodedLength } from './huffman.js';

/** The code of each static entry that is a `:status` (0 for the others). */
const STATIC_STATUS = STATIC_NAMES.map((name, i) =>
  name === ':status' ? Number(STATIC_VALUES[i]) : 0,
);
/** `content-type` in the static table (RFC 7541 Appendix A: 31), with an empty value. */
const CONTENT_TYPE_INDEX = STATIC_NAMES.indexOf('content-type');

/** A header block that cannot be decoded: a COMPRESSION_ERROR for the connection. */
export class HpackError extends Error {
  readonly code = 'ERR_HPACK';
  constructor(message: string) {
    super(message);
    this.name = 'HpackError';
  }
}

/** What is known of a decoded field, for what follows decoding. */
export const FieldFlag = {
  /** The client sent it as "never indexed": it must be forwarded the same way (RFC 7541 7.1.3). */
  NeverIndexed: 1,
  /** The name is the static table's. */
  StaticName: 2,
  /** Name and value are the static table's. */
  StaticField: 4,
  /** Its name or value is invalid: it is not forwarded (request.ts). */
  Dropped: 8,
} as const;

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

const EMPTY = Buffer.alloc(0);

/** A field representation (RFC 7541 6), as BlockReader.next() finds them. */
const Representation = {
  Indexed: 0,
  /** A literal that enters the table. */
  Incremental: 1,
  WithoutIndexing: 2,
  NeverIndexed: 3,
  /** The block is read to its end. */
  End: 4,
} as const;
type Representation = (typeof Representation)[keyof typeof Representation];

/**
 * The receiving side of one HPACK context, for the decoder and the status reader alike: the
 * table as the peer's encoder keeps it, the size bound the peer was told, and the walk through
 * a block. next() reads each representation's index and applies size updates; the strings that
 * follow are read (or skipped) by the caller.
 */
class BlockReader {
  readonly table = new HeaderTable(DEFAULT_TABLE_SIZE);
  private allowed = DEFAULT_TABLE_SIZE;
  /** The bound fell below the table's size: the next block must start with a size update. */
  private updateRequired = false;
  /** The block being read: `src[pos, end)` is what is left of it. */
  private src: Buffer = EMPTY;
  private pos = 0;
  private end = 0;
  private fieldSeen = false;
  /** Index of the field next() found (for a literal, 0: its name is a literal too). */
  index = 0;
  /** Whether the block changed the table (an insertion or a size update). */
  changedTable = false;

  /** The SETTINGS_HEADER_TABLE_SIZE the peer's encoder must now respect. */
  setAllowedTableSize(size: number): void {
    this.allowed = Math.min(size, MAX_TABLE_SIZE);
    if (this.allowed < this.table.maxSize) this.updateRequired = true;
  }

  begin(src: Buffer, start: number, end: number): void {
    this.src = src;
    this.pos = start;
    this.end = end;
    this.fieldSeen = false;
    this.changedTable = false;
  }

  /** The block is read: its buffer is not kept. */
  finish(): void {
    this.src = EMPTY;
  }

  /** The next field's representation (its index in `index`), or End. */
  next(): Representation {
    const src = this.src;
    const end = this.end;
    for (;;) {
      const pos = this.pos;
      if (pos >= end) return Representation.End;
      const b = src[pos] as number;
      if (this.updateRequired && (b & 0xe0) !== 0x20)
        throw new HpackError('missing dynamic table size update');
      let representation: Representation;
      let prefixBits: number;
      if (b & 0x80) {
        representation = Representation.Indexed;
        prefixBits = 7;
      } else if (b & 0x40) {
        representation = Representation.Incremental;
        prefixBits = 6;
      } else if (b & 0x20) {
        if (this.fieldSeen) throw new HpackError('dynamic table size update after a field');
        const size = this.readInteger(5);
        if (size > this.allowed)
          throw new HpackError(`table size ${size} above the allowed ${this.allowed}`);
        this.table.setMaxSize(size);
        this.updateRequired = false;
        this.changedTable = true;
        continue;
      } else {
        representation = b & 0x10 ? Representation.NeverIndexed : Representation.WithoutIndexing;
        prefixBits = 4;
      }
      const max = (1 << prefixBits) - 1;
      let index = b & max;
      if (index < max) this.pos = pos + 1;
      else index = this.readInteger(prefixBits);
      if (index === 0 && representation === Representation.Indexed) throw new HpackError('index 0');
      this.index = index;
      this.fieldSeen = true;
      return representation;
    }
  }

  nameAt(index: number): string {
    if (index <= STATIC_COUNT) return STATIC_NAMES[index] as string;
    return this.table.name(this.dynamicIndex(index));
  }

  valueAt(index: number): string {
    if (index <= STATIC_COUNT) return STATIC_VALUES[index] as string;
    return this.table.value(this.dynamicIndex(index));
  }

  readString(): string {
    const src = this.src;
    const huffman = this.pos < this.end && ((src[this.pos] as number) & 0x80) !== 0;
    const start = this.stringLiteral();
    return huffman ? decodeHuffmanString(src, start, this.pos) : latin1(src, start, this.pos);
  }

  /** Skips a string; returns its length, decoded when `measure` (it enters the table). */
  skipString(measure: boolean): number {
    const src = this.src;
    const huffman = this.pos < this.end && ((src[this.pos] as number) & 0x80) !== 0;
    const start = this.stringLiteral();
    if (!measure || !huffman) return this.pos - start;
    const n = huffmanDecodedLength(src, start, this.pos);
    if (n < 0) throw new HpackError('invalid Huffman string');
    return n;
  }

  insert(name: string, value: string, entrySize: number): void {
    if (this.table.makeRoom(entrySize)) this.table.push(name, value, entrySize);
    this.changedTable = true;
  }

  private dynamicIndex(index: number): number {
    const i = index - STATIC_COUNT - 1;
    if (i >= this.table.length) throw new HpackError(`index ${index} beyond the table`);
    return i;
  }

  /** Reads an HPACK integer (RFC 7541 5.1) with a `prefixBits` prefix at the position. */
  private readInteger(prefixBits: number): number {
    const src = this.src;
    const end = this.end;
    const max = (1 << prefixBits) - 1;
    let pos = this.pos;
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
    this.pos = pos;
    return value;
  }

  /**
   * Reads the header of a string literal (RFC 7541 5.2), moves past the string and returns
   * where its octets start.
   */
  private stringLiteral(): number {
    const src = this.src;
    const end = this.end;
    const pos = this.pos;
    if (pos >= end) throw new HpackError('truncated string');
    let length = (src[pos] as number) & 0x7f;
    let start = pos + 1;
    if (length === 0x7f) {
      length = this.readInteger(7);
      start = this.pos;
    }
    if (length > end - start) throw new HpackError('string beyond the block');
    this.pos = start + length;
    return start;
  }
}

/** The fields of one header block, in order: the decoder refills it with each block. */
export class FieldList {
  private readonly names: string[] = [];
  private readonly values: string[] = [];
  private readonly flags: number[] = [];
  private count = 0;

  get length(): number {
    return this.count;
  }

  name(i: number): string {
    return this.names[i] as string;
  }

  value(i: number): string {
    return this.values[i] as string;
  }

  /** Whether field `i` has the FieldFlag `flag`. */
  has(i: number, flag: number): boolean {
    return ((this.flags[i] as number) & flag) !== 0;
  }

  /** Field `i` is not to be forwarded. */
  drop(i: number): void {
    this.flags[i] = (this.flags[i] as number) | FieldFlag.Dropped;
  }

  clear(): void {
    this.count = 0;
  }

  add(name: string, value: string, flags: number): void {
    this.names[this.count] = name;
    this.values[this.count] = value;
    this.flags[this.count] = flags;
    this.count++;
  }
}

/**
 * Decoder for one connection's request header blocks. The table's size bound is the
 * SETTINGS_HEADER_TABLE_SIZE the client's encoder was told (the upstream's), in force once the
 * client acknowledged it.
 */
export class HpackDecoder {
  private readonly reader = new BlockReader();
  /** Fields of the last block (those within the limits), in order. */
  readonly fields = new FieldList();
  private decodedSize = 0;
  private incomplete = false;

  /** Decoded size of the last block's header list (RFC 9113 6.5.2: name + value + 32 each). */
  get listSize(): number {
    return this.decodedSize;
  }

  /** The last block went over the limits given to decode(): its fields are incomplete. */
  get overLimit(): boolean {
    return this.incomplete;
  }

  /** The SETTINGS_HEADER_TABLE_SIZE the client's encoder must now respect. */
  setAllowedTableSize(size: number): void {
    this.reader.setAllowedTableSize(size);
  }

  /** The dynamic table, newest entry first, and its size and bound (diagnostics, tests). */
  snapshot(): { entries: Array<[string, string]>; size: number; maxSize: number } {
    const table = this.reader.table;
    const entries: Array<[string, string]> = [];
    for (let i = 0; i < table.length; i++) entries.push([table.name(i), table.value(i)]);
    return { entries, size: table.size, maxSize: table.maxSize };
  }

  /**
   * Decodes a whole header block. Every block must be decoded, in order, even one that is then
   * refused: the table changes it makes are shared state. Fields past `maxListSize` or
   * `maxCount` are not kept (`overLimit`), but the block is still decoded to its end.
   */
  decode(src: Buffer, start: number, end: number, maxListSize: number, maxCount: number): void {
    const reader = this.reader;
    const fields = this.fields;
    fields.clear();
    this.decodedSize = 0;
    this.incomplete = false;
    reader.begin(src, start, end);
    for (;;) {
      const representation = reader.next();
      if (representation === Representation.End) break;
      const index = reader.index;
      let name: string;
      let value: string;
      let flags = 0;
      if (representation === Representation.Indexed) {
        if (index <= STATIC_COUNT) {
          name = STATIC_NAMES[index] as string;
          value = STATIC_VALUES[index] as string;
          flags = FieldFlag.StaticName | FieldFlag.StaticField;
        } else {
          name = reader.nameAt(index);
          value = reader.valueAt(index);
        }
      } else {
        if (index === 0) name = reader.readString();
        else if (index <= STATIC_COUNT) {
          name = STATIC_NAMES[index] as string;
          flags = FieldFlag.StaticName;
        } else name = reader.nameAt(index);
        value = reader.readString();
        if (representation === Representation.Incremental)
          reader.insert(name, value, name.length + value.length + ENTRY_OVERHEAD);
        else if (representation === Representation.NeverIndexed) flags |= FieldFlag.NeverIndexed;
      }
      this.decodedSize += name.length + value.length + ENTRY_OVERHEAD;
      if (this.incomplete) continue;
      if (this.decodedSize > maxListSize || fields.length >= maxCount) {
        this.incomplete = true;
        continue;
      }
      fields.add(name, value, flags);
    }
    reader.finish();
  }
}

/**
 * Follows the upstream's encoder through response header blocks and returns each block's
 * `:status`, building no string but names, `:status` and `content-type` values: the other
 * values enter the table empty, with their size. Its bound is the client's
 * SETTINGS_HEADER_TABLE_SIZE in force.
 */
export class ResponseStatusReader {
  private readonly reader = new BlockReader();
  private json = false;
  /** The last content-type value judged, and whether it is JSON (a table entry's is reused). */
  private contentType = '';
  private contentTypeJson = false;

  /** Whether the last block read changed the table (an insertion or a size update). */
  get changedTable(): boolean {
    return this.reader.changedTable;
  }

  /** Whether the last block's first `content-type` is JSON (streaming.ts, isJsonMediaType). */
  get jsonContent(): boolean {
    return this.json;
  }

  setAllowedTableSize(size: number): void {
    this.reader.setAllowedTableSize(size);
  }

  /** Entries in the table and their total size (diagnostics, tests). */
  snapshot(): { length: number; size: number } {
    return { length: this.reader.table.length, size: this.reader.table.size };
  }

  /** The block's `:status` (0 when it has none: trailers). Throws HpackError. */
  read(src: Buffer, start: number, end: number): number {
    const reader = this.reader;
    reader.begin(src, start, end);
    let status = 0;
    /** 0 until the block's first content-type, then 1 (JSON) or -1. */
    let json = 0;
    for (;;) {
      const representation = reader.next();
      if (representation === Representation.End) break;
      const index = reader.index;
      let code = 0;
      if (representation === Representation.Indexed) {
        if (index <= STATIC_COUNT) {
          code = STATIC_STATUS[index] as number;
          if (index === CONTENT_TYPE_INDEX && json === 0) json = -1;
        } else {
          const name = reader.nameAt(index);
          if (name === ':status') code = statusCode(reader.valueAt(index));
          else if (name === 'content-type' && json === 0)
            json = this.isJson(reader.valueAt(index)) ? 1 : -1;
        }
      } else {
        const name = index === 0 ? reader.readString() : reader.nameAt(index);
        const incremental = representation === Representation.Incremental;
        let value = '';
        let valueLength: number;
        if (name === ':status') {
          value = reader.readString();
          valueLength = value.length;
          code = statusCode(value);
        } else if (name === 'content-type') {
          value = reader.readString();
          valueLength = value.length;
          if (json === 0) json = this.isJson(value) ? 1 : -1;
        } else {
          valueLength = reader.skipString(incremental);
        }
        if (incremental) reader.insert(name, value, name.length + valueLength + ENTRY_OVERHEAD);
      }
      if (status === 0 && code > 0) status = code;
    }
    this.json = json === 1;
    reader.finish();
    return status;
  }

  private isJson(contentType: string): boolean {
    if (contentType !== this.contentType) {
      this.contentType = contentType;
      this.contentTypeJson = isJsonMediaType(contentType);
    }
    return this.contentTypeJson;
  }
}

/** A `:status` value's code; -1 when it is not three digits. */
function statusCode(value: string): number {
  if (value.length !== 3) return -1;
  let code = 0;
  for (let i = 0; i < 3; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    code = code * 10 + d;
  }
  return code;
}
