/**
 * The files in grafana/ on their own: promtool accepts the alert rules and their unit tests
 * pass (every alert is shown firing), and the dashboard is importable and consistent (datasource
 * and instance variables, every query filtered by $instance, units and thresholds, layout).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import {
  ALERTS_FILE,
  ALERTS_TEST_FILE,
  dataPanels,
  GRAFANA_DIR,
  instanceVariableQuery,
  loadAlertRules,
  loadDashboard,
  type Panel,
  REPO_ROOT,
} from './dashboard.js';
import { metricNames, selectors } from './promql.js';
import { promtool } from './promtool.js';

describe('alert rules (grafana/alerts.yaml)', () => {
  test('promtool check rules accepts them', async () => {
    const result = await promtool(['check', 'rules', ALERTS_FILE]);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, new RegExp(`SUCCESS: ${loadAlertRules().length} rules found`));
  });

  test('promtool test rules: every alert fires when it should and stays silent otherwise', async () => {
    const result = await promtool(['test', 'rules', 'alerts.test.yaml'], { cwd: GRAFANA_DIR });
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /SUCCESS/);
  });

  test('every alert has a unit test in which it fires, and one in which it does not', () => {
    const tests = parseYaml(readFileSync(ALERTS_TEST_FILE, 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    for (const rule of loadAlertRules()) {
      const mine = cases.filter((c) => c.alertname === rule.alert);
      assert.ok(
        mine.some((c) => c.exp_alerts.length > 0),
        `${rule.alert}: no test case expects it to fire`,
      );
      assert.ok(
        mine.some((c) => c.exp_alerts.length === 0),
        `${rule.alert}: no test case expects it to stay silent`,
      );
    }
  });

  test('every alert has a runbook_url: its own section of docs/operating.md', () => {
    const doc = readFileSync(`${REPO_ROOT}docs/operating.md`, 'utf8');
    // GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens.
    const anchors = new Set(
      [...doc.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
        (m[1] as string)
          .toLowerCase()
          .replace(/[^\p{L}\p{N} _-]/gu, '')
          .replaceAll(' ', '-'),
      ),
    );
    for (const rule of loadAlertRules()) {
      const anchor = rule.alert.toLowerCase();
      assert.equal(rule.annotations?.runbook_url, `docs/operating.md#${anchor}`, rule.alert);
      assert.ok(anchors.has(anchor), `${rule.alert}: no section #${anchor} in docs/operating.md`);
    }
    for (const [, link] of doc.matchAll(/\]\(#([^)]+)\)/g)) {
      assert.ok(
        anchors.has(link as string),
        `docs/operating.md links to #${link}, which is missing`,
      );
    }
    const readme = readFileSync(`${REPO_ROOT}README.md`, 'utf8');
    assert.match(readme, /^## Operating it\n\n\[docs\/operating\.md\]\(docs\/operating\.md\)/m);
  });

  test('every alert has a severity, a summary and a description', () => {
    for (const rule of loadAlertRules()) {
      assert.match(rule.labels?.severity ?? '', /^(critical|warning|info)$/, rule.alert);
      assert.ok((rule.annotations?.summary ?? '').length > 10, `${rule.alert}: summary`);
      assert.ok((rule.annotations?.description ?? '').length > 40, `${rule.alert}: description`);
      assert.match(rule.alert, /^KubeCrlProxy[A-Z]/);
    }
  });
});

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template
const DATASOURCE_REF = { type: 'prometheus', uid: '${datasource}' };

describe('dashboard (grafana/kube-crl-proxy.json)', () => {
  const dashboard = loadDashboard();
  const panels = dataPanels(dashboard);
  const byTitle = (pattern: RegExp): Panel => {
    const found = panels.filter((p) => pattern.test(p.title));
    assert.equal(
      found.length,
      1,
      `exactly one panel titled ${pattern}: ${found.map((p) => p.title)}`,
    );
    return found[0] as Panel;
  };

  test('is importable: schema version, __inputs, datasource and instance variables', () => {
    assert.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
    assert.equal(dashboard.uid, 'kube-crl-proxy');
    assert.deepEqual(
      dashboard.__inputs?.map((i) => [i.type, i.pluginId]),
      [['datasource', 'prometheus']],
    );
    const datasource = dashboard.templating.list.find((v) => v.name === 'datasource');
    assert.equal(datasource?.type, 'datasource');
    assert.equal(datasource?.query, 'prometheus');
    const instance = dashboard.templating.list.find((v) => v.name === 'instance');
    assert.equal(instance?.type, 'query');
    assert.deepEqual(instance?.datasource, DATASOURCE_REF);
    assert.equal(
      instanceVariableQuery(dashboard),
      'label_values(kube_crl_proxy_handshakes_total, instance)',
    );
    assert.equal(instance?.multi, true);
    assert.equal(instance?.includeAll, true);
    // "All" must stand for the proxies listed, not `.+`: process_* and nodejs_* carry no
    // prefix, so a catch-all would draw every other scrape target's processes too.
    assert.equal(instance?.allValue, undefined);
  });

  test('every panel and query uses the datasource variable', () => {
    for (const panel of panels) {
      assert.deepEqual(panel.datasource, DATASOURCE_REF, panel.title);
      assert.ok((panel.targets ?? []).length > 0, `${panel.title}: no query`);
      for (const target of panel.targets ?? []) {
        assert.deepEqual(target.datasource, panel.datasource, `${panel.title} ${target.refId}`);
      }
    }
  });

  test('every metric selector is filtered by instance=~"$instance"', () => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        const found = selectors(target.expr);
        assert.ok(found.length > 0, `${panel.title}: ${target.expr} reads no metric`);
        for (const s of found) {
          assert.match(
            s.matchers,
            /(^|,)\s*instance=~"\$instance"/,
            `${panel.title}: ${s.metric} in ${target.expr}`,
          );
        }
        assert.doesNotMatch(
          target.expr,
          /\[\d+[smh]\]/,
          `${panel.title}: use $__rate_interval, not a fixed range`,
        );
      }
    }
  });

  test('has the panels operators need, with sensible units', () => {
    const expectations: [RegExp, string | null][] = [
      [/^Rejected connections by reason$/, 'cps'],
      [/^Connections: accepted vs rejected$/, 'cps'],
      [/^Time to CRL nextUpdate per issuer$/, 'dtdurations'],
      [/^Input reloads$/, 'none'],
      [/^Revoked connections closed$/, 'none'],
      [/^Open connections and upgrades$/, 'none'],
      [/^Requests by status code$/, 'reqps'],
      [/^Request latency p50 \/ p99$/, 's'],
      [/^Upstream errors by kind$/, 'cps'],
      [/^CPU$/, 'percentunit'],
      [/^Memory$/, 'bytes'],
    ];
    for (const [title, unit] of expectations) {
      assert.equal(byTitle(title).fieldConfig?.defaults.unit, unit, String(title));
    }
    const latency = byTitle(/^Request latency/).targets?.map((t) => t.expr) ?? [];
    assert.ok(
      latency.some((e) => e.startsWith('histogram_quantile(0.5,')),
      'p50',
    );
    assert.ok(
      latency.some((e) => e.startsWith('histogram_quantile(0.99,')),
      'p99',
    );
    const nextUpdate = byTitle(/^Time to CRL nextUpdate/).targets?.[0]?.expr ?? '';
    assert.match(
      nextUpdate,
      /kube_crl_proxy_crl_next_update_timestamp_seconds\{[^}]*\}\) - time\(\)$/,
    );
    const upgrades = byTitle(/^Open connections and upgrades$/).targets ?? [];
    assert.deepEqual(
      upgrades.flatMap((t) => metricNames(t.expr)),
      ['kube_crl_proxy_active_connections', 'kube_crl_proxy_active_upgrades'],
    );
  });

  test('inputs and certificates: state per input, time since accepted, expiry per input', () => {
    const state = byTitle(/^Input state$/);
    assert.equal(state.type, 'state-timeline');
    assert.deepEqual(
      state.targets?.map((t) => [t.expr, t.legendFormat]),
      [
        [
          'min by (input) (kube_crl_proxy_input_last_reload_success{instance=~"$instance"})',
          '{{input}}',
        ],
      ],
    );
    assert.deepEqual(state.fieldConfig?.defaults.mappings?.[0]?.options, {
      '0': { text: 'refused', color: 'red', index: 0 },
      '1': { text: 'accepted', color: 'green', index: 1 },
    });
    const since = byTitle(/^Time since each input was last accepted$/);
    assert.equal(since.fieldConfig?.defaults.unit, 'dtdurations');
    assert.match(
      since.targets?.[0]?.expr ?? '',
      /^time\(\) - min by \(input\) \(kube_crl_proxy_input_last_success_timestamp_seconds\{/,
    );
    const expiry = byTitle(/^Certificate expiry per input$/);
    assert.equal(expiry.fieldConfig?.defaults.unit, 'dtdurations');
    assert.equal(expiry.fieldConfig?.defaults.max, 365 * 86_400, 'a full bar is a year');
    assert.match(
      expiry.targets?.[0]?.expr ?? '',
      /^min by \(input\) \(kube_crl_proxy_certificate_expiry_timestamp_seconds\{[^}]*\}\) - time\(\)$/,
    );
    // The thresholds of the expiry alerts: 7 and 30 days.
    assert.deepEqual(
      expiry.fieldConfig?.defaults.thresholds?.steps.map((s) => [s.color, s.value]),
      [
        ['red', null],
        ['yellow', 7 * 86_400],
        ['green', 30 * 86_400],
      ],
    );
    const refused = byTitle(/^Inputs refused$/);
    assert.match(
      refused.targets?.[0]?.expr ?? '',
      /kube_crl_proxy_input_last_reload_success\{[^}]*\} == 0/,
    );
    assert.deepEqual(
      refused.fieldConfig?.defaults.thresholds?.steps.map((s) => [s.color, s.value]),
      [
        ['green', null],
        ['red', 1],
      ],
    );
  });

  test('CRL freshness is yellow under 7 days and red under 1 day', () => {
    const steps = (p: Panel) =>
      p.fieldConfig?.defaults.thresholds?.steps.map((s) => [s.color, s.value]);
    const expected = [
      ['red', null],
      ['yellow', 86_400],
      ['green', 604_800],
    ];
    assert.deepEqual(steps(byTitle(/^Time to CRL nextUpdate per issuer$/)), expected);
    assert.deepEqual(steps(byTitle(/^Soonest CRL nextUpdate$/)), expected);
  });

  test('the layout fits Grafana’s 24-column grid without overlaps, ids are unique', () => {
    const all = dashboard.panels;
    assert.equal(new Set(all.map((p) => p.id)).size, all.length, 'unique panel ids');
    for (const p of all) {
      assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits 24 columns`);
    }
    for (const [i, a] of all.entries()) {
      for (const b of all.slice(i + 1)) {
        const overlap =
          a.gridPos.x < b.gridPos.x + b.gridPos.w &&
          b.gridPos.x < a.gridPos.x + a.gridPos.w &&
          a.gridPos.y < b.gridPos.y + b.gridPos.h &&
          b.gridPos.y < a.gridPos.y + a.gridPos.h;
        assert.ok(!overlap, `${a.title} overlaps ${b.title}`);
      }
    }
  });
});

describe('PromQL metric-name extraction (used to check names against a live scrape)', () => {
  test('finds selectors, skips functions, keywords, grouping labels, strings and ranges', () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.99, sum by (le, protocol) (rate(a_bucket{instance=~"$instance",x="y z"}[$__rate_interval])))',
      ),
      ['a_bucket'],
    );
    assert.deepEqual(
      metricNames(
        'increase(b{r="failure"}[15m]) > 0 or (b unless b offset 15m) and on (instance) (up offset 15m)',
      ),
      ['b', 'up'],
    );
    assert.deepEqual(metricNames('sum(max by (issuer) (c)) or vector(0)'), ['c']);
    assert.deepEqual(metricNames('d - time() < 7 * 86400 > 0'), ['d']);
    assert.deepEqual(
      selectors('e{instance=~"$instance",outcome="rejected"} / f').map((s) => [
        s.metric,
        s.matchers,
      ]),
      [
        ['e', 'instance=~"$instance",outcome="rejected"'],
        ['f', ''],
      ],
    );
  });
});
