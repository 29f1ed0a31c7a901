/**
 * The one PEM/DER reader: every certificate, key and CRL file goes through `readBlocks`.
 */
import { DerError, readTlv, Tag } from './der.js';

export class PemError extends Error {
  readonly code = 'ERR_PEM';
  constructor(message: string) {
    super(message);
    this.name = 'PemError';
  }
}

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/=\s]*$/;

function looksLikePem(bytes: Buffer): boolean {
  return bytes.includes('-----BEGIN ');
}

/**
 * All blocks in a file, PEM (any number of blocks, text between them ignored as openssl
 * does) or DER (one or more concatenated top-level SEQUENCEs). Blocks whose label is not in
 * `labels` are skipped; an empty result is left to the caller to judge.
 */
export function readBlocks(bytes: Buffer, labels: readonly string[]): PemBlock[] {
  if (looksLikePem(bytes)) return readPemBlocks(bytes.toString('latin1'), labels);
  if (bytes.length > 0 && bytes[0] === Tag.sequence)
    return readDerBlocks(bytes, labels[0] ?? 'DER');
  return [];
}

function readPemBlocks(text: string, labels: readonly string[]): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const [, begin, body = '', end] = match;
    if (begin !== end) throw new PemError(`PEM block BEGIN ${begin} ends with END ${end}`);
    if (begin === undefined || !labels.includes(begin)) continue;
    if (!BASE64_BODY.test(body)) {
      throw new PemError(`PEM block ${begin} has headers or characters outside base64`);
    }
    const der = Buffer.from(body.replace(/\s+/g, ''), 'base64');
    if (der.length === 0) throw new PemError(`PEM block ${begin} is empty`);
    checkSingleElement(der, `PEM block ${begin}`);
    blocks.push({ label: begin, der });
  }
  return blocks;
}

function readDerBlocks(bytes: Buffer, label: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    const element = readTlv(bytes, pos, bytes.length);
    if (element.tag !== Tag.sequence) {
      throw new DerError('expected a SEQUENCE at the top level', pos);
    }
    blocks.push({ label, der: bytes.subarray(element.start, element.end) });
    pos = element.end;
  }
  return blocks;
}

function checkSingleElement(der: Buffer, what: string): void {
  const element = readTlv(der, 0, der.length);
  if (element.end !== der.length) {
    throw new PemError(`${what} has ${der.length - element.end} bytes after its DER element`);
  }
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
