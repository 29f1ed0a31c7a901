/**
 * What makes an HTTP/2 request malformed, checked as nghttp2 checks it on a server
 * (nghttp2_http.c, RFC 9113 8.1.1–8.3.1), so clients see the same answers as when Node's
 * http2 module terminated their connections: a malformed request or trailer section is a stream
 * error (RST_STREAM PROTOCOL_ERROR); a regular field with an invalid name or value (not
 * uppercase) is dropped and the request goes on without it.
 */
import { FieldFlag, type FieldList } from './hpack.js';

/** A lowercase token (RFC 9110 5.6.2 tchar), optionally after the ':' of a pseudo-field. */
const VALID_NAME = /^:?[-!#$%&'*+.^_`|~0-9a-z]+$/;
/** field-vchar, SP and HTAB, neither first nor last whitespace (RFC 9113 8.2.1). */
const VALID_VALUE = /^(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/;
/** A method: a non-empty token. */
const VALID_METHOD = /^[-!#$%&'*+.^_`|~0-9a-zA-Z]+$/;
/** Visible characters and obs-text (nghttp2_check_path). */
const VALID_PATH = /^[\x21-\x7e\x80-\xff]*$/;
/** reg-name / IP-literal characters, port and userinfo (nghttp2_check_authority). */
const VALID_AUTHORITY = /^[-._~!$&'()*+,;=:[\]@%0-9a-zA-Z]*$/;

function hasUppercase(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return true;
  }
  return false;
}

/** Decimal digits only, within 2^53 (nghttp2's parse_uint); -1 otherwise. */
function parseContentLength(value: string): number {
  if (value.length === 0 || value.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Connection-specific fields, forbidden in HTTP/2 (RFC 9113 8.2.2). */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

const SEEN_METHOD = 1;
const SEEN_PATH = 2;
const SEEN_SCHEME = 4;
const SEEN_AUTHORITY = 8;
const SEEN_HOST = 16;

/** What the relay needs to know of a request head. */
export interface RequestHead {
  readonly method: string;
  readonly path: string;
  /** Declared content-length, or -1. */
  readonly contentLength: number;
}

interface Section {
  method: string;
  path: string;
  contentLength: number;
}

/**
 * Checks a request's header section: the head it declares, or null when it is malformed
 * (RST_STREAM PROTOCOL_ERROR). Regular fields with an invalid name or value are marked
 * dropped in `fields`.
 */
export function checkRequest(fields: FieldList): RequestHead | null {
  const head: Section = { method: '', path: '', contentLength: -1 };
  return checkSection(fields, false, head) ? head : null;
}

/**
 * Checks the trailer section of a request whose head declared `contentLength` (-1: none):
 * returns the content length declared now (a trailer may declare one if the head did not), or
 * null when the section is malformed. Invalid regular fields are marked dropped in `fields`.
 */
export function checkTrailers(fields: FieldList, contentLength: number): number | null {
  const head: Section = { method: '', path: '', contentLength };
  return checkSection(fields, true, head) ? head.contentLength : null;
}

/**
 * The checks of either section (`flags` of each field spare checks of static-table names and
 * fields). For trailers, pseudo fields are malformed and `head.contentLength` may be set (a
 * second one is malformed).
 */
function checkSection(fields: FieldList, trailer: boolean, head: Section): boolean {
  let seen = 0;
  let regularSeen = false;
  let scheme = '';
  for (let i = 0; i < fields.length; i++) {
    const name = fields.name(i);
    const value = fields.value(i);
    const pseudo = name.charCodeAt(0) === 0x3a;
    if (!fields.has(i, FieldFlag.StaticName) && !VALID_NAME.test(name)) {
      if (pseudo || hasUppercase(name)) return false;
      fields.drop(i);
      regularSeen = true;
      continue;
    }
    let valueOk: boolean;
    if (fields.has(i, FieldFlag.StaticField)) valueOk = true;
    else if (name === ':method') valueOk = VALID_METHOD.test(value);
    else if (name === ':path') valueOk = VALID_PATH.test(value);
    else if (name === ':authority' || name === 'host') valueOk = VALID_AUTHORITY.test(value);
    else valueOk = VALID_VALUE.test(value);
    if (!valueOk) {
      if (pseudo) return false;
      fields.drop(i);
      regularSeen = true;
      continue;
    }
    if (pseudo) {
      if (trailer || regularSeen) return false;
      let flag: number;
      if (name === ':method') {
        flag = SEEN_METHOD;
        head.method = value;
      } else if (name === ':path') {
        flag = SEEN_PATH;
        head.path = value;
      } else if (name === ':scheme') {
        flag = SEEN_SCHEME;
        scheme = value.toLowerCase();
      } else if (name === ':authority') {
        flag = SEEN_AUTHORITY;
      } else {
        // :status, :protocol (extended CONNECT is not offered) and unknown pseudo-fields.
        return false;
      }
      if (seen & flag || value.length === 0) return false;
      seen |= flag;
      continue;
    }
    regularSeen = true;
    if (name === 'host') {
      if (seen & SEEN_HOST || value.length === 0) return false;
      seen |= SEEN_HOST;
    } else if (name === 'content-length') {
      if (head.contentLength !== -1) return false;
      head.contentLength = parseContentLength(value);
      if (head.contentLength === -1) return false;
    } else if (name === 'te') {
      if (value.toLowerCase() !== 'trailers') return false;
    } else if (CONNECTION_SPECIFIC.has(name)) {
      return false;
    }
  }
  if (trailer) return true;
  if (head.method === 'CONNECT') {
    // RFC 9113 8.5: :authority only.
    if (seen & (SEEN_PATH | SEEN_SCHEME) || !(seen & SEEN_AUTHORITY)) return false;
    head.contentLength = -1;
    return true;
  }
  if ((seen & (SEEN_METHOD | SEEN_PATH | SEEN_SCHEME)) !== (SEEN_METHOD | SEEN_PATH | SEEN_SCHEME))
    return false;
  if (!(seen & (SEEN_AUTHORITY | SEEN_HOST))) return false;
  if (scheme === 'http' || scheme === 'https') {
    const path = head.path;
    const regular = path.charCodeAt(0) === 0x2f;
    const asterisk = path === '*' && head.method === 'OPTIONS';
    if (!regular && !asterisk) return false;
  }
  return true;
}
