/**
 * exec/attach over SPDY/3.1, the kubelet's remotecommand server (protocols v4/v5, which
 * behave the same on SPDY): the client opens one stream per `streamtype` header — error,
 * stdin, stdout, stderr (not with a TTY), resize (only with a TTY) — and the command starts
 * once all expected streams exist. At the end the Status JSON goes on the error stream, every
 * stream is FINed, and GOAWAY invites the client to close the connection.
 */
import type { Duplex } from 'node:stream';
import type { StreamContext } from '../types.js';
import { ProcessKilledError } from './errors.js';
import { internalErrorStatus, type KubeStatus } from './kube-status.js';
import {
  type CommandRequest,
  type CommandStreams,
  runCommand,
  statusForOutcome,
} from './remote-command.js';
import type { LiveSession } from './sessions.js';
import { SpdySession, type SpdyStream } from './spdy-session.js';
import { TerminalState } from './tty.js';

/** Newest first: the order in which the kubelet prefers them. */
export const SPDY_EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

/** The kubelet's --streaming-connection... default stream creation timeout. */
const STREAM_CREATION_TIMEOUT_MS = 30_000;

type StreamType = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize';
const STREAM_TYPES: ReadonlySet<string> = new Set(['error', 'stdin', 'stdout', 'stderr', 'resize']);

export interface SpdyCommandOptions {
  readonly transport: Duplex;
  readonly ctx: StreamContext;
  readonly session: LiveSession;
  readonly request: CommandRequest;
  readonly resizeWaitMs: number;
}

export function serveSpdyCommand(options: SpdyCommandOptions): void {
  const { ctx, session, request } = options;
  const expected = expectedStreams(request);
  const streams = new Map<StreamType, SpdyStream>();
  const killed = new AbortController();
  let statusSent = false;
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    resolveReady = resolve;
  });

  const spdy = new SpdySession(options.transport, {
    onStream(stream) {
      const type = stream.header('streamtype') ?? '';
      if (!STREAM_TYPES.has(type) || streams.has(type as StreamType)) {
        stream.destroy();
        return;
      }
      streams.set(type as StreamType, stream);
      if (expected.every((t) => streams.has(t))) resolveReady();
    },
    onEnd(endedBy) {
      if (statusSent) return;
      killed.abort();
      session.end(endedBy);
    },
    onPayload(direction, bytes) {
      if (direction === 'in') session.countIn(bytes);
      else session.countOut(bytes);
    },
  });
  session.onAbort(() => {
    killed.abort();
    spdy.destroy();
  });
  killed.signal.addEventListener('abort', () => resolveReady(), { once: true });

  const timeout = setTimeout(() => {
    // The kubelet gives up on a client that never opens its streams.
    if (!killed.signal.aborted) spdy.shutdown();
  }, STREAM_CREATION_TIMEOUT_MS);

  const finish = async (status: KubeStatus): Promise<void> => {
    if (killed.signal.aborted) return;
    statusSent = true;
    session.end('server');
    // Status first, then FIN on every stream, and only then GOAWAY.
    await Promise.all(
      [...streams].map(([type, stream]) =>
        endStream(stream, type === 'error' ? JSON.stringify(status) : undefined),
      ),
    );
    spdy.shutdown();
  };

  void (async () => {
    await ready;
    clearTimeout(timeout);
    if (killed.signal.aborted) return;
    // The client never writes on the error stream; drain it so it cannot stall the session.
    streams.get('error')?.resume();
    const terminal = request.tty ? new TerminalState() : null;
    const resize = streams.get('resize');
    if (resize && terminal) resize.on('data', (chunk: Buffer) => terminal.feed(chunk));
    else resize?.resume();
    const commandStreams: CommandStreams = {
      stdin: streams.get('stdin') ?? null,
      stdout: streams.get('stdout') ?? null,
      stderr: streams.get('stderr') ?? null,
      terminal,
    };
    try {
      const outcome = await runCommand({
        ctx,
        request,
        streams: commandStreams,
        signal: killed.signal,
        resizeWaitMs: options.resizeWaitMs,
      });
      await finish(statusForOutcome(outcome, 'kubelet', request.command));
    } catch (error) {
      if (error instanceof ProcessKilledError) return;
      await finish(internalErrorStatus((error as Error).message));
    }
  })();
}

/** error is always there; the rest mirror the query (kubelet createStreams, v4). */
function expectedStreams(request: CommandRequest): StreamType[] {
  const types: StreamType[] = ['error'];
  if (request.stdin) types.push('stdin');
  if (request.stdout) types.push('stdout');
  if (request.stderr) types.push('stderr');
  if (request.tty) types.push('resize');
  return types;
}

function endStream(stream: SpdyStream, body?: string): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableFinished) {
      resolve();
      return;
    }
    stream.once('finish', () => resolve());
    stream.once('close', () => resolve());
    if (!stream.writableEnded) {
      if (body === undefined) stream.end();
      else stream.end(body);
    }
  });
}
