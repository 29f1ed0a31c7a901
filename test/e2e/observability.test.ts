/**
 * What an operator sees (issue 5): the admin endpoints, the metrics contract, and one JSON log
 * line per rejected client — rate-limited, with the number left out reported.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { requestH1 } from '../fake-apiserver/testkit.js';
import { REVOKED_ALERT_CODE } from '../support/alerts.js';
import { TestCluster } from '../support/cluster.js';
import type { ProxyProcess } from '../support/proxy-process.js';

const cluster = new TestCluster();
let proxy: ProxyProcess;
let mallory: IssuedCert;

before(async () => {
  await cluster.start();
  mallory = await cluster.pki.user('mallory', ['dev']);
  cluster.pki.writeCrl({ revoked: [{ serial: mallory.serial }], crlNumber: 2 });
  proxy = await cluster.proxy();
});

after(() => cluster.stop());

describe('admin endpoints', () => {
  test('/healthz, /readyz, /metrics; everything else 404, writes 405', async () => {
    const get = async (path: string, method = 'GET') => {
      const res = await fetch(`${proxy.adminUrl}${path}`, { method });
      return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
    };
    assert.deepEqual(await get('/healthz'), { status: 200, text: 'ok\n', type: 'text/plain' });
    assert.equal((await get('/readyz')).status, 200);
    const metrics = await get('/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.type ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal((await get('/nope')).status, 404);
    assert.equal((await get('/metrics', 'POST')).status, 405);
  });

  test('the metrics contract: names, types and help texts', async () => {
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    const contract: Array<[string, string]> = [
      ['kube_crl_proxy_handshakes_total', 'counter'],
      ['kube_crl_proxy_crl_reloads_total', 'counter'],
      ['kube_crl_proxy_crl_entries', 'gauge'],
      ['kube_crl_proxy_crl_next_update_timestamp_seconds', 'gauge'],
      ['kube_crl_proxy_crl_last_success_timestamp_seconds', 'gauge'],
      ['kube_crl_proxy_revoked_connections_closed_total', 'counter'],
      ['kube_crl_proxy_requests_total', 'counter'],
      ['kube_crl_proxy_request_duration_seconds', 'histogram'],
      ['kube_crl_proxy_active_connections', 'gauge'],
      ['kube_crl_proxy_active_upgrades', 'gauge'],
      ['kube_crl_proxy_upstream_errors_total', 'counter'],
      ['process_cpu_seconds_total', 'counter'],
      ['process_resident_memory_bytes', 'gauge'],
    ];
    for (const [name, type] of contract) {
      assert.match(text, new RegExp(`^# HELP ${name} \\S.{20,}$`, 'm'), `${name} has help text`);
      assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `${name} is a ${type}`);
    }
    // Label values stay bounded: no serials, users or paths.
    assert.doesNotMatch(text, new RegExp(mallory.serial));
    assert.doesNotMatch(text, /mallory|\/api\/v1/);
  });
});

describe('rejection logs', () => {
  test('one JSON line per rejected client, with serial, subject, issuer, reason and address', async () => {
    const before = proxy.logs.length;
    const refused = await requestH1(`${proxy.url}/api`, {
      ca: cluster.pki.clusterCa.certPem,
      cert: mallory,
    }).then(
      (res) => `status ${res.status}`,
      (err: NodeJS.ErrnoException) => err.code,
    );
    assert.match(refused ?? '', REVOKED_ALERT_CODE);
    const line = await proxy.waitForLog(
      (l) => proxy.logs.indexOf(l) >= before && l.reason === 'revoked',
    );
    assert.equal(line.level, 'warn');
    assert.equal(line.serial, mallory.serial);
    assert.equal(line.subject, 'O=dev, CN=mallory');
    assert.equal(line.issuer, 'CN=kubernetes');
    assert.equal(line.remoteAddress, '127.0.0.1');
    assert.match(line.msg, /^client certificate revoked \(serial /);
  });

  test('a flood of bad clients is rate-limited and the number left out is reported', async () => {
    const before = proxy.logs.length;
    const attempts = 150;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: attempts }, () =>
        requestH1(`${proxy.url}/api`, { ca: cluster.pki.clusterCa.certPem, cert: mallory }).catch(
          () => null,
        ),
      ),
    );
    const logged = () => proxy.logs.slice(before).filter((l) => l.reason === 'revoked');
    // The limit: a burst of 50 lines, then 10 per second for as long as the flood lasted.
    const allowed = 50 + Math.ceil((10 * (Date.now() - started)) / 1000);
    assert.ok(
      logged().length <= allowed,
      `${logged().length} lines for ${attempts} rejected clients (allowed ${allowed})`,
    );
    // The count of lines left out comes with the next line that gets through, or with the
    // periodic report (every 10 s): wait for it.
    const accounted = () =>
      logged().length +
      proxy.logs
        .slice(before)
        .reduce((n, l) => n + (typeof l.suppressed === 'number' ? l.suppressed : 0), 0);
    const waiting = Date.now();
    while (accounted() < attempts && Date.now() - waiting < 15_000)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(
      proxy.logs.slice(before).some((l) => typeof l.suppressed === 'number'),
      'the left-out count is reported',
    );
    assert.equal(accounted(), attempts, 'every rejection is either logged or counted');
  });
});
