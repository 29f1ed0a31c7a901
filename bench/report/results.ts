/** What a scenario hands back: a printable table, chart points and the raw figures (JSON). */

export type Cell = string | number | null;

export interface Table {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
}

/** A ratio kube-crl-proxy / HAProxy for the chart (lower is better, 1 = parity). */
export interface Ratio {
  readonly label: string;
  readonly value: number;
}

export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  readonly table: Table;
  readonly ratios: readonly Ratio[];
  /** Limits, flags and caveats printed under the table. */
  readonly notes: readonly string[];
  readonly data: unknown;
  /** Scenarios that check as well as measure (the soak); a FAIL makes `npm run bench` exit 1. */
  readonly verdict?: 'PASS' | 'FAIL';
}

export interface Machine {
  readonly date: string;
  readonly nproc: number;
  readonly cpuModel: string;
  readonly kernel: string;
  readonly node: string;
  readonly haproxy: string;
  readonly nginx: string;
  readonly openssl: string;
  readonly commit: string;
}

export interface RunResults {
  readonly machine: Machine;
  readonly options: {
    readonly quick: boolean;
    readonly rounds: number;
    readonly soakMinutes: number;
    readonly only: readonly string[];
  };
  /** Which kube-crl-proxy was measured (working tree or a git revision). */
  readonly proxy: string;
  readonly wallSeconds: number;
  readonly scenarios: readonly ScenarioResult[];
}
