/**
 * deploy/kubernetes/kube-crl-proxy.yaml, the static pod: read by the real kubectl's client side,
 * checked against Kubernetes' schema, and consistent with the proxy's flags: it mounts exactly
 * the files the flags name, read-only, gives the drain its time, and keeps no privilege. The CRL
 * renewal CronJob (crl-renew-cronjob.yaml): Kubernetes' schema, its mounts fit its flags and the
 * static pod's, and its command runs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CRL_SIGNING_OPTIONS } from '../../src/cli/crl-command.js';
import { parseDuration } from '../../src/config/config.js';
import { RUN_OPTIONS } from '../../src/config/options.js';
import { type FakeApiserver, startFakeApiserver } from '../../src/demo/fake-apiserver/index.js';
import {
  type KubectlEnv,
  runKubectl,
  TempDir,
  writeKubeconfig,
} from '../fake-apiserver/testkit.js';
import { makePki, type TestPki } from '../support/pki.js';
import { flagNames, MANIFEST, RENEW_CRONJOB } from './deploy-files.js';
import { schemaProblems } from './kube-schema.js';
import { runRenewAsDeployed } from './renew-run.js';

interface Probe {
  readonly httpGet: { readonly host: string; readonly port: number; readonly path: string };
}
interface SecurityContext {
  readonly runAsUser?: number;
  readonly runAsGroup?: number;
  readonly runAsNonRoot?: boolean;
  readonly privileged?: boolean;
  readonly allowPrivilegeEscalation?: boolean;
  readonly readOnlyRootFilesystem?: boolean;
  readonly capabilities?: { readonly drop?: readonly string[]; readonly add?: readonly string[] };
}
interface Container {
  readonly image: string;
  readonly args: readonly string[];
  readonly securityContext: SecurityContext;
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
    readonly terminationGracePeriodSeconds?: number;
    readonly securityContext: { readonly seccompProfile?: { readonly type: string } };
    readonly containers: readonly Container[];
    readonly volumes: readonly {
      readonly name: string;
      readonly hostPath?: { readonly path: string; readonly type?: string };
    }[];
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
  let pki: TestPki;

  before(async () => {
    pki = await makePki();
    tmp = await TempDir.create('kcp-deploy-');
    fake = await startFakeApiserver({
      tls: { cert: pki.apiserver.certPem, key: pki.apiserver.keyPem },
      clientCA: pki.clusterCa.certPem,
    });
    const admin = await pki.clusterCa.issue({
      commonName: 'kubernetes-admin',
      organizations: ['system:masters'],
    });
    env = {
      kubeconfig: await writeKubeconfig(tmp, fake.url, pki.clusterCa.certPem, { cert: admin }),
      cacheDir: tmp.file('kube-cache'),
      home: tmp.path,
    };
  });
  after(async () => {
    await fake?.close();
    await tmp?.remove();
    pki?.cleanup();
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
      const mount = container.volumeMounts.find(
        (m) => value(flag) === m.mountPath || value(flag).startsWith(`${m.mountPath}/`),
      );
      assert.ok(mount, `--${flag} is under a mount`);
      assert.equal(mount.readOnly, true, `--${flag} is mounted read-only`);
    }
  });

  test('it mounts only the files its flags name, each from the same host path, read-only', () => {
    const pod = readManifest();
    const container = pod.spec.containers[0] as Container;
    const values = (flag: string) =>
      container.args.filter((a) => a.startsWith(`--${flag}=`)).map((a) => a.slice(flag.length + 3));
    const files = new Set(
      flagNames(container.args)
        .filter((f) => f.endsWith('-file') && f !== 'crl-file')
        .flatMap(values),
    );
    const crlDirs = new Set(values('crl-file').map((d) => d.replace(/\/$/, '')));
    const volumes = new Map(pod.spec.volumes.map((v) => [v.name, v]));
    const mounted = container.volumeMounts.map((m) => {
      const hostPath = volumes.get(m.name)?.hostPath;
      assert.ok(hostPath, `${m.name} is a hostPath volume`);
      assert.equal(hostPath.path, m.mountPath, `${m.name}: the host path, at the same place`);
      assert.equal(m.readOnly, true, `${m.name} is read-only`);
      const expectedType = crlDirs.has(m.mountPath) ? 'Directory' : 'File';
      assert.equal(
        hostPath.type,
        expectedType,
        `${m.name}: type ${expectedType}, so a missing one stops the pod`,
      );
      return m.mountPath;
    });
    assert.deepEqual(mounted.sort(), [...files, ...crlDirs].sort());
    assert.equal(pod.spec.volumes.length, mounted.length, 'no volume left unmounted');
    assert.ok(
      !mounted.includes('/etc/kubernetes/pki'),
      'never the whole PKI (ca.key, sa.key, etcd)',
    );
  });

  test('terminationGracePeriodSeconds is above --shutdown-grace', () => {
    const pod = readManifest();
    const container = pod.spec.containers[0] as Container;
    const grace = container.args.find((a) => a.startsWith('--shutdown-grace='));
    assert.ok(grace, '--shutdown-grace is set in the manifest, beside the grace period');
    const graceMs = parseDuration('shutdown-grace', grace.slice('--shutdown-grace='.length));
    const period = pod.spec.terminationGracePeriodSeconds;
    assert.ok(period !== undefined && period * 1000 > graceMs, `${period} s > ${graceMs} ms`);
  });

  test('no privilege: every capability dropped, no escalation, read-only root, RuntimeDefault seccomp', () => {
    const pod = readManifest();
    const security = (pod.spec.containers[0] as Container).securityContext;
    assert.equal(pod.spec.securityContext.seccompProfile?.type, 'RuntimeDefault');
    assert.deepEqual(security.capabilities?.drop, ['ALL']);
    assert.equal(security.capabilities?.add, undefined);
    assert.equal(security.allowPrivilegeEscalation, false);
    assert.equal(security.readOnlyRootFilesystem, true);
    assert.notEqual(security.privileged, true);
    // Root, explicitly, for kubeadm's root-owned 0600 keys (docs/kubeadm.md shows the other way).
    assert.equal(security.runAsUser, 0);
  });
});

interface CronJobObject {
  readonly kind: string;
  readonly metadata: { readonly namespace: string };
  readonly spec: {
    readonly schedule: string;
    readonly concurrencyPolicy: string;
    readonly jobTemplate: {
      readonly spec: {
        readonly template: {
          readonly spec: {
            readonly nodeSelector: Record<string, string>;
            readonly tolerations: readonly { readonly key: string }[];
            readonly containers: readonly Container[];
          };
        };
      };
    };
  };
}

function readCronJob(): CronJobObject {
  const documents = parseAllDocuments(readFileSync(RENEW_CRONJOB, 'utf8'));
  assert.equal(documents.length, 1, 'one object');
  return documents[0]?.toJS() as CronJobObject;
}

describe('CRL renewal CronJob', () => {
  test("Kubernetes' schema: types, required fields, no unknown field", () => {
    assert.deepEqual(schemaProblems(readCronJob()), []);
    const typo = structuredClone(readCronJob()) as unknown as { spec: Record<string, unknown> };
    typo.spec.schedul = '@daily';
    assert.match(
      schemaProblems(typo).join('\n'),
      /\.spec\.schedul: unknown field in V1CronJobSpec/,
    );
  });

  test("daily, never two at once, on a control-plane node; the static pod's image and CRL directory", () => {
    const cronJob = readCronJob();
    assert.equal(cronJob.metadata.namespace, 'kube-system');
    const [minute, hour, ...rest] = cronJob.spec.schedule.split(' ');
    assert.deepEqual(rest, ['*', '*', '*'], 'every day');
    assert.match(`${minute} ${hour}`, /^\d+ \d+$/);
    assert.equal(cronJob.spec.concurrencyPolicy, 'Forbid');
    const pod = cronJob.spec.jobTemplate.spec.template.spec;
    assert.ok(pod.nodeSelector['kubernetes.io/hostname']);
    assert.ok(pod.tolerations.some((t) => t.key === 'node-role.kubernetes.io/control-plane'));
    const container = pod.containers[0] as Container;
    const staticPod = readManifest().spec.containers[0] as Container;
    assert.equal(container.image, staticPod.image);
    const value = (args: readonly string[], flag: string) =>
      args.find((a) => a.startsWith(`--${flag}=`))?.slice(flag.length + 3) ?? '';
    assert.equal(`${dirname(value(container.args, 'crl'))}/`, value(staticPod.args, 'crl-file'));
  });

  test('its flags exist; every file is under a mount, only the CRL directory writable; the command runs', async () => {
    const container = readCronJob().spec.jobTemplate.spec.template.spec.containers[0] as Container;
    assert.deepEqual(container.args.slice(0, 2), ['crl', 'renew']);
    const known = new Set(Object.keys(CRL_SIGNING_OPTIONS));
    for (const name of flagNames(container.args))
      assert.ok(known.has(name), `--${name} is a crl renew flag`);
    assert.ok(container.args.includes('--next-update=7d'));
    const mountOf = (path: string) =>
      [...container.volumeMounts]
        .sort((a, b) => b.mountPath.length - a.mountPath.length)
        .find((m) => path.startsWith(`${m.mountPath}/`));
    for (const arg of container.args.filter(
      (a) => a.startsWith('--ca-') || a.startsWith('--crl='),
    )) {
      const path = arg.slice(arg.indexOf('=') + 1);
      const mount = mountOf(path);
      assert.ok(mount, `${arg} is under a mount`);
      assert.equal(
        mount.readOnly === true,
        !arg.startsWith('--crl='),
        `${arg}: read-only unless it is the CRL`,
      );
    }
    await runRenewAsDeployed(container.args);
  });
});
