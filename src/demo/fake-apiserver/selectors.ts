/**
 * Label and field selectors for lists and watches: the equality-based subset kube supports
 * everywhere (`a=b`, `a==b`, `a!=b`, and for labels `a` / `!a`). Set-based label
 * requirements (`in`, `notin`) are refused with 400 rather than silently ignored.
 */
import type { ClusterObject } from './cluster.js';

type Requirement =
  | { readonly op: 'eq' | 'neq'; readonly key: string; readonly value: string }
  | { readonly op: 'exists' | 'absent'; readonly key: string };

export type Selector = (object: ClusterObject) => boolean;

export class SelectorError extends Error {
  readonly code = 'ERR_SELECTOR';
}

/** Fields kube-apiserver 1.32 indexes for these resources (others are "not supported"). */
const SUPPORTED_FIELDS: Record<ClusterObject['kind'], readonly string[]> = {
  Node: ['metadata.name', 'spec.unschedulable'],
  Pod: ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase'],
};

export function parseSelectors(
  kind: ClusterObject['kind'],
  labelSelector: string | null,
  fieldSelector: string | null,
): Selector {
  const labels = parseRequirements(labelSelector ?? '', true);
  const fields = parseRequirements(fieldSelector ?? '', false);
  for (const r of fields) {
    if (!SUPPORTED_FIELDS[kind].includes(r.key)) {
      throw new SelectorError(`field label not supported: ${r.key}`);
    }
  }
  return (object) =>
    labels.every((r) => matches(r, labelsOf(object))) &&
    fields.every((r) => matches(r, fieldsOf(object)));
}

function parseRequirements(selector: string, allowExistence: boolean): Requirement[] {
  const requirements: Requirement[] = [];
  for (const raw of selector.split(',')) {
    const term = raw.trim();
    if (term === '') continue;
    const match = /^([^!=\s]+)\s*(==|=|!=)\s*([^!=\s]*)$/.exec(term);
    if (match !== null) {
      const [, key = '', op, value = ''] = match;
      requirements.push({ op: op === '!=' ? 'neq' : 'eq', key, value });
      continue;
    }
    if (allowExistence && /^!?[A-Za-z0-9./_-]+$/.test(term)) {
      const absent = term.startsWith('!');
      requirements.push({ op: absent ? 'absent' : 'exists', key: absent ? term.slice(1) : term });
      continue;
    }
    throw new SelectorError(`unable to parse requirement: ${JSON.stringify(term)}`);
  }
  return requirements;
}

function matches(r: Requirement, values: Readonly<Record<string, string>>): boolean {
  const actual = values[r.key];
  switch (r.op) {
    case 'eq':
      return actual === r.value;
    case 'neq':
      return actual !== r.value;
    case 'exists':
      return actual !== undefined;
    case 'absent':
      return actual === undefined;
  }
}

export function labelsOf(object: ClusterObject): Record<string, string> {
  if (object.kind === 'Pod') return { app: object.name };
  const labels: Record<string, string> = {
    'beta.kubernetes.io/arch': 'amd64',
    'beta.kubernetes.io/os': 'linux',
    'kubernetes.io/arch': 'amd64',
    'kubernetes.io/hostname': object.name,
    'kubernetes.io/os': 'linux',
  };
  for (const role of object.roles) labels[`node-role.kubernetes.io/${role}`] = '';
  return labels;
}

function fieldsOf(object: ClusterObject): Record<string, string> {
  if (object.kind === 'Node')
    return { 'metadata.name': object.name, 'spec.unschedulable': 'false' };
  return {
    'metadata.name': object.name,
    'metadata.namespace': object.namespace,
    'spec.nodeName': object.nodeName,
    'status.phase': object.phase,
  };
}
