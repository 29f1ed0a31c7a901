/**
 * One fetch of a CRL over HTTP(S): a conditional GET (If-None-Match, If-Modified-Since), at
 * most MAX_REDIRECTS redirects within the same scheme, one deadline for all of it, a size
 * limit, and the body streamed to a file (temporary name, flushed, renamed) with its SHA-256.
 *
 * No proxy is used, whatever the environment says (HTTP_PROXY, NODE_USE_ENV_PROXY): the
 * proxy runs on control-plane nodes, next to the CRL servers it is given, and a revocation
 * feed should not depend on a path nobody configured for it. https:// is verified against
 * --crl-url-ca-file only (no system CAs), hostname or IP included.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename, dirname, join } from 'node:path';
import { errorMessage } from '../errors.js';
import { request as httpRequest } from '../node-http.js';

/** Redirects followed before giving up (Go's http.Client follows 10; a CRL needs few). */
export const MAX_REDIRECTS = 3;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** The validators of the copy in force, sent back so that an unchanged CRL costs a 304. */
export interface Validators {
  readonly etag: string | null;
  readonly lastModified: string | null;
}

export interface FetchOptions {
  /** PEM CAs for https:// (null: https:// is refused). */
  readonly caPem: string | null;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly validators: Validators | null;
  /** Where a fetched body is put (whole, or not at all). */
  readonly destination: string;
  /** Stops the fetch (shutdown). */
  readonly signal?: AbortSignal;
}

export type FetchResult =
  | {
      readonly kind: 'fetched';
      readonly bytes: number;
      readonly sha256: string;
      /** The response's validators, to send with the next fetch. */
      readonly validators: Validators;
    }
  | { readonly kind: 'not_modified' };

/** A fetch that gave no CRL: the message says why (network, status, limits). */
export class FetchError extends Error {
  readonly code = 'ERR_CRL_FETCH';
  constructor(message: string) {
    super(message);
    this.name = 'FetchError';
  }
}

export async function fetchCrl(url: string, options: FetchOptions): Promise<FetchResult> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs);
  const signal =
    options.signal === undefined ? abort.signal : AbortSignal.any([abort.signal, options.signal]);
  try {
    return await fetchWithin(new URL(url), options, signal);
  } catch (err) {
    if (options.signal?.aborted === true) throw new FetchError('stopped');
    if (abort.signal.aborted) {
      throw new FetchError(`no complete answer within ${options.timeoutMs} ms (--crl-url-timeout)`);
    }
    if (err instanceof FetchError) throw err;
    throw new FetchError(errorMessage(err));
  } finally {
    clearTimeout(timer);
  }
}

async function fetchWithin(
  first: URL,
  options: FetchOptions,
  signal: AbortSignal,
): Promise<FetchResult> {
  let url = first;
  for (let redirects = 0; ; redirects++) {
    const response = await get(url, options, signal);
    const status = response.statusCode ?? 0;
    if (REDIRECTS.has(status)) {
      response.resume();
      if (redirects === MAX_REDIRECTS) throw new FetchError(`more than ${MAX_REDIRECTS} redirects`);
      url = redirectTarget(url, response.headers.location);
      continue;
    }
    if (status === 304) {
      response.resume();
      if (options.validators === null)
        throw new FetchError('HTTP 304 to a request that was not conditional');
      return { kind: 'not_modified' };
    }
    if (status !== 200) {
      response.resume();
      throw new FetchError(`HTTP ${status}${redirects > 0 ? ` from ${url.href}` : ''}`);
    }
    const encoding = response.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      response.resume();
      throw new FetchError(`Content-Encoding ${encoding} was not asked for`);
    }
    const length = Number(response.headers['content-length'] ?? Number.NaN);
    if (length > options.maxBytes) {
      response.destroy();
      throw new FetchError(tooLarge(`${length} bytes announced`, options.maxBytes));
    }
    const { bytes, sha256 } = await saveBody(response, options, signal);
    return {
      kind: 'fetched',
      bytes,
      sha256,
      validators: {
        etag: header(response, 'etag'),
        lastModified: header(response, 'last-modified'),
      },
    };
  }
}

/** A redirect's target: resolved against `from`, same scheme, no credentials. */
function redirectTarget(from: URL, location: string | undefined): URL {
  if (location === undefined) throw new FetchError('redirect without a Location');
  let to: URL;
  try {
    to = new URL(location, from);
  } catch {
    throw new FetchError(`redirect to "${location}", which is not a URL`);
  }
  if (to.protocol !== from.protocol) {
    throw new FetchError(`redirect from ${from.protocol} to ${to.protocol} refused (${to.href})`);
  }
  if (to.username !== '' || to.password !== '') {
    throw new FetchError('redirect to a URL with credentials refused');
  }
  return to;
}

function get(url: URL, options: FetchOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const headers: Record<string, string> = {
    'user-agent': 'kube-crl-proxy',
    accept: 'application/pkix-crl, application/x-pkcs7-crl;q=0.9, */*;q=0.1',
  };
  if (options.validators?.etag != null) headers['if-none-match'] = options.validators.etag;
  if (options.validators?.lastModified != null)
    headers['if-modified-since'] = options.validators.lastModified;
  let request: ClientRequest;
  if (url.protocol === 'https:') {
    if (options.caPem === null) throw new FetchError('https:// needs --crl-url-ca-file');
    request = httpsRequest(url, { headers, signal, agent: false, ca: options.caPem });
  } else {
    request = httpRequest(url, { headers, signal, agent: false });
  }
  return new Promise((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
    request.end();
  });
}

function header(response: IncomingMessage, name: string): string | null {
  const value = response.headers[name];
  return typeof value === 'string' && value !== '' ? value : null;
}

function tooLarge(what: string, maxBytes: number): string {
  return `the CRL is larger than --crl-url-max-bytes=${maxBytes} (${what})`;
}

/**
 * Streams the body to a temporary file beside `destination`, counting and hashing it, then
 * flushes and renames it: `destination` holds a whole body or is left as it was.
 */
async function saveBody(
  response: IncomingMessage,
  options: FetchOptions,
  signal: AbortSignal,
): Promise<{ bytes: number; sha256: string }> {
  const { destination, maxBytes } = options;
  const temporary = join(
    dirname(destination),
    `.${basename(destination)}.${process.pid}.${Date.now()}.tmp`,
  );
  const hash = createHash('sha256');
  let bytes = 0;
  let file: FileHandle | null = null;
  try {
    file = await open(temporary, 'wx', 0o644);
    for await (const chunk of response as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        response.destroy();
        throw new FetchError(tooLarge(`more than that sent`, maxBytes));
      }
      hash.update(chunk);
      await file.write(chunk);
    }
    if (signal.aborted) throw new FetchError('aborted');
    if (!response.complete) throw new FetchError('the connection closed before the whole body');
    await file.sync();
    await file.close();
    file = null;
    await rename(temporary, destination);
  } catch (err) {
    await file?.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw err;
  }
  return { bytes, sha256: hash.digest('hex') };
}
