/**
 * `npm run build && node dist/bench/crl-tool.js [--entries N] [--rounds R] [--peculiar-rounds P]
 * [--part encoders|binary]`: what the CRL tool costs for a big CRL (bench/README.md, "CRL tool").
 *
 * 1. Encoding a CRL of N entries (random 16-byte serials, a reason code each, ECDSA P-256) with
 *    the project's encoder (pki/crl-encoder.ts) and with @peculiar/x509's X509CrlGenerator (P
 *    rounds, default 1: its time grows with the square of N), and reading it back with the
 *    project's reader and with @peculiar/x509's X509Crl; in-process, median of R rounds, wall
 *    time.
 * 2. The real binary on that many entries: `crl revoke --serial-file` (N new entries into a new
 *    CRL), `crl renew`, `crl revoke --serial` (one more), `crl list -o json`; wall time of each
 *    process, median of R rounds (each round starts from no CRL).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { Authority } from '../src/demo/pki-factory.js';
import { parseCertificate } from '../src/pki/certificate.js';
import { parseCrl } from '../src/pki/crl.js';
import { crlSignerFor, encodeCrl, encodeRevokedEntries } from '../src/pki/crl-encoder.js';
import { serialBytes } from '../src/pki/revocation-set.js';
import { median } from './measure/stats.js';

const BIN = fileURLToPath(new URL('../../bin/kube-crl-proxy', import.meta.url));

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
    'peculiar-rounds': { type: 'string', default: '1' },
    part: { type: 'string' },
  },
});
const N = Number(values.entries);
const ROUNDS = Number(values.rounds);
const PECULIAR_ROUNDS = Number(values['peculiar-rounds']);

function ms(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function timed<T>(run: () => T | Promise<T>): Promise<[number, T]> {
  const started = process.hrtime.bigint();
  const result = await run();
  return [ms(started), result];
}

function randomSerials(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[0] = ((bytes[0] as number) & 0x7f) | 0x10;
    out.push(Buffer.from(bytes).toString('hex'));
  }
  return out;
}

interface Row {
  readonly what: string;
  readonly times: number[];
  note: string;
}

async function encoders(ca: Authority, serials: readonly string[]): Promise<Row[]> {
  const rows: Row[] = [
    { what: `project encoder: ${N} entries, sign (ecdsa-with-SHA256)`, times: [], note: '' },
    { what: `@peculiar/x509 X509CrlGenerator.create: ${N} entries`, times: [], note: '' },
    { what: 'project reader (parseCrl) of that CRL', times: [], note: '' },
    { what: '@peculiar/x509 new X509Crl() of that CRL', times: [], note: '' },
  ];
  const [own, theirs, ownRead, theirRead] = rows as [Row, Row, Row, Row];
  const now = Math.floor(Date.now() / 1000) * 1000;
  const cert = parseCertificate(ca.cert.der);
  for (let round = 0; round < ROUNDS; round++) {
    const [ownMs, der] = await timed(() =>
      encodeCrl(
        {
          issuerDer: cert.subjectDer,
          thisUpdate: now,
          nextUpdate: now + 7 * 86_400_000,
          crlNumber: 1n,
          authorityKeyId: Buffer.from(cert.subjectKeyId ?? '', 'hex'),
          revoked: [
            encodeRevokedEntries(
              serials.map((s) => ({ serial: serialBytes(s), revokedAt: now, reason: 1 })),
            ),
          ],
        },
        crlSignerFor(ca.cert.privateKey),
      ),
    );
    own.times.push(ownMs);
    own.note = `${(der.length / 1e6).toFixed(1)} MB DER`;
    ownRead.times.push((await timed(() => parseCrl(der)))[0]);
    try {
      theirRead.times.push((await timed(() => new x509.X509Crl(der)))[0]);
    } catch (err) {
      theirRead.note = `failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (round >= PECULIAR_ROUNDS) continue;
    try {
      const [peculiarMs, crl] = await timed(() =>
        x509.X509CrlGenerator.create({
          issuer: new x509.Name(cert.subjectDer).toString(),
          thisUpdate: new Date(now),
          nextUpdate: new Date(now + 7 * 86_400_000),
          signingKey: ca.cert.cryptoKeys.privateKey,
          signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
          entries: serials.map((s) => ({
            serialNumber: s,
            revocationDate: new Date(now),
            reason: x509.X509CrlReason.keyCompromise,
          })),
        }),
      );
      theirs.times.push(peculiarMs);
      theirs.note = `${(crl.rawData.byteLength / 1e6).toFixed(1)} MB DER`;
    } catch (err) {
      theirs.note = `failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return rows;
}

function binary(args: string[]): void {
  execFileSync(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
    maxBuffer: 1 << 30,
    timeout: 600_000,
  });
}

function tool(ca: Authority, serials: readonly string[]): Row[] {
  const dir = mkdtempSync(join(tmpdir(), 'kcp-bench-crl-'));
  try {
    const caCert = join(dir, 'ca.crt');
    const caKey = join(dir, 'ca.key');
    const serialFile = join(dir, 'serials.txt');
    writeFileSync(caCert, ca.certPem);
    writeFileSync(caKey, ca.cert.keyPem, { mode: 0o600 });
    writeFileSync(serialFile, `${serials.join('\n')}\n`);
    const rows: Row[] = [
      { what: `crl revoke --serial-file (${N} new entries, new CRL)`, times: [], note: '' },
      { what: `crl renew (${N} entries)`, times: [], note: '' },
      { what: `crl revoke --serial (1 new entry on ${N})`, times: [], note: '' },
      { what: `crl list -o json (${N + 1} entries)`, times: [], note: '' },
      { what: 'node bin/kube-crl-proxy --version (process start, for scale)', times: [], note: '' },
    ];
    for (let round = 0; round < ROUNDS; round++) {
      const crl = join(dir, `round-${round}.crl`);
      const signing = [`--ca-cert=${caCert}`, `--ca-key=${caKey}`, `--crl=${crl}`];
      const steps: string[][] = [
        ['crl', 'revoke', `--serial-file=${serialFile}`, '--reason=keyCompromise', ...signing],
        ['crl', 'renew', ...signing],
        ['crl', 'revoke', '--serial=ABCDEF', ...signing],
        ['crl', 'list', crl, '-o', 'json'],
        ['--version'],
      ];
      steps.forEach((args, i) => {
        const started = process.hrtime.bigint();
        binary(args);
        rows[i]?.times.push(ms(started));
      });
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function table(title: string, rows: readonly Row[]): string {
  const lines = rows.map((r) => {
    const value = r.times.length === 0 ? '—' : `${median(r.times).toFixed(0)} ms`;
    const all = r.times.map((t) => t.toFixed(0)).join(', ');
    return `| ${r.what} | ${value} | ${all} | ${r.note} |`;
  });
  return `${title}\n\n| step | median | rounds (ms) | note |\n| --- | --- | --- | --- |\n${lines.join('\n')}\n`;
}

const ca = await Authority.create({ commonName: 'bench-ca' });
const serials = randomSerials(N);
process.stdout.write(`node ${process.version}, ${N} entries, ${ROUNDS} rounds\n\n`);
if (values.part !== 'binary') {
  process.stdout.write(`${table('In process', await encoders(ca, serials))}\n`);
}
if (values.part !== 'encoders') {
  process.stdout.write(table('The binary (wall time per process)', tool(ca, serials)));
}
