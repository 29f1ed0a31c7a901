/**
 * deploy/kubeadm/patches/: the files kubeadm applies to its kube-apiserver manifest on every
 * `kubeadm upgrade apply|node --patches`. Their names parse as kubeadm parses them, and applied
 * in kubeadm's order by the real kubectl (whose `patch --local` uses the same apimachinery
 * strategic merge and evanphx/json-patch code as kubeadm's PatchManager) to the manifests
 * kubeadm 1.33 and 1.34 write, they give the apiserver of docs/kubeadm.md section 2 and nothing
 * else changes.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { type KubectlEnv, runKubectl, TempDir } from '../fake-apiserver/testkit.js';
import { EXAMPLE_CONFIG, FIXTURES, GUIDE, KUBEADM_PATCHES, MANIFEST } from './deploy-files.js';
import { schemaProblems } from './kube-schema.js';

/**
 * kubeadm's own file-name rule, from cmd/kubeadm/app/util/patches/patches.go (parseFilename):
 * `target[suffix][+patchtype].extension`, files applied in the lexical order filepath.Walk gives.
 */
const KNOWN_TARGETS = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubeletconfiguration',
  'corednsdeployment',
];
const FILE_NAME = new RegExp(
  `^(${KNOWN_TARGETS.join('|')})([^.+\\n]*)?(\\+)?(json|merge|strategic)?\\.(json|yaml)$`,
);

interface Probe {
  readonly httpGet: { host: string; port: number | string; path: string; scheme: string };
}
interface ApiserverPod {
  metadata: Record<string, unknown>;
  spec: {
    containers: {
      command: string[];
      ports?: { name?: string; containerPort: number }[];
      livenessProbe: Probe;
      readinessProbe: Probe;
      startupProbe: Probe;
      [key: string]: unknown;
    }[];
    [key: string]: unknown;
  };
}

const PROBES = ['livenessProbe', 'readinessProbe', 'startupProbe'] as const;

/** The value kube-apiserver takes for a flag given more than once: the last one. */
function flag(command: readonly string[], name: string): string | undefined {
  return command
    .filter((a) => a.startsWith(`--${name}=`))
    .at(-1)
    ?.slice(name.length + 3);
}

function patchFiles(): string[] {
  return readdirSync(KUBEADM_PATCHES).sort();
}

describe('kubeadm patches for kube-apiserver', () => {
  let tmp: TempDir;
  let env: KubectlEnv;

  before(async () => {
    tmp = await TempDir.create('kcp-patches-');
    writeFileSync(tmp.file('kubeconfig'), '');
    env = { kubeconfig: tmp.file('kubeconfig'), cacheDir: tmp.file('cache'), home: tmp.path };
  });
  after(() => tmp?.remove());

  /** The manifest with every patch applied, in kubeadm's order, by kubectl. */
  async function patched(fixture: string): Promise<ApiserverPod> {
    let current = join(FIXTURES, fixture);
    for (const [i, name] of patchFiles().entries()) {
      const type = FILE_NAME.exec(name)?.[4] ?? 'strategic';
      const result = await runKubectl(env, [
        'patch',
        '--local',
        '-f',
        current,
        `--type=${type}`,
        '--patch-file',
        join(KUBEADM_PATCHES, name),
        '-o',
        'yaml',
      ]);
      assert.equal(result.code, 0, `${name} on ${fixture}: ${result.stderr}`);
      current = tmp.file(`${fixture}.${i}.yaml`);
      writeFileSync(current, result.stdout);
    }
    return parseYaml(readFileSync(current, 'utf8')) as ApiserverPod;
  }

  const stock = (fixture: string) =>
    parseYaml(readFileSync(join(FIXTURES, fixture), 'utf8')) as ApiserverPod;

  test('file names parse as kubeadm parses them: kube-apiserver, a JSON patch then a strategic merge', () => {
    const parsed = patchFiles().map((name) => FILE_NAME.exec(name));
    assert.deepEqual(
      parsed.map((m) => [m?.[1], m?.[4]]),
      [
        ['kube-apiserver', 'json'],
        ['kube-apiserver', 'strategic'],
      ],
    );
    for (const name of patchFiles()) {
      assert.ok(parseYaml(readFileSync(join(KUBEADM_PATCHES, name), 'utf8')), `${name} parses`);
    }
  });

  for (const fixture of ['kube-apiserver-1.33.yaml', 'kube-apiserver-1.34.yaml']) {
    test(`${fixture}: loopback :16443, no endpoint reconciler, probes follow; nothing else changes`, async () => {
      const before = stock(fixture);
      const after = await patched(fixture);
      const [was, is] = [before.spec.containers[0], after.spec.containers[0]];
      assert.ok(was && is);
      assert.equal(flag(is.command, 'bind-address'), '127.0.0.1');
      assert.equal(flag(is.command, 'secure-port'), '16443');
      assert.equal(flag(is.command, 'endpoint-reconciler-type'), 'none');
      assert.equal(flag(is.command, 'advertise-address'), '192.0.2.10', 'kept');
      assert.deepEqual(
        is.command.slice(0, was.command.length),
        was.command,
        "kubeadm's flags kept",
      );
      for (const probe of PROBES) {
        assert.deepEqual(is[probe].httpGet, {
          ...was[probe].httpGet,
          host: '127.0.0.1',
          port: 16443,
        });
      }
      assert.deepEqual(is.ports, [{ name: 'probe-port', containerPort: 16443, protocol: 'TCP' }]);
      const untouched = (pod: ApiserverPod) => {
        const { command, ports, livenessProbe, readinessProbe, startupProbe, ...rest } =
          pod.spec.containers[0] ?? {};
        return { metadata: pod.metadata, spec: { ...pod.spec, containers: [rest] } };
      };
      assert.deepEqual(untouched(after), untouched(before));
      assert.deepEqual(schemaProblems(after), []);
    });
  }

  test("the proxy's upstream is the patched apiserver; their host ports no longer collide", async () => {
    const config = parseYaml(readFileSync(EXAMPLE_CONFIG, 'utf8')) as Record<string, string>;
    assert.equal(config.upstream, 'https://127.0.0.1:16443');
    const proxy = parseYaml(readFileSync(MANIFEST, 'utf8')) as {
      spec: { containers: { args: string[]; ports: { containerPort: number }[] }[] };
    };
    const proxyContainer = proxy.spec.containers[0];
    assert.ok(proxyContainer);
    assert.ok(proxyContainer.args.includes(`--upstream=${config.upstream}`));
    // With hostNetwork every container port is a host port, and the kubelet admits one pod per
    // host port: kubeadm 1.34's stock apiserver declares 6443, the patched one does not.
    const proxyPorts = proxyContainer.ports.map((p) => p.containerPort);
    const declared = (pod: ApiserverPod) =>
      (pod.spec.containers[0]?.ports ?? []).map((p) => p.containerPort);
    assert.ok(declared(stock('kube-apiserver-1.34.yaml')).some((p) => proxyPorts.includes(p)));
    const after = await patched('kube-apiserver-1.34.yaml');
    assert.deepEqual(
      declared(after).filter((p) => proxyPorts.includes(p)),
      [],
    );
  });

  test('docs/kubeadm.md names these files and passes them to every kubeadm upgrade', () => {
    const guide = readFileSync(GUIDE, 'utf8');
    for (const name of patchFiles()) assert.ok(guide.includes(name), `the guide names ${name}`);
    const upgrades = guide.split('\n').filter((l) => /^\s*kubeadm upgrade (apply|node)\b/.test(l));
    assert.ok(upgrades.length >= 2, 'kubeadm upgrade apply and node are shown');
    for (const line of upgrades)
      assert.match(line, /--patches \/etc\/kubernetes\/kube-crl-proxy-patches\b/, line);
  });
});
