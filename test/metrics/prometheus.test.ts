/**
 * The dashboard and the alert rules against the real thing: Debian's Prometheus scrapes the
 * real proxy binary (in front of the fake kube-apiserver) every second while a mixed load runs
 * — good, revoked, unknown-CA, expired, CRL-expired, certificate-less and non-TLS clients over
 * HTTP/1.1 and HTTP/2, two failed reloads, the front-proxy-client input refused for a few
 * seconds, two revoked users' open connections cut, an apiserver outage, an exec tunnel, a
 * connection flood past --max-connections. Then every panel query of the dashboard is
 * evaluated through Prometheus's HTTP API and must return data, every metric name used must be
 * exported and every metric of the proxy used (or listed with a reason), promtool must have
 * nothing to say about the live scrape, and the alert rules must evaluate cleanly with the ones
 * this load provokes pending or firing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ALERTS_FILE,
  dataPanels,
  instanceVariableQuery,
  interpolate,
  legend,
  loadAlertRules,
  loadDashboard,
} from './dashboard.js';
import { type Prometheus, sampleValue, startPrometheus } from './prometheus.js';
import { exportedNames, metricNames } from './promql.js';
import { promtool } from './promtool.js';
import {
  driveLoad,
  type LoadPlan,
  type LoadReport,
  MAX_CONNECTIONS,
  SERVING_DAYS_LEFT,
  scrape as scrapeMetrics,
  scrapeValue,
  startWorld,
  type World,
} from './scenario.js';

const SCRAPE_INTERVAL_S = 1;
/** Grafana's $__rate_interval for a 1 s step and a 1 s scrape interval. */
const RATE_INTERVAL = `${4 * SCRAPE_INTERVAL_S}s`;

/** The proxy's metrics that no panel or alert reads, each with the reason. */
const NOT_ON_DASHBOARD = new Map([
  [
    'kube_crl_proxy_crl_last_reload_success',
    'the AND of kube_crl_proxy_input_last_reload_success, which panels and alerts read per input',
  ],
  [
    'kube_crl_proxy_crl_last_load_duration_seconds',
    'a measurement (read, parse, verify, index) for sizing, which bench/ reads',
  ],
  ['kube_crl_proxy_snapshot_generation', 'for comparing nodes and for debugging'],
  [
    'kube_crl_proxy_crl_this_update_timestamp_seconds',
    'the age of the CRL in force; its nextUpdate, which decides, is on the dashboard',
  ],
  ...[
    'kube_crl_proxy_crl_url_fetches_total',
    'kube_crl_proxy_crl_url_last_fetch_success',
    'kube_crl_proxy_crl_url_last_success_timestamp_seconds',
  ].map(
    (name) =>
      [
        name,
        'only with --crl-url, which the scenario does not use: no panel or alert reads it yet',
      ] as const,
  ),
]);

const PLAN: LoadPlan = {
  durationMs: 15_000,
  workers: 3,
  pauseMs: () => 40,
  mix: () => ({
    'good-h1': 4,
    'good-h1-keepalive': 2,
    'good-h2': 3,
    'no-cert': 1,
    revoked: 2,
    'unknown-ca': 1,
    'expired-cert': 1,
    'crl-expired': 1,
    'tls-garbage': 1,
  }),
  events: [
    { at: 0.05, event: { kind: 'exec', holdMs: 8_000 } },
    { at: 0.15, event: { kind: 'cut-revoked-connection' } },
    // Held for several scrapes: the Input state panel must see it.
    { at: 0.2, event: { kind: 'refused-input', holdMs: 3_000 } },
    // Apart enough for Prometheus to scrape in between: increase() needs the counter to move.
    { at: 0.3, event: { kind: 'failed-reload' } },
    { at: 0.6, event: { kind: 'failed-reload' } },
    { at: 0.45, event: { kind: 'apiserver-outage', ms: 3_000 } },
    { at: 0.75, event: { kind: 'cut-revoked-connection' } },
    {
      at: 0.85,
      event: { kind: 'connection-flood', connections: MAX_CONNECTIONS + 30, holdMs: 1_000 },
    },
  ],
};

test('a real Prometheus scraping the proxy under mixed load', { timeout: 120_000 }, async (t) => {
  const world: World = await startWorld();
  t.after(() => world.close());
  const prometheus: Prometheus = await startPrometheus({
    targets: [world.adminTarget],
    ruleFiles: [ALERTS_FILE],
    scrapeIntervalSeconds: SCRAPE_INTERVAL_S,
  });
  t.after(() => prometheus.stop());
  const instance = world.adminTarget;

  const report: LoadReport = await driveLoad(world, PLAN);
  // Load is over: wait until Prometheus has scraped the final counts.
  const finalHandshakes = await scrapeValue(world.proxy, 'kube_crl_proxy_handshakes_total');
  await prometheus.waitFor(
    `sum(kube_crl_proxy_handshakes_total{instance="${instance}"})`,
    (s) => sampleValue(s[0]) === finalHandshakes,
    10_000,
  );
  const scrape = await scrapeMetrics(world.proxy);
  const start = Math.floor(report.startedAt / 1000);
  const end = Math.ceil(Date.now() / 1000);

  await t.test('the load did what it says', () => {
    const { clients } = report;
    assert.ok((clients['good-h1'].outcomes['200'] ?? 0) > 10, JSON.stringify(clients['good-h1']));
    assert.ok((clients['good-h2'].outcomes['200'] ?? 0) > 10, JSON.stringify(clients['good-h2']));
    for (const kind of ['revoked', 'unknown-ca', 'expired-cert', 'crl-expired'] as const) {
      assert.ok(
        (clients[kind].outcomes['401'] ?? 0) > 3,
        `${kind}: ${JSON.stringify(clients[kind])}`,
      );
    }
    assert.equal(report.cutConnections, 2, 'two revoked users had their open connection cut');
    assert.equal(report.failedReloads, 2);
    assert.equal(report.refusedInputs, 1);
    assert.equal(report.outages, 1);
    assert.ok(report.dropped >= 20, `${report.dropped} flood connections dropped at the cap`);
  });

  await t.test('promtool check metrics finds nothing to say about a live scrape', async () => {
    const result = await promtool(['check', 'metrics'], { stdin: scrape });
    assert.deepEqual({ code: result.code, output: result.output.trim() }, { code: 0, output: '' });
  });

  await t.test(
    'the dashboard and the alerts read only exported metrics, and every one of ours',
    () => {
      const exported = exportedNames(scrape);
      const dashboard = loadDashboard();
      const used = new Map<string, string>();
      used.set(
        metricNames(
          instanceVariableQuery(dashboard).replace(/^label_values\((.*),\s*\w+\)$/, '$1'),
        )[0] ?? '',
        'instance variable',
      );
      for (const panel of dataPanels(dashboard)) {
        for (const target of panel.targets ?? []) {
          for (const name of metricNames(target.expr)) used.set(name, `panel "${panel.title}"`);
        }
      }
      for (const rule of loadAlertRules()) {
        for (const name of metricNames(rule.expr)) used.set(name, `alert ${rule.alert}`);
      }
      // `up` is Prometheus's own metric for every scrape target.
      const missing = [...used].filter(([name]) => name !== 'up' && !exported.has(name));
      assert.deepEqual(missing, [], 'metric names used but not exported');
      assert.ok(used.size > 15, `only ${used.size} names found: the extraction is broken`);
      // Every metric family of the proxy is read by a panel or an alert, or listed here.
      const families = [...scrape.matchAll(/^# TYPE (kube_crl_proxy_\w+) (\w+)$/gm)].map((m) => ({
        name: m[1] as string,
        type: m[2] as string,
      }));
      const read = (family: { name: string; type: string }) =>
        (family.type === 'histogram' ? ['_bucket', '_sum', '_count'] : ['']).some((suffix) =>
          used.has(`${family.name}${suffix}`),
        );
      const unread = families.filter((f) => !read(f)).map((f) => f.name);
      assert.deepEqual(
        unread.filter((name) => !NOT_ON_DASHBOARD.has(name)),
        [],
        'exported, but on no panel and in no alert',
      );
      assert.deepEqual(
        [...NOT_ON_DASHBOARD.keys()].filter((name) => !unread.includes(name)),
        [],
        'listed in NOT_ON_DASHBOARD but read by a panel or an alert, or not exported',
      );
    },
  );

  await t.test('the instance variable lists the proxy', async () => {
    const match = instanceVariableQuery(loadDashboard()).replace(
      /^label_values\((.*),\s*instance\)$/,
      '$1',
    );
    assert.deepEqual(await prometheus.labelValues('instance', match), [instance]);
  });

  await t.test('every panel query returns data', async () => {
    const values = { instances: [instance], rateInterval: RATE_INTERVAL };
    for (const panel of dataPanels(loadDashboard())) {
      for (const target of panel.targets ?? []) {
        const expr = interpolate(target.expr, values);
        assert.doesNotMatch(expr, /\$/, `${panel.title}: uninterpolated variable in ${expr}`);
        const series = await prometheus.range(expr, start, end, SCRAPE_INTERVAL_S);
        const where = `panel "${panel.title}" query ${target.refId}: ${expr}`;
        assert.ok(
          series.length > 0 && series.some((s) => s.values.length > 0),
          `no data: ${where}`,
        );
        const nonZero = series.some((s) =>
          s.values.some(([, v]) => Number(v) !== 0 && v !== 'NaN'),
        );
        if (metricNames(expr).includes('kube_crl_proxy_active_upgrades') && report.upgrades === 0) {
          t.diagnostic(
            `no exec upgrade was answered 101 (${report.execRefusals.join('; ')}): only presence checked for ${where}`,
          );
          continue;
        }
        assert.ok(nonZero, `only zeros: ${where}`);
        const names = series.map((s) => legend(target.legendFormat, s.metric));
        t.diagnostic(`${panel.title} [${target.refId}]: ${names.join(', ')}`);
      }
    }
  });

  await t.test('panels tell the story of the load', async () => {
    const at = async (expr: string) =>
      prometheus.instant(
        interpolate(expr, { instances: [instance], rateInterval: RATE_INTERVAL }),
        end,
      );
    // Every reason's series exists from the start (at 0); the load produced these four.
    const reasons = (
      await at(
        `sum by (reason) (kube_crl_proxy_handshakes_total{instance=~"$instance",outcome="rejected"}) > 0`,
      )
    )
      .map((s) => s.metric.reason)
      .sort();
    assert.deepEqual(reasons, ['cert_expired', 'crl_expired', 'revoked', 'unknown_ca']);
    // Every refused client shows up once in the rejection counter: at least every one that got
    // its 401, at most every attempt (one that timed out may or may not have been judged).
    const rejected = await at(
      `sum by (reason) (kube_crl_proxy_handshakes_total{instance=~"$instance",outcome="rejected"})`,
    );
    for (const [reason, kind] of [
      ['unknown_ca', 'unknown-ca'],
      ['cert_expired', 'expired-cert'],
      ['crl_expired', 'crl-expired'],
      ['revoked', 'revoked'],
    ] as const) {
      const counted = sampleValue(rejected.find((s) => s.metric.reason === reason));
      const { attempts, outcomes } = report.clients[kind];
      assert.ok(
        counted >= (outcomes['401'] ?? 0) && counted <= attempts,
        `${reason}: ${counted} counted, ${JSON.stringify(report.clients[kind])}`,
      );
    }
    const toNextUpdate = await at(
      `min by (issuer) (kube_crl_proxy_crl_next_update_timestamp_seconds{instance=~"$instance"}) - time()`,
    );
    const days = Object.fromEntries(
      toNextUpdate.map((s) => [s.metric.issuer, sampleValue(s) / 86_400]),
    );
    assert.ok(
      (days['CN=kubernetes'] ?? 0) > 5 && (days['CN=kubernetes'] ?? 0) < 5.5,
      JSON.stringify(days),
    );
    assert.ok((days['CN=ops-users-ca'] ?? 0) > 29, JSON.stringify(days));
    assert.ok((days['CN=legacy-ca'] ?? 0) < 0, JSON.stringify(days));
    // Input state: every input accepted at the end; the front-proxy-client pair was refused
    // for a while (a renewed certificate before its key).
    const lanes = await prometheus.range(
      interpolate(
        'min by (input) (kube_crl_proxy_input_last_reload_success{instance=~"$instance"})',
        { instances: [instance], rateInterval: RATE_INTERVAL },
      ),
      start,
      end,
      SCRAPE_INTERVAL_S,
    );
    assert.deepEqual(lanes.map((l) => l.metric.input).sort(), [
      'client-ca',
      'crl',
      'proxy-client',
      'serving',
      'upstream-ca',
    ]);
    for (const lane of lanes) {
      assert.equal(lane.values.at(-1)?.[1], '1', `${lane.metric.input} accepted at the end`);
    }
    const proxyClient = lanes.find((l) => l.metric.input === 'proxy-client');
    assert.ok(
      proxyClient?.values.some(([, v]) => v === '0'),
      'the refused front-proxy-client pair shows on the Input state panel',
    );
    const expiresIn = await at(
      `min by (input) (kube_crl_proxy_certificate_expiry_timestamp_seconds{instance=~"$instance"}) - time()`,
    );
    const daysLeft = Object.fromEntries(
      expiresIn.map((s) => [s.metric.input, sampleValue(s) / 86_400]),
    );
    assert.deepEqual(Object.keys(daysLeft).sort(), [
      'client-ca',
      'proxy-client',
      'serving',
      'upstream-ca',
    ]);
    const serving = daysLeft.serving ?? 0;
    assert.ok(serving > SERVING_DAYS_LEFT - 1 && serving <= SERVING_DAYS_LEFT, `${serving} days`);
    for (const input of ['client-ca', 'proxy-client', 'upstream-ca']) {
      assert.ok((daysLeft[input] ?? 0) > 300, `${input}: ${daysLeft[input]} days`);
    }
    const codes = (
      await at(`sum by (code) (kube_crl_proxy_requests_total{instance=~"$instance"})`)
    ).map((s) => s.metric.code);
    for (const code of ['200', '401', '404', '503'])
      assert.ok(codes.includes(code), `code ${code} in ${codes}`);
    const closed = await at(
      'kube_crl_proxy_revoked_connections_closed_total{instance=~"$instance"}',
    );
    assert.equal(sampleValue(closed[0]), report.cutConnections);
    const failures = await at(
      'kube_crl_proxy_crl_reloads_total{instance=~"$instance",result="failure"}',
    );
    assert.ok(sampleValue(failures[0]) >= report.failedReloads);
    const upstream = await at(
      'sum(kube_crl_proxy_upstream_errors_total{instance=~"$instance",kind="connect"})',
    );
    assert.ok(sampleValue(upstream[0]) > 0, 'the outage shows as connect errors');
  });

  await t.test('alert rules evaluate cleanly; the ones this load provokes are active', async () => {
    const rules = await prometheus
      .waitFor('ALERTS{alertname="KubeCrlProxyReloadFailing"}', (s) => s.length > 0, 10_000)
      .then(() => prometheus.rules());
    assert.equal(rules.length, loadAlertRules().length);
    for (const rule of rules) {
      assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError ?? ''}`);
    }
    const state = (name: string) => rules.find((r) => r.name === name);
    const activeFor = (name: string) =>
      (state(name)?.alerts ?? []).filter((a) => a.state === 'pending' || a.state === 'firing');
    assert.deepEqual(
      activeFor('KubeCrlProxyCrlExpiresSoon').map((a) => a.labels.issuer),
      ['CN=kubernetes'],
      'the cluster CA CRL (5.5 days left) is about to expire; the expired one has its own alert',
    );
    assert.deepEqual(
      activeFor('KubeCrlProxyCrlExpired').map((a) => a.labels.issuer),
      ['CN=legacy-ca'],
    );
    assert.equal(state('KubeCrlProxyCrlExpired')?.state, 'firing');
    assert.deepEqual(
      activeFor('KubeCrlProxyCertificateExpiresSoon').map((a) => a.labels.input),
      ['serving'],
      `the serving certificate has ${SERVING_DAYS_LEFT} days left`,
    );
    assert.equal(state('KubeCrlProxyReloadFailing')?.state, 'firing');
    assert.equal(state('KubeCrlProxyRevokedCertificateInUse')?.state, 'firing');
    assert.notEqual(state('KubeCrlProxyConnectionLimit')?.state, 'inactive', 'the flood');
    for (const quiet of [
      'KubeCrlProxyDown',
      'KubeCrlProxyNotReady',
      'KubeCrlProxyCrlExpiresWithinADay',
      'KubeCrlProxyCertificateExpiresWithinAWeek',
      'KubeCrlProxyCertificateExpired',
      // Refusals last seconds here; these wait 10 minutes.
      'KubeCrlProxyClientTrustRefused',
      'KubeCrlProxyCredentialRefused',
    ]) {
      assert.notEqual(state(quiet)?.state, 'firing', quiet);
    }
  });
});
