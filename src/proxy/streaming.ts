/**
 * Long-running requests (watches, logs -f): they stream with no buffering and no timeout, are
 * ended cleanly on shutdown and stay out of the latency histogram. A cut watch is told why.
 *
 * `watch` and `follow` are read as kube-apiserver reads them: booleans decoded from the first
 * value of the query parameter (Go's url.ParseQuery), false only for "0" or "false" in any
 * case (apimachinery/pkg/runtime/conversion.go, Convert_Slice_string_To_bool), so `?watch`,
 * `watch=1` and `watch=True` are watches. The deprecated `/api/v1/watch/…` paths are not
 * looked for: every request would pay a scan of its path for them.
 */
import { Buffer } from 'node:buffer';
import type { StatusResponse } from './status.js';

/** A query that may hold `watch` or `follow` (an escape may spell either): worth reading. */
const MAY_STREAM = /watch|follow|%/;

export function isStreamingRequest(path: string): boolean {
  const query = queryOf(path);
  return query !== null && (queryFlag(query, 'watch') || queryFlag(query, 'follow'));
}

export function isWatchRequest(path: string): boolean {
  const query = queryOf(path);
  return query !== null && queryFlag(query, 'watch');
}

/** The query of an origin-form target, or null when it has none or none worth reading. */
function queryOf(path: string): string | null {
  const q = path.indexOf('?');
  if (q < 0) return null;
  const query = path.slice(q + 1);
  return MAY_STREAM.test(query) ? query : null;
}

/** The boolean parameter `name`: the first pair whose key is `name` decides. */
function queryFlag(query: string, name: string): boolean {
  for (let start = 0; start < query.length; ) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    const value = pairValue(query, start, end, name);
    if (value !== null) return value !== '0' && value.toLowerCase() !== 'false';
    start = end + 1;
  }
  return false;
}

/**
 * The value of the pair `query[start, end)` when its key is `name`; null when it is not, or
 * when Go drops the pair (a semicolon in it, a malformed escape).
 */
function pairValue(query: string, start: number, end: number, name: string): string | null {
  let eq = query.indexOf('=', start);
  if (eq < 0 || eq > end) eq = end;
  // An escape only shortens a key, and '+' turns into a space: a key of the name's length
  // matches only as it is.
  if (eq - start === name.length) {
    if (!query.startsWith(name, start)) return null;
  } else {
    const percent = query.indexOf('%', start);
    if (eq - start < name.length || percent < 0 || percent >= eq) return null;
    if (unescapeQuery(query.slice(start, eq)) !== name) return null;
  }
  const semicolon = query.indexOf(';', start);
  if (semicolon >= 0 && semicolon < end) return null;
  return eq < end ? unescapeQuery(query.slice(eq + 1, end)) : '';
}

/**
 * url.QueryUnescape, byte for byte (one char per byte): '+' is a space; a malformed escape makes
 * Go drop the whole pair (null here).
 */
function unescapeQuery(text: string): string | null {
  if (!text.includes('%') && !text.includes('+')) return text;
  if (/%(?![0-9A-Fa-f]{2})/.test(text)) return null;
  return text
    .replaceAll('+', ' ')
    .replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
}

/**
 * Whether a watch response's Content-Type is JSON: newline-delimited `{"type":…,"object":…}`
 * events that can take an ERROR event of the proxy's own. The apiserver labels JSON watches
 * `application/json` and every other encoding differently (`…;stream=watch`,
 * `application/cbor-seq`; apiserver/pkg/endpoints/handlers/watch.go, serveWatchHandler).
 */
export function isJsonMediaType(contentType: string): boolean {
  const semicolon = contentType.indexOf(';');
  const type = semicolon < 0 ? contentType : contentType.slice(0, semicolon);
  return type.trim().toLowerCase() === 'application/json';
}

/**
 * The last event of a JSON watch the proxy cuts: ERROR with the Status, as the apiserver
 * itself ends a watch it cannot continue (a 410 Expired, for one).
 */
export function watchErrorEvent(status: StatusResponse): Buffer {
  return Buffer.from(`{"type":"ERROR","object":${status.body}}\n`, 'utf8');
}
