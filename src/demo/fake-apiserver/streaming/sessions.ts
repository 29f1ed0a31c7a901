/**
 * Bookkeeping shared by every streaming session: the StreamSession record the REST core
 * keeps (transport, payload bytes, who ended it), ended exactly once, and the registry that
 * lets close() end whatever is still running.
 */
import type { StreamContext, StreamSession, StreamTransport } from '../types.js';

export type EndedBy = 'client' | 'server';

export class LiveSession {
  readonly record: StreamSession;
  private ended = false;
  private abortHandler: (() => void) | null = null;

  constructor(
    private readonly ctx: StreamContext,
    transport: StreamTransport,
    private readonly registry: SessionRegistry,
  ) {
    this.record = ctx.openSession(transport);
    registry.add(this);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  countIn(bytes: number): void {
    this.record.bytesIn += bytes;
  }

  countOut(bytes: number): void {
    this.record.bytesOut += bytes;
  }

  /** What close() does to this session: tear the transport down at once. */
  onAbort(handler: () => void): void {
    this.abortHandler = handler;
  }

  /** Records the end; later calls are ignored, so the first side to finish is the one kept. */
  end(endedBy: EndedBy): void {
    if (this.ended) return;
    this.ended = true;
    this.registry.delete(this);
    this.ctx.endSession(this.record, endedBy);
  }

  /** The fake is shutting down: end as the server, then tear the transport down. */
  abort(): void {
    this.end('server');
    this.abortHandler?.();
  }
}

export class SessionRegistry {
  private readonly live = new Set<LiveSession>();

  add(session: LiveSession): void {
    this.live.add(session);
  }

  delete(session: LiveSession): void {
    this.live.delete(session);
  }

  abortAll(): void {
    for (const session of [...this.live]) session.abort();
  }
}
