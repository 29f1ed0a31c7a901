/**
 * The REST core's side of pod exec/attach/portforward/log: the checks kube makes before a
 * kubelet is involved, and the StreamContext (sessions, logs) handed to the streaming half.
 */
import type { PodRecord } from './cluster.js';
import { badRequest, type KubeStatus } from './status.js';
import type {
  PodLog,
  RecordedRequest,
  StreamContext,
  StreamKind,
  StreamSession,
  StreamTransport,
  UserInfo,
} from './types.js';

export const STREAM_KINDS: ReadonlySet<string> = new Set<StreamKind>([
  'exec',
  'attach',
  'portforward',
  'log',
]);

export type StreamRefusal =
  | { readonly kind: 'status'; readonly status: KubeStatus }
  /** The kubelet's plain-text error, relayed by the apiserver with status 500. */
  | { readonly kind: 'kubelet'; readonly text: string };

/**
 * Why kube would not let this subresource request reach a session, or null. Container
 * checks are the apiserver's (registry/core/pod: 400 BadRequest), as is the log check of a
 * container that has not started. A pod that does not run is refused by the kubelet, whose
 * plain-text 500 the apiserver relays: kubectl then prints `unable to upgrade connection:
 * container not found ("app")`. (For WebSocket exec a 1.30+ apiserver would upgrade first
 * and report that error on the error channel; that is streaming protocol, so the fake
 * answers the way the SPDY path always has.)
 */
export function streamRefusal(
  pod: PodRecord,
  kind: StreamKind,
  requested: string | null,
): StreamRefusal | null {
  let container = requested ?? '';
  if (kind !== 'portforward') {
    if (container === '' && pod.containers.length > 1) {
      const names = pod.containers.join(' ');
      const message = `a container name must be specified for pod ${pod.name}, choose one of: [${names}]`;
      return { kind: 'status', status: badRequest(message) };
    }
    if (container === '') container = pod.containers[0] ?? '';
    if (!pod.containers.includes(container)) {
      const message = `container ${container} is not valid for pod ${pod.name}`;
      return { kind: 'status', status: badRequest(message) };
    }
  }
  if (kind === 'log') {
    if (pod.phase !== 'Pending') return null;
    const message = `container "${container}" in pod "${pod.name}" is waiting to start: ContainerCreating`;
    return { kind: 'status', status: badRequest(message) };
  }
  if (pod.phase === 'Running') return null;
  if (kind === 'portforward') return { kind: 'kubelet', text: `pod ${pod.name} is not running` };
  return { kind: 'kubelet', text: `container not found ("${container}")` };
}

/** Where a stream goes: all a session needs of its pod. */
export type PodPlace = Pick<PodRecord, 'namespace' | 'name'>;

/** Every session the streaming half opened, in order; FakeApiserver.sessions shows it. */
export class SessionBook {
  readonly sessions: StreamSession[] = [];
  private nextId = 1;

  contextFor(
    request: RecordedRequest,
    user: UserInfo,
    pod: PodPlace,
    kind: StreamKind,
    logs: PodLog,
  ): StreamContext {
    return {
      request,
      user,
      namespace: pod.namespace,
      pod: pod.name,
      kind,
      logs,
      openSession: (transport: StreamTransport) => this.open(request, user, pod, kind, transport),
      endSession: (session, endedBy) => {
        // The first end wins: when both sides close, whoever was first ended it.
        if (session.endedAt !== null) return;
        session.endedAt = Date.now();
        session.endedBy = endedBy;
      },
    };
  }

  private open(
    request: RecordedRequest,
    user: UserInfo,
    pod: PodPlace,
    kind: StreamKind,
    transport: StreamTransport,
  ): StreamSession {
    const session: StreamSession = {
      id: this.nextId++,
      requestId: request.id,
      kind,
      transport,
      namespace: pod.namespace,
      pod: pod.name,
      user,
      startedAt: Date.now(),
      endedAt: null,
      endedBy: null,
      bytesIn: 0,
      bytesOut: 0,
    };
    this.sessions.push(session);
    return session;
  }
}
