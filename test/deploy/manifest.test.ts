/**
 * deploy/kubernetes/kube-crl-proxy.yaml, the static pod: read by the real kubectl's client side,
 * checked against Kubernetes' schema, and consistent with the proxy's flags.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { RUN_OPTIONS } from '../../src/config/options.js';
import { type FakeApiserver, startFakeApiserver } from '../fake-apiserver/index.js';
import {
  createPki,
  type KubectlEnv,
  runKubectl,
  TempDir,
  writeKubeconfig,
} from '../fake-apiserver/testkit.js';
import { flagNames, MANIFEST } from './deploy-files.js';
import { schemaProblems } from './kube-schema.js';

interface Probe {
  readonly httpGet: { readonly host: string; readonly port: number; readonly path: string };
}
interface Container {
  readonly args: readonly string[];
  readonly livenessProbe: Probe;
  readonly readinessProbe: Probe;
  readonly resources: { readonly requests: Record<string, string> };
  readonly volumeMounts: readonly {
    readonly name: string;
    readonly mountPath: string;
    readonly readOnly?: boolean;
  }[];
}
interface StaticPod {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly spec: {
    readonly hostNetwork: boolean;
    readonly priorityClassName: string;
    readonly containers: readonly Container[];
  };
}

function readManifest(): StaticPod {
  const documents = parseAllDocuments(readFileSync(MANIFEST, 'utf8'));
  assert.equal(documents.length, 1, 'one object');
  return documents[0]?.toJS() as StaticPod;
}

describe('static pod manifest', () => {
  let fake: FakeApiserver;
  let tmp: TempDir;
  let env: KubectlEnv;

  before(async () => {
    const pki = await createPki();
    tmp = await TempDir.create('kcp-deploy-');
    fake = await startFakeApiserver({
      tls: { cert: pki.serving.certPem, key: pki.serving.keyPem },
      clientCA: pki.clientCA.certPem,
    });
    const admin = await pki.clientCA.issue({
      commonName: 'kubernetes-admin',
      organizations: ['system:masters'],
    });
    env = {
      kubeconfig: await writeKubeconfig(tmp, fake.url, pki.servingCA.certPem, { cert: admin }),
      cacheDir: tmp.file('kube-cache'),
      home: tmp.path,
    };
  });
  after(async () => {
    await fake?.close();
    await tmp?.remove();
  });

  test('kubectl apply --dry-run=client reads it as one Pod in kube-system', async () => {
    // Client-side apply needs discovery (the fake serves it) and, with --validate, the OpenAPI
    // schema, which the fake does not serve: the schema check is the next test, offline.
    const result = await runKubectl(env, [
      'apply',
      '--dry-run=client',
      '--validate=false',
      '-o',
      'json',
      '-f',
      MANIFEST,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const pod = JSON.parse(result.stdout) as StaticPod;
    assert.equal(pod.kind, 'Pod');
    assert.equal(pod.metadata.name, 'kube-crl-proxy');
    assert.equal(pod.metadata.namespace, 'kube-system');
    assert.deepEqual(pod.spec, readManifest().spec, 'kubectl read every field as written');
  });

  test("Kubernetes' schema: types, required fields, no unknown field", () => {
    assert.deepEqual(schemaProblems(readManifest()), []);
    const typo = structuredClone(readManifest()) as unknown as { spec: Record<string, unknown> };
    typo.spec.hostNetwrk = true;
    assert.match(schemaProblems(typo).join('\n'), /\.spec\.hostNetwrk: unknown field in V1PodSpec/);
  });

  test('every flag exists; probes and mounts fit the flags', () => {
    const pod = readManifest();
    assert.equal(pod.spec.hostNetwork, true);
    assert.equal(pod.spec.priorityClassName, 'system-node-critical');
    const container = pod.spec.containers[0] as Container;
    const known = new Set(Object.keys(RUN_OPTIONS));
    for (const name of flagNames(container.args)) assert.ok(known.has(name), `--${name} is a flag`);
    const value = (flag: string) =>
      container.args.find((a) => a.startsWith(`--${flag}=`))?.slice(flag.length + 3) ?? '';
    const [adminHost, adminPort] = value('metrics-listen').split(':');
    for (const probe of [container.livenessProbe, container.readinessProbe]) {
      assert.equal(probe.httpGet.host, adminHost);
      assert.equal(String(probe.httpGet.port), adminPort);
    }
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.ok(container.resources.requests.cpu && container.resources.requests.memory);
    const fileFlags = flagNames(container.args).filter((f) => f.endsWith('-file'));
    for (const flag of fileFlags) {
      const mount = container.volumeMounts.find((m) => value(flag).startsWith(`${m.mountPath}/`));
      assert.ok(mount, `--${flag} is under a mount`);
      assert.equal(mount.readOnly, true, `--${flag} is mounted read-only`);
    }
  });
});
