/**
 * metav1.Status error bodies, spelled the way kube-apiserver 1.32 spells them
 * (apimachinery/pkg/api/errors), because kubectl turns reason and message into what the
 * user reads ("Error from server (Forbidden): …", "You must be logged in to the server …").
 */
import { failureStatus } from '../../proxy/status.js';

export interface StatusDetails {
  readonly name?: string;
  readonly group?: string;
  readonly kind?: string;
}

export interface KubeStatus {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Success' | 'Failure';
  readonly message: string;
  readonly reason: string;
  readonly details?: StatusDetails;
  readonly code: number;
}

/** A resource name as errors print it: `pods`, or `selfsubjectreviews.authentication.k8s.io`. */
export interface GroupResource {
  readonly group: string;
  readonly resource: string;
}

function failure(
  code: number,
  reason: string,
  message: string,
  details?: StatusDetails,
): KubeStatus {
  return failureStatus(code, reason, message, details && compactDetails(details));
}

/** Go omits empty detail fields (omitempty); `details: {}` itself stays. */
function compactDetails(details: StatusDetails): StatusDetails {
  const out: { name?: string; group?: string; kind?: string } = {};
  if (details.name) out.name = details.name;
  if (details.group) out.group = details.group;
  if (details.kind) out.kind = details.kind;
  return out;
}

function groupResourceString(gr: GroupResource): string {
  return gr.group === '' ? gr.resource : `${gr.resource}.${gr.group}`;
}

/** What every authenticator failure looks like on the wire: no hint of the reason. */
export function unauthorized(): KubeStatus {
  return failure(401, 'Unauthorized', 'Unauthorized');
}

/** apierrors.NewForbidden: the message embeds the authorizer's explanation. */
export function forbidden(gr: GroupResource | null, name: string, why: string): KubeStatus {
  if (gr === null || gr.resource === '') return failure(403, 'Forbidden', `forbidden: ${why}`, {});
  const what = groupResourceString(gr);
  const message =
    name === '' ? `${what} is forbidden: ${why}` : `${what} "${name}" is forbidden: ${why}`;
  return failure(403, 'Forbidden', message, { group: gr.group, kind: gr.resource, name });
}

export function notFound(gr: GroupResource, name: string): KubeStatus {
  return failure(404, 'NotFound', `${groupResourceString(gr)} "${name}" not found`, {
    group: gr.group,
    kind: gr.resource,
    name,
  });
}

/** The apiserver's answer for paths and resources it does not serve. */
export function noSuchResource(): KubeStatus {
  return failure(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function methodNotAllowed(): KubeStatus {
  return failure(
    405,
    'MethodNotAllowed',
    'the server does not allow this method on the requested resource',
    {},
  );
}

export function badRequest(message: string): KubeStatus {
  return failure(400, 'BadRequest', message);
}

export function notAcceptable(): KubeStatus {
  return failure(
    406,
    'NotAcceptable',
    'only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io',
  );
}

/** The ERROR event a watch gets when its resourceVersion has been compacted away. */
export function expired(message: string): KubeStatus {
  return failure(410, 'Expired', message);
}

/** apierrors.NewInternalError. */
export function internalError(message: string): KubeStatus {
  return failure(500, 'InternalError', `Internal error occurred: ${message}`, {});
}
