/**
 * `npm run build && node dist/bench/start-rss.js ROUNDS NAME=BIN[:NODE[:FLAG,FLAG…]] …`: the
 * resident memory of kube-crl-proxy builds at start (bench/README.md, "Memory"), for comparing
 * start-up changes without the whole memory scenario.
 *
 * Each variant is the binary BIN (its #! line's environment and node flags, plus FLAGs) run on
 * NODE (default: this node) with the test PKI and an upstream nobody listens on; VmRSS 1.5 s
 * after its "serving" log line. BIN `floor` is node itself running an empty timer with FLAGs:
 * the floor of any process on that node. Rounds alternate the order of the variants; the
 * median and the range of each are printed.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { makePki, proxyArgs, type TestPki } from '../test/support/pki.js';
import { binLauncher, type Launcher } from '../test/support/proxy-process.js';
import { rssBytes } from './measure/proc.js';
import { median } from './measure/stats.js';

interface Variant {
  readonly name: string;
  readonly bin: string;
  readonly node: string;
  readonly flags: readonly string[];
  readonly rss: number[];
}

function parseVariant(spec: string): Variant {
  const at = spec.indexOf('=');
  if (at < 1) throw new Error(`${spec}: NAME=BIN[:NODE[:FLAGS]]`);
  const name = spec.slice(0, at);
  const rest = spec.slice(at + 1);
  const [bin = '', node, flags] = rest.split(':');
  return {
    name,
    bin,
    node: node || process.execPath,
    flags: (flags ?? '').split(',').filter(Boolean),
    rss: [],
  };
}

async function startRss(variant: Variant, pki: TestPki): Promise<number> {
  const floor = variant.bin === 'floor';
  const launcher: Launcher = floor ? { env: {}, nodeFlags: [] } : binLauncher(variant.bin);
  const args = floor
    ? [...variant.flags, '-e', 'console.log("kube-crl-proxy serving"); setInterval(() => {}, 1e3)']
    : [
        ...launcher.nodeFlags,
        ...variant.flags,
        variant.bin,
        ...proxyArgs(pki, 'https://127.0.0.1:1', ['--log-level=info']),
      ];
  const child = spawn(variant.node, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...launcher.env },
  });
  const exited = once(child, 'exit');
  try {
    await new Promise<void>((resolve, reject) => {
      let output = '';
      child.stdout.on('data', (d: Buffer) => {
        output += d;
        if (output.includes('kube-crl-proxy serving')) resolve();
      });
      void exited.then(([code]) => reject(new Error(`${variant.name} exited with ${code}`)));
    });
    await new Promise((r) => setTimeout(r, 1500));
    return rssBytes(child.pid as number);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

async function main(): Promise<void> {
  const [roundsText, ...specs] = process.argv.slice(2);
  const rounds = Number(roundsText);
  if (!Number.isInteger(rounds) || rounds < 1 || specs.length === 0)
    throw new Error('usage: start-rss.js ROUNDS NAME=BIN[:NODE[:FLAG,FLAG…]] …');
  const variants = specs.map(parseVariant);
  const pki = await makePki();
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? variants : [...variants].reverse();
      for (const variant of order) variant.rss.push(await startRss(variant, pki));
    }
  } finally {
    pki.cleanup();
  }
  const mb = (bytes: number) => (bytes / 1048576).toFixed(1);
  for (const { name, rss } of variants) {
    const range = `${mb(Math.min(...rss))}-${mb(Math.max(...rss))}`;
    process.stdout.write(
      `${name}: median ${mb(median(rss))} MB, range ${range} (n=${rss.length})\n`,
    );
  }
}

await main();
