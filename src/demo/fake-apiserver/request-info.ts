/**
 * apiserver/pkg/endpoints/request/requestinfo.go: how kube-apiserver reads a URL into verb,
 * group, version, namespace, resource, name and subresource. Routing and the authorizer's
 * Forbidden messages both work from it, so they agree with each other and with kube.
 */
import { forbidden, type KubeStatus } from './status.js';
import type { UserInfo } from './types.js';

export interface RequestInfo {
  readonly isResourceRequest: boolean;
  readonly path: string;
  readonly verb: string;
  readonly apiGroup: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly resource: string;
  readonly subresource: string;
  readonly name: string;
}

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const WEBSOCKET_CREATE_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);

/** Non-resource paths the default RBAC (system:public-info-viewer) opens to anonymous users. */
const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);

export function parseRequestInfo(
  method: string,
  path: string,
  query: URLSearchParams,
  isWebSocket: boolean,
): RequestInfo {
  const info = {
    isResourceRequest: false,
    path,
    verb: method.toLowerCase(),
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
  };
  let parts = path.split('/').filter((p) => p !== '');
  if (parts.length < 3 || (parts[0] !== 'api' && parts[0] !== 'apis')) return info;
  const grouped = parts[0] === 'apis';
  parts = parts.slice(1);
  if (grouped) {
    if (parts.length < 3) return info;
    info.apiGroup = parts[0] as string;
    parts = parts.slice(1);
  }
  info.isResourceRequest = true;
  info.apiVersion = parts[0] as string;
  parts = parts.slice(1);

  if (SPECIAL_VERBS.has(parts[0] ?? '')) {
    info.verb = parts[0] as string;
    parts = parts.slice(1);
  } else {
    info.verb = verbForMethod(method);
  }
  if (parts[0] === 'namespaces' && parts.length > 1) {
    info.namespace = parts[1] as string;
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2] as string)) parts = parts.slice(2);
  }
  info.resource = parts[0] ?? '';
  info.name = parts[1] ?? '';
  info.subresource = parts[2] ?? '';

  if (info.name === '' && info.verb === 'get') {
    info.verb = queryFlag(query, 'watch') ? 'watch' : 'list';
    const byName = exactNameSelector(query.get('fieldSelector'));
    if (byName !== null) info.name = byName;
  }
  if (info.name === '' && info.verb === 'delete') info.verb = 'deletecollection';
  // AuthorizePodWebsocketUpgradeCreatePermission (beta, on in 1.32): a WebSocket GET to
  // exec/attach/portforward is authorized as `create`, like the SPDY POST.
  if (isWebSocket && info.verb === 'get' && WEBSOCKET_CREATE_SUBRESOURCES.has(info.subresource)) {
    info.verb = 'create';
  }
  return info;
}

function verbForMethod(method: string): string {
  switch (method) {
    case 'POST':
      return 'create';
    case 'GET':
    case 'HEAD':
      return 'get';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return 'delete';
    default:
      return '';
  }
}

/**
 * metav1 bool query parameters: absent, "false" and "0" are false; anything else,
 * the empty string included, is true.
 */
export function queryFlag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value !== null && value !== '0' && value.toLowerCase() !== 'false';
}

/** `metadata.name=x` (or `==`) as the only requirement of a field selector. */
function exactNameSelector(selector: string | null): string | null {
  if (selector === null) return null;
  const match = /^\s*metadata\.name\s*==?\s*([^,=!]+?)\s*$/.exec(selector);
  return match?.[1] ?? null;
}

/**
 * The fake's authorizer: every authenticated user may do anything; anonymous users get what
 * kube's default RBAC gives them, the public health and version paths. Returns the 403
 * Status to send, or null when allowed.
 */
export function authorize(user: UserInfo, info: RequestInfo): KubeStatus | null {
  if (user.username !== 'system:anonymous') return null;
  if (!info.isResourceRequest && info.verb === 'get' && PUBLIC_PATHS.has(info.path)) return null;
  return forbidden(
    info.isResourceRequest ? { group: info.apiGroup, resource: info.resource } : null,
    info.name,
    forbiddenReason(user, info),
  );
}

/** authorization/filters forbiddenMessage. */
function forbiddenReason(user: UserInfo, info: RequestInfo): string {
  const who = `User ${JSON.stringify(user.username)}`;
  if (!info.isResourceRequest)
    return `${who} cannot ${info.verb} path ${JSON.stringify(info.path)}`;
  const resource = info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}`;
  const what = `${who} cannot ${info.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(info.apiGroup)}`;
  return info.namespace === ''
    ? `${what} at the cluster scope`
    : `${what} in the namespace ${JSON.stringify(info.namespace)}`;
}
