/**
 * HPACK's tables (RFC 7541 2.3): the static table and the dynamic table the decoder, the status
 * reader and the encoder each keep. Strings are latin1 (one char per octet), so a string's
 * length is its size in octets.
 */

export const DEFAULT_TABLE_SIZE = 4096;
/** What an entry adds to a table's size beyond its name and value (RFC 7541 4.1). */
export const ENTRY_OVERHEAD = 32;

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
export const STATIC_COUNT = STATIC_TABLE.length - 1;
export const STATIC_NAMES = STATIC_TABLE.map(([name]) => name);
export const STATIC_VALUES = STATIC_TABLE.map(([, value]) => value);
/** name → value → static index, and name → its first static index. */
export const STATIC_FULL = new Map<string, Map<string, number>>();
export const STATIC_NAME = new Map<string, number>();
for (let i = STATIC_COUNT; i >= 1; i--) {
  const [name, value] = STATIC_TABLE[i] as readonly [string, string];
  STATIC_NAME.set(name, i);
  const values = STATIC_FULL.get(name) ?? new Map<string, number>();
  STATIC_FULL.set(name, values);
  values.set(value, i);
}

/**
 * A dynamic table (RFC 7541 2.3.2): a ring buffer of entries, newest first (index 0). Each
 * entry's size is kept apart from its strings, so that a reader that skips values (the status
 * reader) can hold an empty one.
 */
export class HeaderTable {
  private names: string[] = new Array(16);
  private values: string[] = new Array(16);
  private sizes = new Int32Array(16);
  private mask = 15;
  /** Slot the next entry goes to. */
  private head = 0;
  length = 0;
  /** Sum of entry sizes (RFC 7541 4.1). */
  size = 0;
  /** Entries inserted so far: the newest has absolute id `inserted - 1`. */
  inserted = 0;

  constructor(public maxSize: number) {}

  name(index: number): string {
    return this.names[this.slot(index)] as string;
  }

  value(index: number): string {
    return this.values[this.slot(index)] as string;
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
    this.sizes[this.head] = entrySize;
    this.head = (this.head + 1) & this.mask;
    this.length++;
    this.size += entrySize;
    this.inserted++;
  }

  setMaxSize(maxSize: number, onEvict?: (name: string, value: string, id: number) => void): void {
    this.maxSize = maxSize;
    while (this.size > maxSize) this.evict(onEvict);
  }

  private slot(index: number): number {
    return (this.head - 1 - index) & this.mask;
  }

  private evict(onEvict?: (name: string, value: string, id: number) => void): void {
    const slot = (this.head - this.length) & this.mask;
    onEvict?.(this.names[slot] as string, this.values[slot] as string, this.inserted - this.length);
    this.size -= this.sizes[slot] as number;
    this.names[slot] = '';
    this.values[slot] = '';
    this.length--;
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    const names: string[] = new Array(capacity);
    const values: string[] = new Array(capacity);
    const sizes = new Int32Array(capacity);
    for (let i = this.length - 1, j = 0; i >= 0; i--, j++) {
      const slot = this.slot(i);
      names[j] = this.names[slot] as string;
      values[j] = this.values[slot] as string;
      sizes[j] = this.sizes[slot] as number;
    }
    this.names = names;
    this.values = values;
    this.sizes = sizes;
    this.head = this.length;
    this.mask = capacity - 1;
  }
}
