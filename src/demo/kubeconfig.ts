/** Kubeconfig files for the demo's users and the tests' kubectl runs. */
import type { IssuedCert } from './pki-factory.js';

/** Credentials of a kubeconfig user: a client certificate, a bearer token, or neither. */
export interface KubeconfigCredentials {
  readonly cert?: Pick<IssuedCert, 'certPem' | 'keyPem'>;
  readonly token?: string;
}

/** A kubeconfig with everything embedded (-data fields), context `<user>@<cluster>`. */
export function kubeconfigFor(
  server: string,
  caPem: string,
  user: string,
  credentials: KubeconfigCredentials,
  cluster = 'demo',
): string {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const fields: string[] = [];
  if (credentials.cert !== undefined) {
    fields.push(`    client-certificate-data: ${b64(credentials.cert.certPem)}`);
    fields.push(`    client-key-data: ${b64(credentials.cert.keyPem)}`);
  }
  if (credentials.token !== undefined) fields.push(`    token: ${credentials.token}`);
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${cluster}`,
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(caPem)}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    ...(fields.length > 0 ? fields : ['    {}']),
    'contexts:',
    `- name: ${user}@${cluster}`,
    '  context:',
    `    cluster: ${cluster}`,
    `    user: ${user}`,
    '    namespace: default',
    `current-context: ${user}@${cluster}`,
    '',
  ].join('\n');
}
