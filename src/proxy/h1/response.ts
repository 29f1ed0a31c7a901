/**
 * The apiserver's response heads, read only for what the splice needs: the status, how the
 * body is framed (RFC 9112 §6.3) and whether the connection closes after it. The bytes
 * themselves pass to the client unchanged; the head is rebuilt only to add `Connection: close`.
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

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: |$)/;
const DECIMAL = /^\d{1,15}$/;

export interface ResponseHead {
  readonly status: number;
  readonly framing: Framing;
  /** Body length for Framing.Length. */
  readonly length: number;
  /** The apiserver closes the connection after this response. */
  readonly close: boolean;
}

/** Reads the response head `buf[0, length)` to a request with `method`. */
export function parseResponseHead(buf: Buffer, length: number, method: string): ResponseHead {
  const text = buf.toString('latin1', 0, length - 4);
  let end = text.indexOf('\r\n');
  if (end < 0) end = text.length;
  const line = STATUS_LINE.exec(text.slice(0, end));
  if (line === null) throw protocolError('malformed status line');
  const status = Number(line[1]);
  let contentLength = -1;
  let chunked = false;
  let transferEncoding = false;
  let close = false;
  while (end < text.length) {
    const start = end + 2;
    end = text.indexOf('\r\n', start);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', start);
    if (colon < 0 || colon > end) throw protocolError('a header line without a colon');
    // Only three names matter here: the others (most of an apiserver's) are told apart by
    // their length, without a lower-cased copy of each (bench h1: 3.5% of the proxy's CPU).
    const nameLength = colon - start;
    if (nameLength !== 14 && nameLength !== 17 && nameLength !== 10) continue;
    const name = text.slice(start, colon).toLowerCase();
    if (name === 'content-length') {
      const value = text.slice(colon + 1, end).trim();
      if (!DECIMAL.test(value) || (contentLength >= 0 && Number(value) !== contentLength))
        throw protocolError('malformed Content-Length');
      contentLength = Number(value);
    } else if (name === 'transfer-encoding') {
      transferEncoding = true;
      const codings = text.slice(colon + 1, end).split(',');
      chunked = codings[codings.length - 1]?.trim().toLowerCase() === 'chunked';
    } else if (name === 'connection') {
      close ||= text
        .slice(colon + 1, end)
        .split(',')
        .some((token) => token.trim().toLowerCase() === 'close');
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
    close: close || framing === Framing.Close || line[0].startsWith('HTTP/1.0'),
  };
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
