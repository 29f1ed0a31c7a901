/**
 * Legacy (unaggregated) discovery documents. They are answered as plain application/json,
 * which tells client-go to use the legacy discovery path even though it asks for the
 * aggregated apidiscovery.k8s.io/v2 format first (reference/kube-protocol.md §3). Only what
 * this fake serves is advertised, so kubectl never picks a verb that would 405.
 */
import { KUBE_VERSION } from './objects.js';

export const AUTHENTICATION_GROUP = 'authentication.k8s.io';

const authenticationVersion = { groupVersion: `${AUTHENTICATION_GROUP}/v1`, version: 'v1' };

const authenticationGroup = {
  name: AUTHENTICATION_GROUP,
  versions: [authenticationVersion],
  preferredVersion: authenticationVersion,
};

const POD_SUBRESOURCE_VERBS = ['create', 'get'];

/** The JSON body of every discovery path, by path; the address goes into /api. */
export function discoveryDocuments(serverAddress: string): ReadonlyMap<string, unknown> {
  return new Map<string, unknown>([
    [
      '/api',
      {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
      },
    ],
    ['/apis', { kind: 'APIGroupList', apiVersion: 'v1', groups: [authenticationGroup] }],
    [
      `/apis/${AUTHENTICATION_GROUP}`,
      { kind: 'APIGroup', apiVersion: 'v1', ...authenticationGroup },
    ],
    ['/api/v1', coreResources()],
    [`/apis/${AUTHENTICATION_GROUP}/v1`, authenticationResources()],
  ]);
}

function coreResources() {
  const subresource = (name: string, kind: string, verbs: string[]) => ({
    name,
    singularName: '',
    namespaced: true,
    kind,
    verbs,
  });
  return {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [
      {
        name: 'nodes',
        singularName: 'node',
        namespaced: false,
        kind: 'Node',
        verbs: ['get', 'list', 'watch'],
        shortNames: ['no'],
      },
      {
        name: 'pods',
        singularName: 'pod',
        namespaced: true,
        kind: 'Pod',
        verbs: ['get', 'list', 'watch'],
        shortNames: ['po'],
        categories: ['all'],
      },
      subresource('pods/attach', 'PodAttachOptions', POD_SUBRESOURCE_VERBS),
      subresource('pods/exec', 'PodExecOptions', POD_SUBRESOURCE_VERBS),
      subresource('pods/log', 'Pod', ['get']),
      subresource('pods/portforward', 'PodPortForwardOptions', POD_SUBRESOURCE_VERBS),
      subresource('pods/status', 'Pod', ['get']),
    ],
  };
}

function authenticationResources() {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: `${AUTHENTICATION_GROUP}/v1`,
    resources: [
      {
        name: 'selfsubjectreviews',
        singularName: 'selfsubjectreview',
        namespaced: false,
        kind: 'SelfSubjectReview',
        verbs: ['create'],
      },
    ],
  };
}

/** /version; gitCommit and buildDate are illustrative, not those of the real v1.32.4 build. */
export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: KUBE_VERSION,
  gitCommit: '59526cd4867447956156ae3a602fcbac10a2c335',
  gitTreeState: 'clean',
  buildDate: '2025-04-22T16:00:57Z',
  goVersion: 'go1.23.8',
  compiler: 'gc',
  platform: 'linux/amd64',
};
