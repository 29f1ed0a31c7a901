/**
 * Long-running requests (watches, logs -f): they stream with no buffering and no timeout, are
 * ended cleanly on shutdown and stay out of the latency histogram. A cut watch is told why.
 *
 * Read as kube-apiserver reads them: `watch` and `follow` are booleans decoded from the first
 * value of the query parameter, false only for "0" or "false" in any case
 * (apimachinery/pkg/runtime/conversion.go, Convert_Slice_string_To_bool), so `?watch`,
 * `watch=1` and `watch=True` are watches; and the legacy `/api/v1/watch/…` and
 * `/apis/GROUP/VERSION/watch/…` paths (with a resource after `watch/`) are watches whatever the query
 * (apiserver/pkg/endpoints/request/requestinfo.go).
 */
import { Buffer } from 'node:buffer';
import type { StatusResponse } from './status.js';

const LEGACY_WATCH_PATH = /^\/(?:api\/[^/?]+|apis\/[^/?]+\/[^/?]+)\/watch\/[^/?]/;

export function isStreamingRequest(path: string): boolean {
  return isWatchRequest(path) || queryFlag(path, 'follow');
}

export function isWatchRequest(path: string): boolean {
  return queryFlag(path, 'watch') || LEGACY_WATCH_PATH.test(path);
}

/**
 * The boolean query parameter `name` of an origin-form target, as Go's url.ParseQuery and the
 * apiserver's conversion read it. Targets that cannot hold it are answered without a split.
 */
function queryFlag(path: string, name: string): boolean {
  const q = path.indexOf('?');
  if (q < 0) return false;
  const query = path.slice(q + 1);
  const escaped = query.includes('%');
  if (!escaped && !query.includes(name)) return false;
  for (const pair of query.split('&')) {
    // Go's ParseQuery drops a pair with a semicolon (an error it reports and the apiserver ignores).
    if (pair.includes(';')) continue;
    const eq = pair.indexOf('=');
    const key = unescapeQuery(eq < 0 ? pair : pair.slice(0, eq), escaped);
    if (key !== name) continue;
    const value = unescapeQuery(eq < 0 ? '' : pair.slice(eq + 1), true);
    if (value === null) continue;
    return value !== '0' && value.toLowerCase() !== 'false';
  }
  return false;
}

/**
 * url.QueryUnescape, byte for byte (one char per byte): '+' is a space; a malformed escape makes
 * Go drop the whole pair (null here).
 */
function unescapeQuery(text: string, escaped: boolean): string | null {
  if (!escaped && !text.includes('+')) return text;
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
