/**
 * The Grafana dashboard (grafana/kube-crl-proxy.json) as the tests and the renderer read it:
 * typed access to the parts they use, and Grafana's variable interpolation for the variables
 * the dashboard uses.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

/** The repository root, from dist/test/metrics/ or test/metrics/. */
export const REPO_ROOT = fileURLToPath(
  new URL(import.meta.url.includes('/dist/test/') ? '../../../' : '../../', import.meta.url),
);
export const GRAFANA_DIR = `${REPO_ROOT}grafana/`;
export const DASHBOARD_FILE = `${GRAFANA_DIR}kube-crl-proxy.json`;
export const ALERTS_FILE = `${GRAFANA_DIR}alerts.yaml`;
export const ALERTS_TEST_FILE = `${GRAFANA_DIR}alerts.test.yaml`;

export interface DatasourceRef {
  readonly type: string;
  readonly uid: string;
}

export interface Target {
  readonly refId: string;
  readonly expr: string;
  readonly legendFormat?: string;
  readonly datasource?: DatasourceRef;
}

export interface ThresholdStep {
  readonly color: string;
  readonly value: number | null;
}

/** A Grafana value mapping of type "value": exact values shown as text, in a colour. */
export interface ValueMapping {
  readonly type: string;
  readonly options: Readonly<Record<string, { readonly text?: string; readonly color?: string }>>;
}

export interface FieldOverride {
  readonly matcher: { readonly id: string; readonly options: string };
  readonly properties: readonly { readonly id: string; readonly value: unknown }[];
}

export interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly description?: string;
  readonly datasource?: DatasourceRef;
  readonly gridPos: {
    readonly x: number;
    readonly y: number;
    readonly w: number;
    readonly h: number;
  };
  readonly targets?: readonly Target[];
  readonly fieldConfig?: {
    readonly defaults: {
      readonly unit?: string;
      readonly min?: number;
      readonly max?: number;
      readonly decimals?: number;
      readonly thresholds?: { readonly mode: string; readonly steps: readonly ThresholdStep[] };
      readonly mappings?: readonly ValueMapping[];
      readonly custom?: {
        readonly drawStyle?: string;
        readonly fillOpacity?: number;
        readonly stacking?: { readonly mode: string };
      };
    };
    readonly overrides: readonly FieldOverride[];
  };
  readonly options?: { readonly graphMode?: string };
}

export interface TemplateVariable {
  readonly name: string;
  readonly type: string;
  readonly query?: unknown;
  readonly definition?: string;
  readonly datasource?: DatasourceRef;
  readonly includeAll?: boolean;
  readonly multi?: boolean;
  readonly allValue?: string;
}

export interface Dashboard {
  readonly title: string;
  readonly uid: string;
  readonly schemaVersion: number;
  readonly __inputs?: readonly {
    readonly name: string;
    readonly type: string;
    readonly pluginId: string;
  }[];
  readonly templating: { readonly list: readonly TemplateVariable[] };
  readonly panels: readonly Panel[];
}

export function loadDashboard(path = DASHBOARD_FILE): Dashboard {
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    !Array.isArray((parsed as { panels?: unknown }).panels) ||
    !Array.isArray((parsed as { templating?: { list?: unknown } }).templating?.list)
  ) {
    throw new Error(`${path}: not a Grafana dashboard (no panels or templating list)`);
  }
  return parsed as Dashboard;
}

/** Panels that query data (everything but rows), in reading order. */
export function dataPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels
    .filter((p) => p.type !== 'row')
    .sort((a, b) => a.gridPos.y - b.gridPos.y || a.gridPos.x - b.gridPos.x);
}

/** The query of the `instance` variable, e.g. label_values(metric, instance). */
export function instanceVariableQuery(dashboard: Dashboard): string {
  const variable = dashboard.templating.list.find((v) => v.name === 'instance');
  if (variable?.definition === undefined) throw new Error('the dashboard has no instance variable');
  return variable.definition;
}

/** What Grafana substitutes for the variables this dashboard uses. */
export interface Interpolation {
  /** Instances as Grafana would pass them for a multi-value variable. */
  readonly instances: readonly string[];
  /** Grafana's $__rate_interval: max($__interval + scrape interval, 4 × scrape interval). */
  readonly rateInterval: string;
}

/** Grafana's regex escaping of a multi-value variable's values for Prometheus. */
function prometheusRegex(values: readonly string[]): string {
  const escaped = values.map((v) => v.replace(/[\\^$*+?.()|{}[\]]/g, '\\\\$&'));
  return escaped.length === 1 ? (escaped[0] as string) : `(${escaped.join('|')})`;
}

export function interpolate(expr: string, values: Interpolation): string {
  return expr
    .replaceAll('$__rate_interval', values.rateInterval)
    .replace(/\$\{instance\}|\$instance\b/g, prometheusRegex(values.instances));
}

/** Grafana's legend template: {{label}} replaced by the series' label value. */
export function legend(
  format: string | undefined,
  labels: Readonly<Record<string, string>>,
): string {
  if (format === undefined || format === '' || format === '__auto') {
    const inner = Object.entries(labels)
      .filter(([k]) => k !== '__name__')
      .map(([k, v]) => `${k}="${v}"`)
      .join(', ');
    return `{${inner}}`;
  }
  return format.replace(
    /\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g,
    (_, name: string) => labels[name] ?? '',
  );
}

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export function loadAlertRules(path = ALERTS_FILE): AlertRule[] {
  const parsed = parseYaml(readFileSync(path, 'utf8')) as {
    groups?: { rules?: AlertRule[] }[];
  } | null;
  const rules = (parsed?.groups ?? []).flatMap((g) => g.rules ?? []);
  if (rules.length === 0) throw new Error(`${path}: no alert rules`);
  return rules;
}
