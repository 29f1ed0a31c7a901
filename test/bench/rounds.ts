/** Peers, rounds and a context for the benchmark's bookkeeping tests (no load is run). */
import type { Peer, PeerName } from '../../bench/peers/types.js';
import type { BenchContext } from '../../bench/scenarios/context.js';
import type { Round } from '../../bench/scenarios/throughput.js';

export function peer(name: PeerName): Peer {
  return {
    name,
    port: 0,
    pid: name === 'direct' ? null : 1,
    client: {} as Peer['client'],
    stop: async () => {},
  };
}

export function round(cpuUsPerOp: number | null): Round {
  return {
    ops: 1000,
    seconds: 1,
    proxyCpuSeconds: cpuUsPerOp === null ? null : (cpuUsPerOp * 1000) / 1e6,
    coreBusy: [0.5, 0.5],
    generatorCpuSeconds: 0.1,
    p50Ms: null,
    p99Ms: null,
    failed: 0,
  };
}

export const context = (rounds: number) =>
  ({
    options: { rounds, quick: false, soakMinutes: 0 },
    progress: () => {},
  }) as unknown as BenchContext;
