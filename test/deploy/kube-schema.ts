/**
 * Offline schema checks for Kubernetes objects the project ships (the static pod manifest, the
 * CRL renewal CronJob, the YAML of docs/kubeadm.md). Two sources generated from Kubernetes' own OpenAPI document:
 * kubernetes-models' validators (types, formats, required fields, enums) and
 * @kubernetes/client-node's model attribute maps, walked strictly for unknown fields (which the
 * validators allow) — what `kubectl apply --validate=strict` reports.
 */
import * as k8s from '@kubernetes/client-node';
import {
  ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding,
} from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { CronJob } from 'kubernetes-models/batch/v1';
import { EndpointSlice } from 'kubernetes-models/discovery.k8s.io/v1';
import { Pod } from 'kubernetes-models/v1';

interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
}

type Validate = (data: KubeObject) => void;

/** The parsed YAML as a model's constructor argument: the validator is what checks it. */
function modelData<T extends abstract new (...args: never[]) => unknown>(
  data: KubeObject,
): ConstructorParameters<T>[0] {
  return data as unknown as ConstructorParameters<T>[0];
}

/** Only the kinds the project ships: adding one here is a deliberate act. */
const VALIDATORS: Readonly<Record<string, Validate>> = {
  'v1/Pod': (data) => new Pod(modelData<typeof Pod>(data)).validate(),
  'apps/v1/DaemonSet': (data) => new DaemonSet(modelData<typeof DaemonSet>(data)).validate(),
  'batch/v1/CronJob': (data) => new CronJob(modelData<typeof CronJob>(data)).validate(),
  'discovery.k8s.io/v1/EndpointSlice': (data) =>
    new EndpointSlice(modelData<typeof EndpointSlice>(data)).validate(),
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy': (data) =>
    new ValidatingAdmissionPolicy(modelData<typeof ValidatingAdmissionPolicy>(data)).validate(),
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding': (data) =>
    new ValidatingAdmissionPolicyBinding(
      modelData<typeof ValidatingAdmissionPolicyBinding>(data),
    ).validate(),
};

/** Problems with one object; [] when it is valid. */
export function schemaProblems(value: unknown): string[] {
  if (value === null || typeof value !== 'object') return ['not an object'];
  const object = value as KubeObject;
  const key = `${object.apiVersion}/${object.kind}`;
  const validate = VALIDATORS[key];
  if (validate === undefined) return [`no schema here for ${key}`];
  const problems: string[] = [];
  try {
    validate(object);
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err));
  }
  const version = object.apiVersion.split('/').at(-1) ?? '';
  const typeName = `${version.charAt(0).toUpperCase()}${version.slice(1)}${object.kind}`;
  problems.push(...unknownFields(object, typeName, ''));
  return problems;
}

interface Attribute {
  readonly baseName: string;
  readonly type: string;
}

interface Model {
  getAttributeTypeMap(): readonly Attribute[];
}

function modelOf(type: string): Model | null {
  const candidate = (k8s as unknown as Record<string, unknown>)[type];
  if (typeof candidate === 'function' && 'getAttributeTypeMap' in candidate) {
    return candidate as unknown as Model;
  }
  return null;
}

const ARRAY = /^Array<(.+)>$/;
const MAP = /^\{ \[key: string\]: (.+); \}$/;

/** Fields not in the schema, and values of the wrong JSON type, as JSON paths. */
export function unknownFields(value: unknown, type: string, path: string): string[] {
  const array = ARRAY.exec(type);
  if (array !== null) {
    if (!Array.isArray(value)) return [`${path}: expected an array`];
    return value.flatMap((item, i) => unknownFields(item, array[1] as string, `${path}[${i}]`));
  }
  const map = MAP.exec(type);
  if (map !== null) {
    if (!isObject(value)) return [`${path}: expected a map`];
    return Object.entries(value).flatMap(([k, v]) =>
      unknownFields(v, map[1] as string, `${path}.${k}`),
    );
  }
  switch (type) {
    case 'string':
    case 'Date':
      return typeof value === 'string' ? [] : [`${path}: expected a string`];
    case 'number':
      return typeof value === 'number' ? [] : [`${path}: expected a number`];
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${path}: expected a boolean`];
    case 'IntOrString':
      return typeof value === 'string' || typeof value === 'number'
        ? []
        : [`${path}: expected an int or a string`];
    case 'any':
    case 'object':
      return [];
  }
  const model = modelOf(type);
  if (model === null) return [`${path}: no model ${type}`];
  if (!isObject(value)) return [`${path}: expected an object (${type})`];
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const fieldType = attributes.get(k);
    return fieldType === undefined
      ? [`${path}.${k}: unknown field in ${type}`]
      : unknownFields(v, fieldType, `${path}.${k}`);
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
