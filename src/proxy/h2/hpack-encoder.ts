/**
 * The HPACK encoder (RFC 7541) for the request header blocks the relay sends upstream, and the
 * table-free encoding of the answers it gives the client itself.
 */
import {
  DEFAULT_TABLE_SIZE,
  ENTRY_OVERHEAD,
  HeaderTable,
  STATIC_COUNT,
  STATIC_FULL,
  STATIC_NAME,
} from './hpack-table.js';

/** How the encoder writes one field. */
const Indexing = {
  /** Full match indexed, else a literal added to the table (the default). */
  Incremental: 0,
  /** Literal, table untouched (values that change on every request). */
  Without: 1,
  /** Literal that no intermediary may ever index (credentials). */
  Never: 2,
} as const;
type Indexing = (typeof Indexing)[keyof typeof Indexing];

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
  private readonly table = new HeaderTable(DEFAULT_TABLE_SIZE);
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
   * The peer's decoder now allows `limit` octets: the table shrinks (or grows) to fit, up to
   * the default size.
   */
  setLimit(limit: number): void {
    const size = Math.min(limit, DEFAULT_TABLE_SIZE);
    if (size === this.table.maxSize && this.pendingSize < 0) return;
    this.table.setMaxSize(size, this.onEvict);
    this.pendingMin = this.pendingMin < 0 ? size : Math.min(this.pendingMin, size);
    this.pendingSize = size;
  }

  /** Upper bound of the octets encodeRequestField() writes for this field. */
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
   * its name (see NAME_POLICY), never when the client sent it so. Literals are not
   * Huffman-coded. Returns the position after it.
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
      if (nameIndex === 0) pos = writeRawString(out, pos, name);
      pos = writeRawString(out, pos, value);
      this.insert(name, value, entrySize);
      return pos;
    }
    pos = writeInteger(out, pos, nameIndex, 4, indexing === Indexing.Never ? 0x10 : 0);
    if (nameIndex === 0) pos = writeRawString(out, pos, name);
    return writeRawString(out, pos, value);
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
