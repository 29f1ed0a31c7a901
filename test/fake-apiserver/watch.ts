/**
 * Watch: a long response of newline-terminated `{"type":…,"object":…}` events, written one
 * by one as they happen (no buffering: the proxy's streaming is judged on this), over
 * HTTP/2 and chunked HTTP/1.1 alike. Resuming from a list's resourceVersion replays only
 * later changes; "0" or no resourceVersion starts with synthetic ADDED events for what
 * exists, as the apiserver's watch cache does.
 */
import type { Cluster, ClusterEvent, ClusterObject } from './cluster.js';
import { type Reply, type ResponseFormat, startStream } from './http.js';
import { type JsonObject, toKubeObject, toTable } from './objects.js';
import type { Selector } from './selectors.js';
import { expired } from './status.js';

export interface WatchRequest {
  readonly resource: 'nodes' | 'pods';
  /** Which objects this watch sees (kind, namespace, selectors). */
  readonly selects: Selector;
  /** null: begin with the current state as ADDED events. */
  readonly sinceResourceVersion: number | null;
  readonly timeoutSeconds: number | null;
  readonly format: ResponseFormat;
}

/** Runs a watch until the client leaves, the timeout passes or the server closes. */
export function serveWatch(res: Reply, cluster: Cluster, watch: WatchRequest): void {
  startStream(res);
  let columnsSent = false;
  const send = (type: string, object: unknown) => {
    res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const sendEvent = (event: ClusterEvent) => {
    if (!watch.selects(event.object)) return;
    send(event.type, render(event.object));
  };
  const render = (object: ClusterObject): JsonObject => {
    if (watch.format.kind === 'json') return toKubeObject(object);
    const withColumns = !columnsSent;
    columnsSent = true;
    return toTable(watch.resource, [object], object.resourceVersion, {
      ...watch.format,
      withColumns,
      now: Date.now(),
    });
  };

  const backlog = initialEvents(cluster, watch.sinceResourceVersion);
  if (backlog === null) {
    const since = watch.sinceResourceVersion ?? 0;
    const status = expired(`too old resource version: ${since} (${cluster.oldestResourceVersion})`);
    send('ERROR', status);
    res.end();
    return;
  }
  for (const event of backlog) sendEvent(event);
  const unsubscribe = cluster.subscribe(sendEvent);
  const stop = () => {
    unsubscribe();
    if (timer !== null) clearTimeout(timer);
  };
  const timer =
    watch.timeoutSeconds === null
      ? null
      : setTimeout(() => {
          stop();
          res.end();
        }, watch.timeoutSeconds * 1000);
  res.on('close', stop);
}

function initialEvents(cluster: Cluster, since: number | null): ClusterEvent[] | null {
  if (since !== null) return cluster.eventsSince(since);
  const existing: ClusterObject[] = [...cluster.listNodes(), ...cluster.listPods(null)];
  return existing.map((object) => ({ type: 'ADDED', object }));
}
