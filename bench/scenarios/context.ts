/** What every scenario gets: the PKI, the run options, and a way to say what it is doing. */
import type { ScenarioResult } from '../report/results.js';
import type { BenchPki } from '../support/pki.js';
import type { ProxyBuild } from '../support/proxy-build.js';

export interface RunOptions {
  readonly quick: boolean;
  /** Measurements per peer and figure; the median is reported. */
  readonly rounds: number;
  /** Length of the soak (only run when asked for with --only soak). */
  readonly soakMinutes: number;
}

export interface BenchContext {
  readonly pki: BenchPki;
  /** The kube-crl-proxy build under test. */
  readonly build: ProxyBuild;
  readonly options: RunOptions;
  progress(message: string): void;
}

export interface Scenario {
  readonly id: string;
  /** One line for --help. */
  readonly summary: string;
  run(ctx: BenchContext): Promise<ScenarioResult[]>;
}
