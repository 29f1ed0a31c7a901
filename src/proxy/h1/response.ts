/**
 * The apiserver's response heads, read only for what the splice needs: the status, how the
 * body is framed (RFC 9112 §6.3) and whether the connection persists after it (§9.3). The
 * bytes themselves pass to the client unchanged; the head is rebuilt only to add
 * `Connection: close`.
 */
import { Buffer } from 'node:buffer';
import { UpstreamError } from '../../errors.js';

export const Framing = {
  /** No body (HEAD, 1xx, 204, 304). */
  None: 0,
  Length: 1,
  Chunked: 2,
  /** Until the connection closes. */
  Close: 3,
} as const;
export type Framing = (typeof Framing)[keyof typeof Framing];

/** A response head larger than this is not the apiserver's. */
export const MAX_RESPONSE_HEAD = 1 << 20;

const CR = 0x0d;
const LF = 0x0a;
const COMMA = 0x2c;
const HTTP_1 = Buffer.from('HTTP/1.', 'latin1');
const CHUNKED = Buffer.from('chunked', 'latin1');
const CLOSE = Buffer.from('close', 'latin1');
const KEEP_ALIVE = Buffer.from('keep-alive', 'latin1');
const COLON = 0x3a;

/** Header names this reader acts on, lower-case bytes. */
const CONTENT_LENGTH = Buffer.from('content-length', 'latin1');
const TRANSFER_ENCODING = Buffer.from('transfer-encoding', 'latin1');
const CONNECTION = Buffer.from('connection', 'latin1');

export interface ResponseHead {
  readonly status: number;
  readonly framing: Framing;
  /** Body length for Framing.Length. */
  readonly length: number;
  /** The apiserver closes the connection after this response. */
  readonly close: boolean;
  /**
   * Connection lists `keep-alive`: what lets an HTTP/1.0 connection persist (Go's server sends
   * it to an HTTP/1.0 request that asked for it, when the response's length is known).
   */
  readonly keepAlive: boolean;
}

/**
 * Reads the response head `buf[0, length)` to a request with `method`, on the bytes: only the
 * three names that matter are looked at (Content-Length's value read as digits in place),
 * so the usual response costs no string at all (a string per line and a lower-cased copy
 * per name stood out in the HTTP/1.1 CPU profile: bench/README.md#figures-behind-design-choices-in-src).
 */
export function parseResponseHead(buf: Buffer, length: number, method: string): ResponseHead {
  const headEnd = length - 4;
  let end = lineEnd(buf, 0, headEnd);
  const status = statusOf(buf, end);
  let contentLength = -1;
  let chunked = false;
  let transferEncoding = false;
  let close = false;
  let keepAlive = false;
  while (end < headEnd) {
    const start = end + 2;
    // One pass over the line for its colon and its end (a native indexOf per line, twice,
    // cost more than the walk over an apiserver's short lines).
    let colon = -1;
    end = start;
    for (; end < headEnd; end++) {
      const c = buf[end];
      if (c === COLON) {
        if (colon < 0) colon = end;
      } else if (c === CR && buf[end + 1] === LF) break;
    }
    if (colon < 0) throw protocolError('a header line without a colon');
    if (nameIs(buf, start, colon, CONTENT_LENGTH)) {
      const value = decimalValue(buf, colon + 1, end);
      if (value < 0 || (contentLength >= 0 && value !== contentLength))
        throw protocolError('malformed Content-Length');
      contentLength = value;
    } else if (nameIs(buf, start, colon, TRANSFER_ENCODING)) {
      transferEncoding = true;
      chunked = hasToken(buf, colon + 1, end, CHUNKED, true);
    } else if (nameIs(buf, start, colon, CONNECTION)) {
      close ||= hasToken(buf, colon + 1, end, CLOSE, false);
      keepAlive ||= hasToken(buf, colon + 1, end, KEEP_ALIVE, false);
    }
  }
  let framing: Framing;
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) framing = Framing.None;
  else if (transferEncoding) framing = chunked ? Framing.Chunked : Framing.Close;
  else if (contentLength >= 0) framing = Framing.Length;
  else framing = Framing.Close;
  return {
    status,
    framing,
    length: contentLength,
    close: close || framing === Framing.Close || (buf[7] === 0x30 && !keepAlive),
    keepAlive,
  };
}

/** Where the line from `start` ends: its CRLF (a bare CR is part of the line), or `headEnd`. */
function lineEnd(buf: Buffer, start: number, headEnd: number): number {
  let end = start;
  while (end < headEnd && !(buf[end] === CR && buf[end + 1] === LF)) end++;
  return end;
}

/**
 * Whether the comma-separated list `buf[from, to)` holds `lower` (only as its last element
 * when `lastOnly`), each element trimmed as String#trim trims latin1 text and compared with
 * ASCII letters folded: what splitting, trimming and lower-casing the value as a string gave.
 */
function hasToken(
  buf: Buffer,
  from: number,
  to: number,
  lower: Buffer,
  lastOnly: boolean,
): boolean {
  let start = from;
  for (;;) {
    let end = start;
    while (end < to && buf[end] !== COMMA) end++;
    if (!lastOnly || end === to) {
      let s = start;
      let e = end;
      while (s < e && isTrimmed(buf[s] as number)) s++;
      while (e > s && isTrimmed(buf[e - 1] as number)) e--;
      if (nameIs(buf, s, e, lower)) return true;
    }
    if (end === to) return false;
    start = end + 1;
  }
}

/** Whether `buf` starts with exactly `bytes` (case included). */
function startsWith(buf: Buffer, bytes: Buffer): boolean {
  if (buf.length < bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[i] !== bytes[i]) return false;
  return true;
}

/** White space String#trim removes, among latin1 characters. */
function isTrimmed(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;
}

/** The status of `HTTP/1.0 ` or `HTTP/1.1 `, three digits, then a space or the line's end. */
function statusOf(buf: Buffer, lineEnd: number): number {
  if (
    lineEnd < 12 ||
    !startsWith(buf, HTTP_1) ||
    (buf[7] !== 0x30 && buf[7] !== 0x31) ||
    buf[8] !== 0x20 ||
    (lineEnd > 12 && buf[12] !== 0x20)
  )
    throw protocolError('malformed status line');
  let status = 0;
  for (let i = 9; i < 12; i++) {
    const d = (buf[i] as number) - 0x30;
    if (d < 0 || d > 9) throw protocolError('malformed status line');
    status = status * 10 + d;
  }
  return status;
}

/** Whether `buf[start, end)` is `lower` in any case (ASCII letters only are folded). */
function nameIs(buf: Buffer, start: number, end: number, lower: Buffer): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const c = buf[start + i] as number;
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== lower[i]) return false;
  }
  return true;
}

/** 1 to 15 decimal digits between optional spaces and tabs, or -1. */
function decimalValue(buf: Buffer, start: number, end: number): number {
  let from = start;
  let to = end;
  while (from < to && (buf[from] === 0x20 || buf[from] === 0x09)) from++;
  while (to > from && (buf[to - 1] === 0x20 || buf[to - 1] === 0x09)) to--;
  if (to === from || to - from > 15) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const d = (buf[i] as number) - 0x30;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

/**
 * The first Content-Type of the response head `buf[0, length)`, or ''. Read only for
 * streaming responses, off the per-response path.
 */
export function contentTypeOf(buf: Buffer, length: number): string {
  const lines = buf.toString('latin1', 0, length - 4).split('\r\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === 'content-type')
      return line.slice(colon + 1).trim();
  }
  return '';
}

/**
 * The head `buf[0, length)` with `Connection: close` in place of any Connection and Keep-Alive
 * lines (a response on a connection being wound down).
 */
export function withConnectionClose(buf: Buffer, length: number): Buffer {
  const lines = buf.toString('latin1', 0, length - 4).split('\r\n');
  const kept = lines.filter((line, i) => {
    if (i === 0) return true;
    const name = line.slice(0, line.indexOf(':')).trim().toLowerCase();
    return name !== 'connection' && name !== 'keep-alive';
  });
  kept.push('Connection: close', '', '');
  return Buffer.from(kept.join('\r\n'), 'latin1');
}

function protocolError(problem: string): UpstreamError {
  return new UpstreamError('protocol', `invalid response from the apiserver: ${problem}`);
}
