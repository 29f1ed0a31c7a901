/**
 * The relay's streams: those forwarded upstream and open on either side, and what it remembers
 * of closed ones for the frames still in flight for them (RFC 9113 5.1: a peer may send
 * RST_STREAM, WINDOW_UPDATE or PRIORITY on a stream it has not yet seen closed).
 */
import type { WatchStream } from './cut.js';

/** Closed streams remembered, in each memory, for the frames still in flight for them. */
const REMEMBERED = 128;

/** A client-initiated stream forwarded upstream, open (or half-closed) on either side. */
export class Stream implements WatchStream {
  /** The client sent END_STREAM. */
  clientEnded = false;
  /** The upstream sent END_STREAM. */
  upstreamEnded = false;
  /** content-length the request declared, or -1. */
  contentLength = -1;
  /** DATA octets the client sent on it, padding excluded. */
  bodyReceived = 0;
  method = '';
  /** A watch or a `logs -f`: it may last as long as the connection. */
  streaming = false;
  /** A watch (?watch=true). */
  watch = false;
  /** A JSON watch whose 200 response is under way: a cut ends it with an ERROR event (cut.ts). */
  jsonEvents = false;
  /** Its response so far ends with a whole event (cut.ts, EventBoundaries). */
  atEvent = true;
  /** performance.now() when its HEADERS arrived. */
  startedAt = 0;
  /** Final (non-1xx) status of the response, once its HEADERS passed. */
  status = 0;
  /** Some response HEADERS reached the client. */
  responseStarted = false;

  constructor(
    readonly id: number,
    /** Octets of DATA the client may still send (the upstream's window). */
    public clientMaySend: number,
    /** Octets of DATA the upstream may still send (the client's window). */
    public upstreamMaySend: number,
  ) {}
}

/**
 * Who handled a closed stream, as far as the table remembers: the upstream (it saw the stream,
 * and answers what still comes for it), the relay (it refused or answered the stream itself),
 * or nobody remembers.
 */
export type ClosedStreamHandler = 'upstream' | 'relay' | 'forgotten';

/** How the relay itself closed a stream at the client while the upstream may still send on it. */
export const EndedAtClient = {
  /** It sent END_STREAM (a watch ended cleanly on shutdown): nothing more may follow. */
  EndStream: 1,
  /** It sent RST_STREAM: the client ignores what follows, but must still decode header blocks. */
  Reset: 2,
} as const;
export type EndedAtClient = (typeof EndedAtClient)[keyof typeof EndedAtClient];

export class StreamTable {
  private readonly open = new Map<number, Stream>();
  /** Highest stream id the client opened: every odd id up to it is used (RFC 9113 5.1.1). */
  private lastClientStreamId = 0;
  /** Highest stream id forwarded upstream. */
  private lastForwardedStreamId = 0;
  /** Highest stream id the upstream promised (server push). */
  private lastPromisedStreamId = 0;
  /** Recently closed stream ids and whether each went upstream (allocated at the first close). */
  private closedIds: Uint32Array | null = null;
  private closedForwarded: Uint8Array | null = null;
  private closedNext = 0;
  /** Streams the relay closed at the client itself, oldest first. */
  private readonly endedAtClient = new Map<number, EndedAtClient>();

  get size(): number {
    return this.open.size;
  }

  /** The id to name in a GOAWAY: the last stream the client opened. */
  get lastOpenedByClient(): number {
    return this.lastClientStreamId;
  }

  get(streamId: number): Stream | undefined {
    return this.open.get(streamId);
  }

  /** The open streams (a copy: the caller may close them as it goes). */
  list(): Stream[] {
    return [...this.open.values()];
  }

  openStreams(): IterableIterator<Stream> {
    return this.open.values();
  }

  /** Whether `streamId` is idle: neither side has opened it yet. */
  isIdle(streamId: number): boolean {
    return streamId & 1 ? streamId > this.lastClientStreamId : streamId > this.lastPromisedStreamId;
  }

  /** The client opened `streamId` (with HEADERS), whatever becomes of it. */
  clientOpened(streamId: number): void {
    this.lastClientStreamId = streamId;
  }

  /** The upstream promised `streamId` (PUSH_PROMISE). */
  promised(streamId: number): void {
    this.lastPromisedStreamId = Math.max(this.lastPromisedStreamId, streamId);
  }

  /** A stream goes upstream. */
  forward(stream: Stream): void {
    this.open.set(stream.id, stream);
    this.lastForwardedStreamId = stream.id;
  }

  /** A forwarded stream is closed; false when it already was. */
  close(stream: Stream): boolean {
    if (!this.open.delete(stream.id)) return false;
    this.remember(stream.id, true);
    return true;
  }

  /** Closes `stream` when both sides ended it. */
  closeIfEnded(stream: Stream): void {
    if (stream.clientEnded && stream.upstreamEnded) this.close(stream);
  }

  /** A new stream the relay refused or answered itself: it never went upstream. */
  keptFromUpstream(streamId: number): void {
    this.remember(streamId, false);
  }

  /** Forgets every open stream (the upstream is gone) and returns them. */
  takeAll(): Stream[] {
    const streams = this.list();
    this.open.clear();
    return streams;
  }

  /** Who handled closed stream `streamId`. */
  handlerOfClosed(streamId: number): ClosedStreamHandler {
    const i = this.closedIds?.indexOf(streamId) ?? -1;
    if (i < 0) return 'forgotten';
    return (this.closedForwarded as Uint8Array)[i] === 1 ? 'upstream' : 'relay';
  }

  /** Whether frames for closed stream `streamId` are for the upstream, which saw it. */
  closedWentUpstream(streamId: number): boolean {
    // Even: a stream the upstream promised (server push).
    if ((streamId & 1) === 0) return true;
    const handler = this.handlerOfClosed(streamId);
    return handler === 'forgotten'
      ? streamId <= this.lastForwardedStreamId
      : handler === 'upstream';
  }

  /** The relay closed `streamId` at the client, `how`; the upstream may still send on it. */
  endAtClient(streamId: number, how: EndedAtClient): void {
    this.endedAtClient.set(streamId, how);
    if (this.endedAtClient.size > REMEMBERED) {
      const oldest = this.endedAtClient.keys().next().value as number;
      this.endedAtClient.delete(oldest);
    }
  }

  /** How the relay closed `streamId` at the client, or undefined when it did not. */
  howEndedAtClient(streamId: number): EndedAtClient | undefined {
    return this.endedAtClient.size === 0 ? undefined : this.endedAtClient.get(streamId);
  }

  /** The upstream is done with `streamId`: nothing more will come for it. */
  upstreamDoneWith(streamId: number): boolean {
    return this.endedAtClient.delete(streamId);
  }

  private remember(streamId: number, forwarded: boolean): void {
    this.closedIds ??= new Uint32Array(REMEMBERED);
    this.closedForwarded ??= new Uint8Array(REMEMBERED);
    this.closedIds[this.closedNext] = streamId;
    this.closedForwarded[this.closedNext] = forwarded ? 1 : 0;
    this.closedNext = (this.closedNext + 1) % REMEMBERED;
  }
}
