/**
 * Watch: a long response of newline-terminated `{"type":…,"object":…}` events, written one
 * by one as they happen (no buffering: the proxy's streaming is judged on this), over
 * HTTP/2 and chunked HTTP/1.1 alike. Resuming from a list's resourceVersion replays only
 * later changes; "0" or no resourceVersion starts with synthetic ADDED events for what
 * exists, as the apiserver's watch cache does.
 */
import type { Cluster, ClusterEvent, ClusterObject } from './cluster.js';
import { type Reply, type ResponseFormat, startStream, type TableFormat } from './http.js';
import { toKubeObject, toTable } from './objects.js';
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
  const backlog = initialEvents(cluster, watch.sinceResourceVersion);
  if (backlog === null) {
    const since = watch.sinceResourceVersion ?? 0;
    const gone = expired(`too old resource version: ${since} (${cluster.oldestResourceVersion})`);
    res.end(eventLine('ERROR', gone));
    return;
  }
  const lineFor =
    watch.format.kind === 'json' ? jsonEventLine : tableEventLines(watch.resource, watch.format);
  const send = (event: ClusterEvent) => {
    if (watch.selects(event.object)) res.write(lineFor(event));
  };
  for (const event of backlog) send(event);
  const unsubscribe = cluster.subscribe(send);
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

function eventLine(type: string, object: unknown): string {
  return `${JSON.stringify({ type, object })}\n`;
}

/**
 * A change looks the same to every plain-JSON watcher, so its line is encoded once however
 * many watches receive it (the benchmarks fan one change out to thousands).
 */
const jsonLines = new WeakMap<ClusterEvent, string>();

function jsonEventLine(event: ClusterEvent): string {
  let line = jsonLines.get(event);
  if (line === undefined) {
    line = eventLine(event.type, toKubeObject(event.object));
    jsonLines.set(event, line);
  }
  return line;
}

/** One-row Tables; like the apiserver (NoHeaders after the first), columns only once. */
function tableEventLines(
  resource: 'nodes' | 'pods',
  format: TableFormat,
): (event: ClusterEvent) => string {
  let columnsSent = false;
  return (event) => {
    const { object } = event;
    const table = toTable(resource, [object], object.resourceVersion, {
      ...format,
      withColumns: !columnsSent,
      now: Date.now(),
    });
    columnsSent = true;
    return eventLine(event.type, table);
  };
}

function initialEvents(cluster: Cluster, since: number | null): ClusterEvent[] | null {
  if (since !== null) return cluster.eventsSince(since);
  const existing: ClusterObject[] = [...cluster.listNodes(), ...cluster.listPods(null)];
  return existing.map((object) => ({ type: 'ADDED', object }));
}
