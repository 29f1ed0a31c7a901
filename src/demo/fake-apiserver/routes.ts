/**
 * The REST handlers: discovery and health, nodes and pods (get, list, watch; JSON or
 * meta.k8s.io Table), SelfSubjectReview, and the hand-off of pod subresources to the
 * streaming half. Dispatch follows the RequestInfo, as kube's handler chain does.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { Cluster, ClusterObject } from './cluster.js';
import { AUTHENTICATION_GROUP, VERSION_INFO } from './discovery.js';
import type { Exchange } from './exchange.js';
import {
  type AnyRequest,
  negotiateFormat,
  type ResponseFormat,
  sendJson,
  sendText,
} from './http.js';
import { type IncludeObject, timestamp, toKubeObject, toList, toTable } from './objects.js';
import { type SessionBook, STREAM_KINDS, streamRefusal } from './pod-streams.js';
import { parseSelectors, type Selector, SelectorError } from './selectors.js';
import * as status from './status.js';
import type { StreamingHandlers, StreamKind } from './types.js';
import { serveWatch } from './watch.js';

const HEALTH_PATHS: ReadonlySet<string> = new Set(['/healthz', '/livez', '/readyz']);

/** What the handlers read and hand work to. */
export interface RestBackend {
  readonly cluster: Cluster;
  /** Discovery documents by path. */
  readonly discovery: ReadonlyMap<string, unknown>;
  readonly streaming: StreamingHandlers;
  readonly sessions: SessionBook;
}

type Collection = 'nodes' | 'pods';

export function route(ex: Exchange, backend: RestBackend): void {
  const { info } = ex;
  if (!info.isResourceRequest) {
    serveNonResource(ex, backend);
  } else if (info.apiGroup === '' && info.apiVersion === 'v1' && isNodesPath(ex)) {
    serveObjects(ex, backend.cluster, 'nodes');
  } else if (info.apiGroup === '' && info.apiVersion === 'v1' && info.resource === 'pods') {
    servePods(ex, backend);
  } else if (isSelfSubjectReviewPath(ex)) {
    serveSelfSubjectReview(ex);
  } else {
    ex.fail(status.noSuchResource());
  }
}

function isNodesPath({ info }: Exchange): boolean {
  return info.resource === 'nodes' && info.namespace === '' && info.subresource === '';
}

function isSelfSubjectReviewPath({ info }: Exchange): boolean {
  return (
    info.apiGroup === AUTHENTICATION_GROUP &&
    info.apiVersion === 'v1' &&
    info.resource === 'selfsubjectreviews' &&
    info.name === ''
  );
}

function serveNonResource(ex: Exchange, backend: RestBackend): void {
  const { path, verb } = ex.info;
  const document = backend.discovery.get(path);
  if (document === undefined && path !== '/version' && !HEALTH_PATHS.has(path)) {
    ex.fail(status.noSuchResource());
  } else if (verb !== 'get') {
    ex.fail(status.methodNotAllowed());
  } else if (path === '/version') {
    sendJson(ex.reply(), 200, VERSION_INFO);
  } else if (HEALTH_PATHS.has(path)) {
    sendText(ex.reply(), 200, 'ok');
  } else {
    sendJson(ex.reply(), 200, document);
  }
}

function servePods(ex: Exchange, backend: RestBackend): void {
  const { info } = ex;
  if (info.namespace === '' && info.name !== '' && info.verb === 'get') {
    ex.fail(status.noSuchResource());
  } else if (info.subresource === '' || (info.subresource === 'status' && info.verb === 'get')) {
    serveObjects(ex, backend.cluster, 'pods');
  } else if (STREAM_KINDS.has(info.subresource)) {
    servePodStream(ex, backend, info.subresource as StreamKind);
  } else {
    ex.fail(status.noSuchResource());
  }
}

/** get / list / watch of nodes or pods, as JSON objects or meta.k8s.io Tables. */
function serveObjects(ex: Exchange, cluster: Cluster, collection: Collection): void {
  const { info } = ex;
  if (!['get', 'list', 'watch'].includes(info.verb)) {
    ex.fail(status.methodNotAllowed());
    return;
  }
  const format = responseFormat(ex);
  if (format === null) return;
  if (info.verb === 'get') {
    serveOne(ex, cluster, collection, format);
    return;
  }
  const selects = collectionSelector(ex, collection);
  if (selects === null) return;
  if (info.verb === 'watch') {
    serveCollectionWatch(ex, cluster, collection, format, selects);
    return;
  }
  const records =
    collection === 'nodes'
      ? cluster.listNodes().filter(selects)
      : cluster.listPods(info.namespace === '' ? null : info.namespace).filter(selects);
  const rv = cluster.currentResourceVersion;
  const body =
    format.kind === 'table'
      ? toTable(collection, records, rv, { ...format, withColumns: true, now: Date.now() })
      : toList(collection === 'nodes' ? 'NodeList' : 'PodList', records, rv);
  sendJson(ex.reply(), 200, body);
}

/** The format Accept and ?includeObject= ask for; null once the request has been refused. */
function responseFormat(ex: Exchange): ResponseFormat | null {
  const includeObject = ex.query.get('includeObject') ?? 'Metadata';
  if (!isIncludeObject(includeObject)) {
    ex.fail(status.badRequest(`invalid includeObject: ${includeObject}`));
    return null;
  }
  const format = negotiateFormat(headerValue(ex.req, 'accept'), includeObject);
  if (format === null) ex.fail(status.notAcceptable());
  return format;
}

/** Kind, namespace and label/field selectors in one predicate; null once refused (400). */
function collectionSelector(ex: Exchange, collection: Collection): Selector | null {
  const { info, query } = ex;
  const kind = collection === 'nodes' ? 'Node' : 'Pod';
  let selected: Selector;
  try {
    selected = parseSelectors(kind, query.get('labelSelector'), query.get('fieldSelector'));
  } catch (err) {
    if (!(err instanceof SelectorError)) throw err;
    ex.fail(status.badRequest(err.message));
    return null;
  }
  return (o: ClusterObject) =>
    o.kind === kind &&
    (info.namespace === '' || (o.kind === 'Pod' && o.namespace === info.namespace)) &&
    selected(o);
}

function serveOne(
  ex: Exchange,
  cluster: Cluster,
  collection: Collection,
  format: ResponseFormat,
): void {
  const { info } = ex;
  const record =
    collection === 'nodes' ? cluster.getNode(info.name) : cluster.getPod(info.namespace, info.name);
  if (record === undefined) {
    ex.fail(status.notFound({ group: '', resource: collection }, info.name));
    return;
  }
  const body =
    format.kind === 'table'
      ? toTable(collection, [record], record.resourceVersion, {
          ...format,
          withColumns: true,
          now: Date.now(),
        })
      : toKubeObject(record);
  sendJson(ex.reply(), 200, body);
}

function serveCollectionWatch(
  ex: Exchange,
  cluster: Cluster,
  collection: Collection,
  format: ResponseFormat,
  selected: Selector,
): void {
  const { info, query } = ex;
  const rv = query.get('resourceVersion') ?? '';
  if (rv !== '' && !/^\d+$/.test(rv)) {
    ex.fail(status.badRequest(`invalid resource version: ${rv}`));
    return;
  }
  const timeout = Number.parseInt(query.get('timeoutSeconds') ?? '', 10);
  // A named watch (/api/v1/watch/…/pods/NAME, or fieldSelector=metadata.name=NAME) sees
  // that one object only.
  const selects =
    info.name === '' ? selected : (o: ClusterObject) => o.name === info.name && selected(o);
  serveWatch(ex.reply(), cluster, {
    resource: collection,
    selects,
    sinceResourceVersion: rv === '' || rv === '0' ? null : Number(rv),
    timeoutSeconds: Number.isFinite(timeout) && timeout > 0 ? timeout : null,
    format,
  });
}

function serveSelfSubjectReview(ex: Exchange): void {
  if (ex.info.verb !== 'create') {
    ex.fail(status.methodNotAllowed());
    return;
  }
  const { username, uid, groups, extra } = ex.user;
  const userInfo = {
    username,
    ...(uid === undefined || uid === '' ? {} : { uid }),
    ...(groups.length === 0 ? {} : { groups }),
    ...(Object.keys(extra).length === 0 ? {} : { extra }),
  };
  // The body (JSON, or protobuf from some clients) carries nothing the answer depends on;
  // it is read to the end so an HTTP/1.1 connection stays usable.
  drain(ex.req)
    .then(() =>
      sendJson(ex.reply(), 201, {
        kind: 'SelfSubjectReview',
        apiVersion: `${AUTHENTICATION_GROUP}/v1`,
        metadata: { creationTimestamp: timestamp(Date.now()) },
        status: { userInfo },
      }),
    )
    .catch(() => {});
}

/** Pod subresources: kube's own checks, then exactly one call into the streaming half. */
function servePodStream(ex: Exchange, backend: RestBackend, kind: StreamKind): void {
  const { info, channel } = ex;
  const pod = backend.cluster.getPod(info.namespace, info.name);
  const logs = backend.cluster.podLog(info.namespace, info.name);
  if (pod === undefined || logs === undefined) {
    ex.fail(status.notFound({ group: '', resource: 'pods' }, info.name));
    return;
  }
  const refusal = streamRefusal(pod, kind, ex.query.get('container'));
  if (refusal?.kind === 'status') {
    ex.fail(refusal.status);
    return;
  }
  if (refusal?.kind === 'kubelet') {
    sendText(ex.reply(), 500, refusal.text);
    return;
  }
  const ctx = backend.sessions.contextFor(ex.record, ex.user, pod, kind, logs);
  if (channel.kind === 'upgrade') {
    backend.streaming.handleUpgrade(ex.req as IncomingMessage, channel.socket, channel.head, ctx);
  } else {
    backend.streaming.handleRequest(ex.req, channel.res, ctx);
  }
}

function headerValue(req: AnyRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function isIncludeObject(value: string): value is IncludeObject {
  return value === 'None' || value === 'Metadata' || value === 'Object';
}

async function drain(req: AnyRequest): Promise<void> {
  for await (const _chunk of req as Readable) {
    // discarded: see serveSelfSubjectReview
  }
}
