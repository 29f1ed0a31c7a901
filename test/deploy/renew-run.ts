/**
 * Runs a `kube-crl-proxy crl renew` command line taken from a deployment file (the systemd
 * unit, the CronJob) with the real binary, kubeadm's /etc/kubernetes/pki moved to a test PKI:
 * twice, so the first run creates the CRL and the second renews it, then the proxy's own loader
 * reads the result.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadTrustData } from '../../src/pki/trust.js';
import { makePki } from '../support/pki.js';
import { runBin } from '../support/proxy-process.js';

const KUBEADM_PKI = '/etc/kubernetes/pki';

/** `args` as after the binary's name: `crl renew --ca-cert=… …`. */
export async function runRenewAsDeployed(args: readonly string[]): Promise<void> {
  const pki = await makePki();
  try {
    pki.write('ca.key', pki.clusterCa.cert.keyPem);
    mkdirSync(join(pki.dir, 'crl'));
    const moved = args.map((a) => a.replace(KUBEADM_PKI, pki.dir));
    const crl = moved.find((a) => a.startsWith('--crl='))?.slice('--crl='.length) ?? '';
    assert.ok(crl.startsWith(`${pki.dir}/`), `--crl is under ${KUBEADM_PKI}`);
    for (const expected of ['1', '2']) {
      const result = await runBin([...moved]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`CRL number ${expected} of "CN=kubernetes"`));
    }
    const data = loadTrustData(
      { clientCaFile: pki.files.clientCa, crlFiles: [crl], crlMissingPolicy: 'reject' },
      null,
    );
    assert.equal(data.issuers[0]?.crlNumber, '2', 'the proxy loads the renewed CRL');
  } finally {
    pki.cleanup();
  }
}
