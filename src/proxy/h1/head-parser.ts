/**
 * HTTP/1.1 heads read strictly (RFC 9112): CRLF line ends only, token header names with no
 * whitespace before the colon, no obs-fold, no control characters in values, one Host, one
 * Content-Length or `Transfer-Encoding: chunked` (never both). Whatever could be read two ways
 * by two parsers is refused, so the head the proxy rebuilds is the only reading there is.
 * The tolerances are llhttp's (Node's parser, which this replaces): empty lines before a
 * request line, several spaces between its parts, and a line without a version (HTTP/0.9
 * style, answered as HTTP/1.0).
 */
import type { Buffer } from 'node:buffer';
import { RequestFramingError } from '../../errors.js';
import { connectionTokens, type HeaderList } from '../headers.js';

const CR = 13;
const LF = 10;

const REQUEST_LINE = /^([A-Z]+) +([\x21-\x7e]+)(?: +HTTP\/1\.([01]))?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values after trimming: visible ASCII, obs-text, and spaces or tabs inside. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const DECIMAL = /^\d{1,15}$/;

/**
 * Finds where a head ends, a read at a time: every LF must follow a CR, and the head (empty
 * lines before its first line included) may not be longer than `maxBytes`.
 */
export class HeadScanner {
  /** Bytes of the head already looked at. */
  private scanned = 0;
  /** Where the current line starts, from the start of the head. */
  private lineStart = 0;
  private sawLine = false;

  constructor(private readonly maxBytes: number) {}

  reset(): void {
    this.scanned = 0;
    this.lineStart = 0;
    this.sawLine = false;
  }

  /**
   * `buf` holds the head so far from its first byte. Returns the length of the head (through
   * its empty line), or -1 when it continues in a later read.
   */
  scan(buf: Buffer): number {
    let pos = this.scanned;
    for (;;) {
      const lf = buf.indexOf(LF, pos);
      if (lf < 0) {
        this.scanned = buf.length;
        if (buf.length > this.maxBytes) throw tooLarge(this.maxBytes);
        return -1;
      }
      if (lf === 0 || buf[lf - 1] !== CR)
        throw new RequestFramingError(400, 'a line of the head ends in a bare LF');
      const empty = lf - 1 === this.lineStart;
      this.lineStart = lf + 1;
      pos = lf + 1;
      if (pos > this.maxBytes) throw tooLarge(this.maxBytes);
      if (!empty) this.sawLine = true;
      else if (this.sawLine) return pos;
    }
  }
}

function tooLarge(maxBytes: number): RequestFramingError {
  return new RequestFramingError(
    431,
    `the request head is larger than ${maxBytes} bytes (--max-header-bytes)`,
  );
}

export interface RequestHead {
  readonly method: string;
  /** The origin-form target, as sent. */
  readonly target: string;
  /** HTTP/1.1 (1) or HTTP/1.0 (0). */
  readonly minor: 0 | 1;
  /** Every field line: name as sent, value without surrounding whitespace. */
  readonly headers: HeaderList;
  readonly host: string | null;
  /** -1 without a Content-Length. */
  readonly contentLength: number;
  readonly chunked: boolean;
  /**
   * The connection closes after this request: `Connection: close`, or HTTP/1.0 without
   * `Connection: keep-alive` (RFC 9112 §9.3; Go's `wantsHttp10KeepAlive`).
   */
  readonly close: boolean;
  /** The Upgrade value of a `Connection: upgrade` request, null for any other request. */
  readonly upgrade: string | null;
  readonly expectContinue: boolean;
  /** The tokens of its Connection fields, lower-cased (the names they list are hop-by-hop). */
  readonly connectionTokens: ReadonlySet<string>;
}

const NO_TOKENS: ReadonlySet<string> = new Set();

/** Whether a body follows the head. */
export function hasBody(head: RequestHead): boolean {
  return head.chunked || head.contentLength > 0;
}

/**
 * Reads the head `buf[0, length)` found by a HeadScanner. Throws RequestFramingError for
 * anything refused.
 */
export function parseRequestHead(buf: Buffer, length: number, maxCount: number): RequestHead {
  const text = buf.toString('latin1', 0, length - 4);
  let start = 0;
  while (text.startsWith('\r\n', start)) start += 2;
  let end = text.indexOf('\r\n', start);
  if (end < 0) end = text.length;
  const line = REQUEST_LINE.exec(text.slice(start, end));
  if (line === null) throw new RequestFramingError(400, 'malformed request line');
  const method = line[1] as string;
  const target = line[2] as string;
  const minor = line[3] === '1' ? 1 : 0;
  const versionless = line[3] === undefined;
  if (method === 'CONNECT')
    throw new RequestFramingError(400, 'CONNECT is not supported (this is not a forward proxy)');
  // Absolute-form and asterisk-form targets are for forward proxies, not an apiserver.
  if (target.charCodeAt(0) !== 0x2f)
    throw new RequestFramingError(400, 'the request target must be a path (origin-form)');

  const headers: HeaderList = [];
  let host: string | null = null;
  let contentLength = -1;
  let transferEncoding: string | null = null;
  let connection = '';
  let upgrade: string | null = null;
  let expectContinue = false;
  while (end < text.length) {
    start = end + 2;
    end = text.indexOf('\r\n', start);
    if (end < 0) end = text.length;
    if (headers.length === maxCount) {
      throw new RequestFramingError(
        431,
        `the request has more than ${maxCount} header fields (--max-header-count)`,
      );
    }
    const [name, value] = fieldLine(text, start, end);
    headers.push([name, value]);
    switch (name.length) {
      case 4:
        if (name.toLowerCase() !== 'host') break;
        if (host !== null) throw new RequestFramingError(400, 'more than one Host header');
        host = value;
        break;
      case 6:
        if (name.toLowerCase() === 'expect')
          expectContinue = value.toLowerCase() === '100-continue';
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') upgrade = value;
        break;
      case 10:
        if (name.toLowerCase() === 'connection')
          connection = connection === '' ? value : `${connection},${value}`;
        break;
      case 14:
        if (name.toLowerCase() !== 'content-length') break;
        if (contentLength >= 0) throw new RequestFramingError(400, 'more than one Content-Length');
        if (!DECIMAL.test(value)) throw new RequestFramingError(400, 'malformed Content-Length');
        contentLength = Number(value);
        break;
      case 17:
        if (name.toLowerCase() !== 'transfer-encoding') break;
        if (transferEncoding !== null)
          throw new RequestFramingError(400, 'more than one Transfer-Encoding');
        transferEncoding = value.toLowerCase();
        break;
    }
  }
  if (transferEncoding !== null) {
    if (transferEncoding !== 'chunked')
      throw new RequestFramingError(400, 'Transfer-Encoding other than chunked');
    if (contentLength >= 0)
      throw new RequestFramingError(400, 'both Transfer-Encoding and Content-Length');
    if (minor === 0) throw new RequestFramingError(400, 'Transfer-Encoding on HTTP/1.0');
  }
  if (host === null && minor === 1) throw new RequestFramingError(400, 'no Host header');
  const tokens = connection === '' ? NO_TOKENS : connectionTokens(connection);
  return {
    method,
    target,
    minor,
    headers,
    host,
    contentLength,
    chunked: transferEncoding !== null,
    close: tokens.has('close') || (minor === 0 && (versionless || !tokens.has('keep-alive'))),
    upgrade: tokens.has('upgrade') ? upgrade : null,
    // RFC 9110 §10.1.1: an HTTP/1.0 request's 100-continue is ignored (Go's server does too).
    expectContinue: expectContinue && minor === 1,
    connectionTokens: tokens,
  };
}

/** A `name: value` line of a head or a trailer section: [name, trimmed value]. */
export function fieldLine(text: string, start: number, end: number): [string, string] {
  const colon = text.indexOf(':', start);
  if (colon < 0 || colon >= end)
    throw new RequestFramingError(400, 'a header line without a colon');
  const name = text.slice(start, colon);
  if (!TOKEN.test(name)) throw new RequestFramingError(400, 'malformed header name');
  let from = colon + 1;
  let to = end;
  while (from < to && isBlank(text.charCodeAt(from))) from++;
  while (to > from && isBlank(text.charCodeAt(to - 1))) to--;
  const value = text.slice(from, to);
  if (!FIELD_VALUE.test(value)) throw new RequestFramingError(400, 'malformed header value');
  return [name, value];
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
