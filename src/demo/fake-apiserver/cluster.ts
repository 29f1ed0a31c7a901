/**
 * The fake cluster's state: nodes and pods as immutable records, replaced on every change,
 * each change stamped with the next resourceVersion and kept in a bounded history so a watch
 * can resume from the resourceVersion of the list it followed, exactly as kubectl expects.
 */
import { randomUUID } from 'node:crypto';
import type { PodLog } from './types.js';

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
const POD_PHASES: readonly string[] = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'];

export interface NodeRecord {
  readonly kind: 'Node';
  readonly name: string;
  readonly uid: string;
  readonly createdAt: number;
  readonly resourceVersion: number;
  readonly ready: boolean;
  readonly roles: readonly string[];
  readonly internalIP: string;
}

export interface PodRecord {
  readonly kind: 'Pod';
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly createdAt: number;
  readonly resourceVersion: number;
  readonly phase: PodPhase;
  readonly containers: readonly string[];
  readonly nodeName: string;
  readonly podIP: string;
  readonly hostIP: string;
}

export type ClusterObject = NodeRecord | PodRecord;
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ClusterEvent {
  readonly type: WatchEventType;
  /** The object as of this event (for DELETED: its last state, with the deletion's rv). */
  readonly object: ClusterObject;
}

/** Changes older than this many events are compacted away (watches from there get 410). */
const HISTORY_LIMIT = 1000;
/** Real clusters never start at 1; a non-trivial start catches code that assumes small rvs. */
const FIRST_RESOURCE_VERSION = 1200;

export interface AddPodOptions {
  readonly namespace?: string;
  readonly phase?: PodPhase;
  readonly containers?: readonly string[];
  readonly node?: string;
}

export interface AddNodeOptions {
  readonly ready?: boolean;
  readonly roles?: readonly string[];
}

export class Cluster {
  private resourceVersion = FIRST_RESOURCE_VERSION;
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly pods = new Map<string, PodRecord>();
  private readonly logs = new Map<string, PodLogBuffer>();
  private readonly history: ClusterEvent[] = [];
  private readonly listeners = new Set<(event: ClusterEvent) => void>();
  private addresses = 0;
  /** resourceVersion of the newest event dropped from the history. */
  private compactedThrough = Number.NEGATIVE_INFINITY;

  get currentResourceVersion(): number {
    return this.resourceVersion;
  }

  listNodes(): NodeRecord[] {
    return [...this.nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Pods of one namespace, or of all when `namespace` is null; ordered like etcd keys. */
  listPods(namespace: string | null): PodRecord[] {
    return [...this.pods.values()]
      .filter((p) => namespace === null || p.namespace === namespace)
      .sort((a, b) => podKey(a.namespace, a.name).localeCompare(podKey(b.namespace, b.name)));
  }

  getNode(name: string): NodeRecord | undefined {
    return this.nodes.get(name);
  }

  getPod(namespace: string, name: string): PodRecord | undefined {
    return this.pods.get(podKey(namespace, name));
  }

  podLog(namespace: string, name: string): PodLog | undefined {
    return this.logs.get(podKey(namespace, name));
  }

  addNode(name: string, opts: AddNodeOptions = {}): void {
    if (this.nodes.has(name)) throw new Error(`node ${name} already exists`);
    const node: NodeRecord = {
      kind: 'Node',
      name,
      uid: randomUUID(),
      createdAt: Date.now(),
      resourceVersion: this.nextResourceVersion(),
      ready: opts.ready ?? true,
      roles: [...(opts.roles ?? [])],
      internalIP: `172.18.0.${2 + this.nodes.size}`,
    };
    this.nodes.set(name, node);
    this.publish({ type: 'ADDED', object: node });
  }

  addPod(name: string, opts: AddPodOptions = {}): void {
    const namespace = opts.namespace ?? 'default';
    const key = podKey(namespace, name);
    if (this.pods.has(key)) throw new Error(`pod ${namespace}/${name} already exists`);
    const nodeName = opts.node ?? this.listNodes()[0]?.name ?? 'node-1';
    const containers = [...(opts.containers ?? ['app'])];
    if (containers.length === 0) throw new Error(`pod ${namespace}/${name} needs a container`);
    this.addresses++;
    const pod: PodRecord = {
      kind: 'Pod',
      namespace,
      name,
      uid: randomUUID(),
      createdAt: Date.now(),
      resourceVersion: this.nextResourceVersion(),
      phase: checkPhase(opts.phase ?? 'Running'),
      containers,
      nodeName,
      podIP: `10.244.${Math.floor(this.addresses / 250)}.${(this.addresses % 250) + 2}`,
      hostIP: this.nodes.get(nodeName)?.internalIP ?? '172.18.0.2',
    };
    this.pods.set(key, pod);
    this.logs.set(key, new PodLogBuffer());
    this.publish({ type: 'ADDED', object: pod });
  }

  setPodPhase(name: string, phase: string, namespace = 'default'): void {
    const pod = this.requirePod(namespace, name);
    const next = checkPhase(phase);
    // An update that changes nothing does not bump the resourceVersion in kube either.
    if (pod.phase === next) return;
    const updated: PodRecord = { ...pod, phase: next, resourceVersion: this.nextResourceVersion() };
    this.pods.set(podKey(namespace, name), updated);
    this.publish({ type: 'MODIFIED', object: updated });
  }

  deletePod(name: string, namespace = 'default'): void {
    const pod = this.requirePod(namespace, name);
    const key = podKey(namespace, name);
    this.pods.delete(key);
    this.logs.delete(key);
    this.publish({
      type: 'DELETED',
      object: { ...pod, resourceVersion: this.nextResourceVersion() },
    });
  }

  appendLog(pod: string, line: string, namespace = 'default'): void {
    this.requirePod(namespace, pod);
    this.logs.get(podKey(namespace, pod))?.append(line);
  }

  /**
   * Events after `resourceVersion`, or null when the history no longer reaches back that
   * far (the watch must then get 410 Gone, as after an etcd compaction).
   */
  eventsSince(resourceVersion: number): ClusterEvent[] | null {
    if (resourceVersion < this.compactedThrough) return null;
    return this.history.filter((e) => e.object.resourceVersion > resourceVersion);
  }

  /** The oldest resourceVersion still in the history (for the 410 message). */
  get oldestResourceVersion(): number {
    return this.history[0]?.object.resourceVersion ?? this.resourceVersion;
  }

  subscribe(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private requirePod(namespace: string, name: string): PodRecord {
    const pod = this.pods.get(podKey(namespace, name));
    if (pod === undefined) throw new Error(`pod ${namespace}/${name} does not exist`);
    return pod;
  }

  private nextResourceVersion(): number {
    this.resourceVersion += 1;
    return this.resourceVersion;
  }

  private publish(event: ClusterEvent): void {
    this.history.push(event);
    if (this.history.length > HISTORY_LIMIT) {
      this.compactedThrough = this.history.shift()?.object.resourceVersion ?? this.compactedThrough;
    }
    for (const listener of [...this.listeners]) listener(event);
  }
}

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function checkPhase(phase: string): PodPhase {
  if (!POD_PHASES.includes(phase)) {
    throw new Error(`unknown pod phase ${phase} (one of ${POD_PHASES.join(', ')})`);
  }
  return phase as PodPhase;
}

/** A pod's log: what was appended so far and live followers (`logs -f`). */
class PodLogBuffer implements PodLog {
  private readonly appended: string[] = [];
  private readonly followers = new Set<(line: string) => void>();

  get lines(): readonly string[] {
    return this.appended;
  }

  follow(onLine: (line: string) => void): () => void {
    this.followers.add(onLine);
    return () => this.followers.delete(onLine);
  }

  append(line: string): void {
    this.appended.push(line);
    for (const follower of [...this.followers]) follower(line);
  }
}
