/**
 * Flow control (RFC 9113 5.2, 6.9) as the relay follows it. WINDOW_UPDATE and DATA pass end to
 * end, so the windows are the two peers' own; the relay keeps the same counts to refuse a
 * client that overruns the upstream's windows (as nghttp2 refused it for Node), and to give
 * credit back for DATA it drops instead of forwarding.
 */
import { DEFAULT_WINDOW_SIZE, MAX_WINDOW_SIZE } from './frames.js';

/** A stream's two windows. */
export interface StreamWindows {
  /** Octets of DATA the client may still send (the upstream's window). */
  clientMaySend: number;
  /** Octets of DATA the upstream may still send (the client's window). */
  upstreamMaySend: number;
}

/** The connection's windows in both directions and the initial window of new streams. */
export class FlowWindows {
  /** Octets of DATA the client may still send on the connection. */
  private clientMaySend = DEFAULT_WINDOW_SIZE;
  /** Octets of DATA the upstream may still send on the connection. */
  private upstreamMaySend = DEFAULT_WINDOW_SIZE;
  /** SETTINGS_INITIAL_WINDOW_SIZE of the upstream, in force at the client. */
  private upstreamInitialWindow = DEFAULT_WINDOW_SIZE;
  /** SETTINGS_INITIAL_WINDOW_SIZE of the client, in force at the upstream. */
  private clientInitialWindow = DEFAULT_WINDOW_SIZE;

  /** What a new stream's clientMaySend starts at. */
  get newStreamClientMaySend(): number {
    return this.upstreamInitialWindow;
  }

  /** What a new stream's upstreamMaySend starts at. */
  get newStreamUpstreamMaySend(): number {
    return this.clientInitialWindow;
  }

  /** Octets of DATA the client's connection window still takes. */
  get upstreamMaySendOnConnection(): number {
    return this.upstreamMaySend;
  }

  /** The client sent `length` octets of DATA: false when that overran the connection window. */
  clientSent(length: number): boolean {
    this.clientMaySend -= length;
    return this.clientMaySend >= 0;
  }

  /** ... on `stream`: false when that overran the stream's window. */
  clientSentOn(stream: StreamWindows, length: number): boolean {
    stream.clientMaySend -= length;
    return stream.clientMaySend >= 0;
  }

  /** Client DATA the relay dropped: the client may send as much again. */
  returnToClient(length: number): void {
    this.clientMaySend += length;
  }

  /**
   * The upstream sent `length` octets of DATA (on `stream`, unless it is closed), or the relay
   * did in its place (a cut's ERROR event).
   */
  upstreamSent(stream: StreamWindows | undefined, length: number): void {
    this.upstreamMaySend -= length;
    if (stream !== undefined) stream.upstreamMaySend -= length;
  }

  /** Upstream DATA the relay dropped: the upstream may send as much again. */
  returnToUpstream(length: number): void {
    this.upstreamMaySend += length;
  }

  /** The client's WINDOW_UPDATE for the connection: false when it overflows the window. */
  clientGranted(increment: number): boolean {
    this.upstreamMaySend += increment;
    return this.upstreamMaySend <= MAX_WINDOW_SIZE;
  }

  /** The client's WINDOW_UPDATE for `stream`: false when it overflows the window. */
  clientGrantedOn(stream: StreamWindows, increment: number): boolean {
    stream.upstreamMaySend += increment;
    return stream.upstreamMaySend <= MAX_WINDOW_SIZE;
  }

  /** The upstream's WINDOW_UPDATE for the connection. */
  upstreamGranted(increment: number): void {
    this.clientMaySend += increment;
  }

  /** The upstream's WINDOW_UPDATE for `stream` (undefined: a closed stream). */
  upstreamGrantedOn(stream: StreamWindows | undefined, increment: number): void {
    if (stream !== undefined) stream.clientMaySend += increment;
  }

  /** The upstream's SETTINGS_INITIAL_WINDOW_SIZE is in force: open streams move by the change. */
  setUpstreamInitialWindow(size: number, open: Iterable<StreamWindows>): void {
    const delta = size - this.upstreamInitialWindow;
    this.upstreamInitialWindow = size;
    for (const stream of open) stream.clientMaySend += delta;
  }

  /** The client's SETTINGS_INITIAL_WINDOW_SIZE is in force: open streams move by the change. */
  setClientInitialWindow(size: number, open: Iterable<StreamWindows>): void {
    const delta = size - this.clientInitialWindow;
    this.clientInitialWindow = size;
    for (const stream of open) stream.upstreamMaySend += delta;
  }
}
