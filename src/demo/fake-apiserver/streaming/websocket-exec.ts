/**
 * exec/attach over WebSocket with the v5.channel.k8s.io protocol, as kube-apiserver 1.30–1.32
 * serves it (apiserver/pkg/util/proxy/websocket.go + streamtranslator.go):
 *  - right after the upgrade, an empty message on the lowest writable channel;
 *  - every message is binary `[channel][payload]`: 0 stdin in, 1 stdout / 2 stderr out,
 *    3 the final Status out, 4 resize in; `[255, channel]` from the client closes that
 *    channel (v5), i.e. stdin EOF;
 *  - at the end: the Status on channel 3, then a Close frame with code 1000, and the client
 *    closes TCP.
 */
import { PassThrough, type Readable, Writable } from 'node:stream';
import type { WebSocket } from 'ws';
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
import { TerminalState } from './tty.js';
import { WebSocketDuplex } from './websocket-duplex.js';

export const V5_CHANNEL_PROTOCOL = 'v5.channel.k8s.io';

const Channel = { Stdin: 0, Stdout: 1, Stderr: 2, Error: 3, Resize: 4, Close: 255 } as const;

/** client-go reads with a 32 KiB buffer; larger payloads are split to match. */
const MAX_MESSAGE_PAYLOAD = 32 * 1024;

export interface WebSocketCommandOptions {
  readonly ws: WebSocket;
  readonly ctx: StreamContext;
  readonly session: LiveSession;
  readonly request: CommandRequest;
  readonly resizeWaitMs: number;
}

export function serveWebSocketCommand(options: WebSocketCommandOptions): void {
  const { ctx, session, request } = options;
  const connection = new WebSocketDuplex(options.ws, { messageMode: true });
  const killed = new AbortController();
  let statusSent = false;

  const stdin = request.stdin ? new PassThrough({ highWaterMark: 64 * 1024 }) : null;
  const terminal = request.tty ? new TerminalState() : null;
  const streams: CommandStreams = {
    stdin,
    stdout: request.stdout ? new ChannelWriter(connection, Channel.Stdout, session) : null,
    stderr: request.stderr ? new ChannelWriter(connection, Channel.Stderr, session) : null,
    terminal,
  };

  const lowestWritable = request.stdout
    ? Channel.Stdout
    : request.stderr
      ? Channel.Stderr
      : Channel.Error;
  connection.write(Buffer.of(lowestWritable));

  connection.on('data', (message: Buffer) => {
    if (message.length < 1) return;
    const channel = message[0] as number;
    const payload = message.subarray(1);
    if (channel === Channel.Close) {
      // v5: exactly [255, channel]; only stdin can be closed by the client.
      if (message.length === 2 && message[1] === Channel.Stdin) stdin?.end();
      return;
    }
    session.countIn(payload.length);
    if (channel === Channel.Stdin) feedStdin(stdin, payload, connection);
    else if (channel === Channel.Resize) terminal?.feed(payload);
  });

  const clientGone = (): void => {
    if (statusSent) return;
    killed.abort();
    session.end('client');
    stdin?.destroy();
    connection.destroy();
  };
  connection.on('end', clientGone);
  connection.on('close', clientGone);
  session.onAbort(() => {
    killed.abort();
    connection.terminate();
  });

  const finish = (status: KubeStatus): void => {
    if (killed.signal.aborted) return;
    statusSent = true;
    session.end('server');
    const body = Buffer.from(JSON.stringify(status));
    session.countOut(body.length);
    connection.write(Buffer.concat([Buffer.of(Channel.Error), body]));
    connection.end();
  };

  runCommand({ ctx, request, streams, signal: killed.signal, resizeWaitMs: options.resizeWaitMs })
    .then((outcome) => finish(statusForOutcome(outcome, 'apiserver', request.command)))
    .catch((error: unknown) => {
      if (error instanceof ProcessKilledError) return;
      finish(internalErrorStatus(`Internal error occurred: ${(error as Error).message}`));
    });
}

function feedStdin(stdin: PassThrough | null, payload: Buffer, connection: Readable): void {
  if (!stdin || stdin.destroyed || stdin.writableEnded || payload.length === 0) return;
  if (!stdin.write(payload)) {
    connection.pause();
    stdin.once('drain', () => connection.resume());
  }
}

/** A process output stream as channel messages; completes when the WebSocket took them. */
class ChannelWriter extends Writable {
  constructor(
    private readonly connection: WebSocketDuplex,
    private readonly channel: number,
    private readonly session: LiveSession,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.on('error', () => undefined);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error) => void) {
    let offset = 0;
    const next = (error?: Error | null): void => {
      if (error || offset >= chunk.length) {
        callback(error ?? undefined);
        return;
      }
      const payload = chunk.subarray(offset, offset + MAX_MESSAGE_PAYLOAD);
      offset += payload.length;
      this.session.countOut(payload.length);
      this.connection.write(Buffer.concat([Buffer.of(this.channel), payload]), next);
    };
    next();
  }
}
