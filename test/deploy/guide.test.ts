/**
 * docs/kubeadm.md: its Kubernetes YAML passes Kubernetes' schema, its kubeadm configuration
 * carries what the steps rely on, its kube-crl-proxy command lines use real flags, and its
 * openssl CRL flow, run as written, produces a CRL the proxy verifies and that revokes. The
 * kubeadm patch files it installs: test/deploy/kubeadm-patches.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CHECK_CERT_OPTIONS } from '../../src/cli/check-cert-command.js';
import { INSPECT_CRL_OPTIONS } from '../../src/cli/inspect-crl-command.js';
import { RUN_OPTIONS } from '../../src/config/options.js';
import { makePki, type TestPki } from '../support/pki.js';
import { runBin } from '../support/proxy-process.js';
import { flagNames, GUIDE } from './deploy-files.js';
import { schemaProblems } from './kube-schema.js';

interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
}

const OPENSSL = '/usr/bin/openssl';

/** The fenced blocks of the guide in one language, in order. */
function blocks(language: string): string[] {
  const text = readFileSync(GUIDE, 'utf8');
  return [...text.matchAll(new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map(
    (m) => m[1] as string,
  );
}

/** Every `kube-crl-proxy …` command line of the guide's shell blocks. */
function proxyCommandLines(): string[] {
  return blocks('sh')
    .flatMap((block) => block.split('\n'))
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line.startsWith('kube-crl-proxy '));
}

const SUBCOMMANDS = ['check-cert', 'inspect-crl', 'check-config'];

const FLAGS_OF: Readonly<Record<string, ReadonlySet<string>>> = {
  'check-config': new Set([...Object.keys(RUN_OPTIONS), 'config']),
  'check-cert': new Set([...Object.keys(CHECK_CERT_OPTIONS), 'o']),
  'inspect-crl': new Set([...Object.keys(INSPECT_CRL_OPTIONS), 'o']),
  run: new Set([...Object.keys(RUN_OPTIONS), 'config', 'print-config']),
};

describe('docs/kubeadm.md', () => {
  /** The YAML documents of the guide, kubeadm's configuration kept apart. */
  function yamlObjects(): { kube: KubeObject[]; kubeadm: KubeObject[] } {
    const all = blocks('yaml').flatMap((block) =>
      parseAllDocuments(block).map((d) => d.toJS() as KubeObject),
    );
    const isKubeadm = (o: KubeObject) => o.apiVersion.startsWith('kubeadm.k8s.io/');
    return { kube: all.filter((o) => !isKubeadm(o)), kubeadm: all.filter(isKubeadm) };
  }

  test("every Kubernetes object passes Kubernetes' schema", () => {
    const objects = yamlObjects().kube;
    assert.ok(objects.length >= 4, 'EndpointSlice, policy, binding, DaemonSet');
    for (const object of objects) {
      assert.deepEqual(schemaProblems(object), [], JSON.stringify(object).slice(0, 80));
    }
    const kinds = objects.map((o) => o.kind);
    assert.ok(
      kinds.includes('ValidatingAdmissionPolicy') &&
        kinds.includes('ValidatingAdmissionPolicyBinding'),
    );
    const slice = objects.find((o) => o.kind === 'EndpointSlice') as unknown as {
      metadata: { name: string; namespace: string; labels: Record<string, string> };
      ports: { name: string; port: number }[];
    };
    // kube-apiserver's own slice name and label (section 4), on the proxy's port.
    assert.deepEqual(
      [
        slice.metadata.name,
        slice.metadata.namespace,
        slice.metadata.labels['kubernetes.io/service-name'],
      ],
      ['kubernetes', 'default', 'kubernetes'],
    );
    assert.deepEqual(slice.ports, [{ name: 'https', port: 6443, protocol: 'TCP' }]);
  });

  test("kubeadm configuration: the node's address and name for the certificate; the patches for upgrades", () => {
    const { kubeadm } = yamlObjects();
    const init = kubeadm.find((o) => o.kind === 'InitConfiguration') as unknown as {
      localAPIEndpoint: { advertiseAddress: string; bindPort: number };
      nodeRegistration: { name: string };
    };
    assert.equal(init.localAPIEndpoint.advertiseAddress, '192.0.2.10');
    assert.equal(init.localAPIEndpoint.bindPort, 6443, 'the proxy keeps 6443 for clients');
    assert.ok(init.nodeRegistration.name);
    const upgrade = kubeadm.find((o) => o.kind === 'UpgradeConfiguration') as unknown as {
      apply: { patches: { directory: string } };
      node: { patches: { directory: string } };
    };
    assert.equal(upgrade.apply.patches.directory, '/etc/kubernetes/kube-crl-proxy-patches');
    assert.equal(upgrade.node.patches.directory, '/etc/kubernetes/kube-crl-proxy-patches');
    for (const o of kubeadm) assert.equal(o.apiVersion, 'kubeadm.k8s.io/v1beta4');
    const commands = blocks('sh').join('\n');
    assert.match(commands, /kubeadm init phase certs apiserver --config \/root\/kubeadm\.yaml/);
    assert.match(
      commands,
      /kubeadm init phase control-plane apiserver --config \/root\/kubeadm\.yaml --patches \/etc\/kubernetes\/kube-crl-proxy-patches/,
    );
    assert.match(
      commands,
      /openssl x509 -in \/etc\/kubernetes\/pki\/apiserver\.crt -noout -ext subjectAltName/,
    );
  });

  test('the move: the proxy is started only after the apiserver has closed :6443; rollback in reverse', () => {
    const step = (text: string, pattern: RegExp) => {
      const i = text.split('\n').findIndex((l) => pattern.test(l));
      assert.ok(i >= 0, String(pattern));
      return i;
    };
    const move = blocks('sh')[0] ?? '';
    const rollback =
      blocks('sh').find((b) => b.includes('rm /etc/kubernetes/manifests/kube-crl-proxy.yaml')) ??
      '';
    const regenerate = step(move, /^kubeadm init phase control-plane apiserver .*--patches/);
    const released = step(move, /^while ss -Hltn 'sport = :6443'/);
    const start = step(
      move,
      /^cp deploy\/kubernetes\/kube-crl-proxy\.yaml \/etc\/kubernetes\/manifests\//,
    );
    assert.ok(regenerate < released && released < start);
    const stop = step(rollback, /^rm \/etc\/kubernetes\/manifests\/kube-crl-proxy\.yaml/);
    const freed = step(rollback, /^while ss -Hltn 'sport = :6443'/);
    const stock = step(
      rollback,
      /^kubeadm init phase control-plane apiserver --config \/root\/kubeadm\.yaml$/,
    );
    assert.ok(stop < freed && freed < stock);
    assert.match(rollback, /rm -r \/etc\/kubernetes\/kube-crl-proxy-patches/);
  });

  test('kube-crl-proxy command lines use existing flags', () => {
    const lines = proxyCommandLines();
    assert.ok(lines.length >= 4);
    for (const line of lines) {
      const words = line.split(/\s+/);
      const command = SUBCOMMANDS.includes(words[1] ?? '') ? (words[1] as string) : 'run';
      for (const flag of flagNames(words)) {
        assert.ok(FLAGS_OF[command]?.has(flag), `${line}: --${flag}`);
      }
    }
  });

  describe('the openssl ca flow, as written', () => {
    let pki: TestPki;
    let dir: string;
    before(async () => {
      pki = await makePki();
      dir = join(pki.dir, 'crl-ca');
      mkdirSync(dir);
    });
    after(() => pki?.cleanup());

    test('revoke, gencrl, publish: the proxy verifies the CRL and refuses the certificate', async (t) => {
      if (!existsSync(OPENSSL)) {
        t.skip(`${OPENSSL} is not installed (apt-get install openssl)`);
        return;
      }
      const config = blocks('ini')[0] ?? '';
      assert.ok(config.startsWith('# /etc/kubernetes/crl-ca/openssl.cnf\n'));
      writeFileSync(
        join(dir, 'openssl.cnf'),
        config
          .replace('dir              = /etc/kubernetes/crl-ca', `dir              = ${dir}`)
          .replace('/etc/kubernetes/pki/ca.crt', pki.files.clientCa)
          .replace('/etc/kubernetes/pki/ca.key', pki.write('ca.key', pki.clusterCa.cert.keyPem)),
      );
      writeFileSync(join(dir, 'index.txt'), '');
      writeFileSync(join(dir, 'crlnumber'), '1000\n');
      const mallory = await pki.user('mallory', ['dev']);
      const malloryFile = pki.write('mallory.crt', mallory.certPem);
      const openssl = (...args: string[]) =>
        execFileSync(OPENSSL, ['ca', '-config', join(dir, 'openssl.cnf'), ...args], {
          cwd: dir,
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 30_000,
        });
      openssl('-revoke', malloryFile, '-crl_reason', 'keyCompromise');
      // The guide's serial-only revocation: its printf line, with a serial and a time.
      const format = /printf '([^']+)'/.exec(readFileSync(GUIDE, 'utf8'))?.[1] ?? '';
      const line = format
        .replace('%s', '261101000000Z')
        .replace('%s', '0ABCDEF123')
        .replaceAll('\\t', '\t')
        .replaceAll('\\n', '\n');
      writeFileSync(join(dir, 'index.txt'), readFileSync(join(dir, 'index.txt'), 'utf8') + line);
      openssl('-gencrl', '-out', pki.files.crl);

      const check = await runBin([
        'check-cert',
        malloryFile,
        `--client-ca-file=${pki.files.clientCa}`,
        `--crl-file=${pki.files.crl}`,
        '-o',
        'json',
      ]);
      assert.equal(check.code, 1, check.stderr);
      assert.equal((JSON.parse(check.stdout) as { reason: string }).reason, 'revoked');
      const inspect = await runBin([
        'inspect-crl',
        pki.files.crl,
        `--client-ca-file=${pki.files.clientCa}`,
        '--serial=0ABCDEF123',
        '-o',
        'json',
      ]);
      assert.equal(inspect.code, 0, inspect.stderr);
      const [crl] = (
        JSON.parse(inspect.stdout) as {
          crls: {
            crlNumber: string;
            entries: number;
            signature: { status: string };
            serial: { revoked: boolean; revokedAt: string };
          }[];
        }
      ).crls;
      assert.equal(crl?.crlNumber, String(0x1000));
      assert.equal(crl?.entries, 2);
      assert.equal(crl?.signature.status, 'verified');
      assert.deepEqual(
        [crl?.serial.revoked, crl?.serial.revokedAt],
        [true, '2026-11-01T00:00:00Z'],
      );
    });
  });
});
