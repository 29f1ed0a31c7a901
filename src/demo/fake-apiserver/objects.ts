/**
 * Cluster records rendered as the v1 objects, lists and meta.k8s.io Tables kube-apiserver
 * 1.32 returns. Table cells follow pkg/printers/internalversion/printers.go (printNode,
 * printPod) so kubectl prints the columns and values users know.
 */
import { createHash } from 'node:crypto';
import type { ClusterObject, NodeRecord, PodRecord } from './cluster.js';
import { labelsOf } from './selectors.js';

export const KUBE_VERSION = 'v1.32.4';

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** What a Table row carries besides its cells (`?includeObject=`). */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface ColumnDefinition {
  readonly name: string;
  readonly type: string;
  readonly format: string;
  readonly description: string;
  readonly priority: number;
}

const NAME_DOC =
  'Name must be unique within a namespace. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names';
const AGE_DOC =
  'CreationTimestamp is a timestamp representing the server time when this object was created.';

function column(name: string, description: string, priority = 0, format = ''): ColumnDefinition {
  return { name, type: 'string', format, description, priority };
}

const NODE_COLUMNS: readonly ColumnDefinition[] = [
  column('Name', NAME_DOC, 0, 'name'),
  column('Status', 'The status of the node'),
  column('Roles', 'The roles of the node'),
  column('Age', AGE_DOC),
  column('Version', 'Kubelet Version reported by the node.'),
  column('Internal-IP', 'List of addresses reachable to the node.', 1),
  column('External-IP', 'List of addresses reachable to the node.', 1),
  column('OS-Image', 'OS Image reported by the node from /etc/os-release.', 1),
  column('Kernel-Version', "Kernel Version reported by the node from 'uname -r'.", 1),
  column('Container-Runtime', 'ContainerRuntime Version reported by the node.', 1),
];

const POD_COLUMNS: readonly ColumnDefinition[] = [
  column('Name', NAME_DOC, 0, 'name'),
  column('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
  column('Status', 'The aggregate status of the containers in this pod.'),
  column(
    'Restarts',
    'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.',
  ),
  column('Age', AGE_DOC),
  column('IP', 'podIP address allocated to the pod.', 1),
  column('Node', 'NodeName indicates in which node this pod is scheduled.', 1),
  column('Nominated Node', 'nominatedNodeName is set only when this pod preempts other pods.', 1),
  column(
    'Readiness Gates',
    'If specified, all readiness gates will be evaluated for pod readiness.',
    1,
  ),
];

const OS_IMAGE = 'Debian GNU/Linux 12 (bookworm)';
const KERNEL = '6.1.0-31-cloud-amd64';
const RUNTIME = 'containerd://1.7.24';
const IMAGE = 'registry.k8s.io/e2e-test-images/busybox:1.36.1-1';

/** RFC 3339 with second precision, as metav1.Time marshals. */
export function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function toKubeObject(record: ClusterObject): JsonObject {
  return record.kind === 'Node' ? nodeObject(record) : podObject(record);
}

/** v1 NodeList / PodList; items carry no kind/apiVersion, as the apiserver sends them. */
export function toList(
  kind: 'NodeList' | 'PodList',
  records: readonly ClusterObject[],
  rv: number,
) {
  const items = records.map((r) => {
    const { kind: _kind, apiVersion: _apiVersion, ...rest } = toKubeObject(r);
    return rest;
  });
  return { kind, apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items };
}

export interface TableOptions {
  readonly includeObject: IncludeObject;
  /** Watch events after the first omit the column definitions (NoHeaders), like the apiserver. */
  readonly withColumns: boolean;
  /** 'v1' or 'v1beta1', whichever the client asked for. */
  readonly version: string;
  readonly now: number;
}

export function toTable(
  resource: 'nodes' | 'pods',
  records: readonly ClusterObject[],
  resourceVersion: number,
  opts: TableOptions,
): JsonObject {
  const columns = resource === 'nodes' ? NODE_COLUMNS : POD_COLUMNS;
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${opts.version}`,
    metadata: { resourceVersion: String(resourceVersion) },
    columnDefinitions: opts.withColumns ? columns.map((c) => ({ ...c })) : null,
    rows: records.map((r) => tableRow(r, opts)),
  };
}

function tableRow(record: ClusterObject, opts: TableOptions): JsonObject {
  const row: JsonObject =
    record.kind === 'Node' ? { cells: nodeCells(record, opts.now) } : podRow(record, opts.now);
  if (opts.includeObject === 'Object') row.object = toKubeObject(record);
  if (opts.includeObject === 'Metadata') {
    row.object = {
      kind: 'PartialObjectMetadata',
      apiVersion: `meta.k8s.io/${opts.version}`,
      metadata: toKubeObject(record).metadata ?? {},
    };
  }
  return row;
}

function nodeCells(node: NodeRecord, now: number): Json[] {
  const roles = [...node.roles].sort();
  return [
    node.name,
    node.ready ? 'Ready' : 'NotReady',
    roles.length > 0 ? roles.join(',') : '<none>',
    humanDuration(now - node.createdAt),
    KUBE_VERSION,
    node.internalIP,
    '<none>',
    OS_IMAGE,
    KERNEL,
    RUNTIME,
  ];
}

function podRow(pod: PodRecord, now: number): JsonObject {
  const running = pod.phase === 'Running';
  const row: JsonObject = {
    cells: [
      pod.name,
      `${running ? pod.containers.length : 0}/${pod.containers.length}`,
      podStatusReason(pod),
      '0',
      humanDuration(now - pod.createdAt),
      pod.phase === 'Pending' ? '<none>' : pod.podIP,
      pod.nodeName,
      '<none>',
      '<none>',
    ],
  };
  if (pod.phase === 'Succeeded' || pod.phase === 'Failed') {
    row.conditions = [
      {
        type: 'Completed',
        status: 'True',
        reason: pod.phase,
        message:
          pod.phase === 'Succeeded' ? 'The pod has completed successfully.' : 'The pod failed.',
      },
    ];
  }
  return row;
}

/** printPod's STATUS: the container state reasons win over the phase. */
function podStatusReason(pod: PodRecord): string {
  switch (pod.phase) {
    case 'Pending':
      return 'ContainerCreating';
    case 'Succeeded':
      return 'Completed';
    case 'Failed':
      return 'Error';
    default:
      return pod.phase;
  }
}

function nodeObject(node: NodeRecord): JsonObject {
  const created = timestamp(node.createdAt);
  const capacity = {
    cpu: '2',
    'ephemeral-storage': '20959212Ki',
    memory: '4025932Ki',
    pods: '110',
  };
  const condition = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    lastHeartbeatTime: timestamp(Date.now()),
    lastTransitionTime: created,
    reason,
    message,
  });
  return {
    kind: 'Node',
    apiVersion: 'v1',
    metadata: {
      name: node.name,
      uid: node.uid,
      resourceVersion: String(node.resourceVersion),
      creationTimestamp: created,
      labels: labelsOf(node),
      annotations: {
        'node.alpha.kubernetes.io/ttl': '0',
        'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
      },
    },
    spec: {
      podCIDR: '10.244.0.0/24',
      podCIDRs: ['10.244.0.0/24'],
      ...(node.roles.includes('control-plane')
        ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] }
        : {}),
    },
    status: {
      capacity,
      allocatable: capacity,
      conditions: [
        condition(
          'MemoryPressure',
          'False',
          'KubeletHasSufficientMemory',
          'kubelet has sufficient memory available',
        ),
        condition(
          'DiskPressure',
          'False',
          'KubeletHasNoDiskPressure',
          'kubelet has no disk pressure',
        ),
        condition(
          'PIDPressure',
          'False',
          'KubeletHasSufficientPID',
          'kubelet has sufficient PID available',
        ),
        node.ready
          ? condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status')
          : condition('Ready', 'False', 'KubeletNotReady', 'container runtime network not ready'),
      ],
      addresses: [
        { type: 'InternalIP', address: node.internalIP },
        { type: 'Hostname', address: node.name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: node.uid.replaceAll('-', ''),
        systemUUID: node.uid,
        bootID: node.uid,
        kernelVersion: KERNEL,
        osImage: OS_IMAGE,
        containerRuntimeVersion: RUNTIME,
        kubeletVersion: KUBE_VERSION,
        kubeProxyVersion: KUBE_VERSION,
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
    },
  };
}

function podObject(pod: PodRecord): JsonObject {
  const created = timestamp(pod.createdAt);
  const ready = pod.phase === 'Running';
  const scheduled = pod.phase !== 'Unknown';
  const condition = (type: string, status: boolean) => ({
    type,
    status: status ? 'True' : 'False',
    lastProbeTime: null,
    lastTransitionTime: created,
  });
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name: pod.name,
      namespace: pod.namespace,
      uid: pod.uid,
      resourceVersion: String(pod.resourceVersion),
      creationTimestamp: created,
      labels: labelsOf(pod),
    },
    spec: {
      containers: pod.containers.map((name) => ({
        name,
        image: IMAGE,
        command: ['sleep', 'infinity'],
        resources: {},
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
        imagePullPolicy: 'IfNotPresent',
      })),
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      serviceAccount: 'default',
      nodeName: pod.nodeName,
      securityContext: {},
      schedulerName: 'default-scheduler',
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {
      phase: pod.phase,
      conditions: [
        condition('PodReadyToStartContainers', pod.phase !== 'Pending'),
        condition('Initialized', true),
        condition('Ready', ready),
        condition('ContainersReady', ready),
        condition('PodScheduled', scheduled),
      ],
      hostIP: pod.hostIP,
      hostIPs: [{ ip: pod.hostIP }],
      ...(pod.phase === 'Pending' ? {} : { podIP: pod.podIP, podIPs: [{ ip: pod.podIP }] }),
      startTime: created,
      containerStatuses: pod.containers.map((name) => containerStatus(pod, name)),
      qosClass: 'BestEffort',
    },
  };
}

function containerStatus(pod: PodRecord, name: string): JsonObject {
  const created = timestamp(pod.createdAt);
  const containerID = `containerd://${createHash('sha256').update(`${pod.uid}/${name}`).digest('hex')}`;
  const common = { name, image: IMAGE, restartCount: 0 };
  switch (pod.phase) {
    case 'Pending':
      return {
        ...common,
        state: { waiting: { reason: 'ContainerCreating' } },
        lastState: {},
        ready: false,
        imageID: '',
        started: false,
      };
    case 'Succeeded':
    case 'Failed': {
      const failed = pod.phase === 'Failed';
      const terminated = {
        exitCode: failed ? 1 : 0,
        reason: failed ? 'Error' : 'Completed',
        startedAt: created,
        finishedAt: created,
        containerID,
      };
      return {
        ...common,
        state: { terminated },
        lastState: {},
        ready: false,
        imageID: IMAGE,
        containerID,
        started: false,
      };
    }
    default:
      return {
        ...common,
        state: { running: { startedAt: created } },
        lastState: {},
        ready: pod.phase === 'Running',
        imageID: IMAGE,
        containerID,
        started: pod.phase === 'Running',
      };
  }
}

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration, which kubectl's AGE column shows. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${hours / 24}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    const years = Math.trunc(hours / 24 / 365);
    return dy === 0 ? `${years}y` : `${years}y${dy}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}
