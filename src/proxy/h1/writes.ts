/**
 * The splice's writes: what one read produced for the other side goes out in one write, and
 * each side is read only while what reading it produces can be written (../backpressure.ts).
 */
import type { Socket } from 'node:net';
import { isFull, ReadSwitch } from '../backpressure.js';
import { Output } from '../output.js';

/**
 * Client bytes read ahead of the request being forwarded (pipelined requests, a body waiting
 * for its upstream connection) before the client is paused.
 */
export const MAX_READ_AHEAD = 1024 * 1024;

export class SpliceWrites {
  /** What goes to the upstream: request heads (rebuilt) and bodies. */
  readonly toUpstream = new Output();
  /** What goes to the client: the responses, and answers of the proxy's own. */
  readonly toClient = new Output();
  private upstream: Socket | null = null;
  private readonly clientReading = new ReadSwitch();
  private readonly upstreamReading = new ReadSwitch();

  constructor(private readonly client: Socket) {}

  /** The upstream connection written to, or null when there is none (any more). */
  setUpstream(upstream: Socket | null): void {
    this.upstream = upstream;
    if (upstream !== null) this.upstreamReading.reset();
  }

  writeToUpstream(): void {
    const out = this.toUpstream.take();
    if (out !== null && this.upstream !== null) this.upstream.write(out);
  }

  writeToClient(): void {
    const out = this.toClient.take();
    if (out !== null) this.client.write(out);
  }

  /**
   * Backpressure: the client is read while the upstream takes what reading it produces and
   * while less than MAX_READ_AHEAD (`readAhead`: bytes read and not yet forwarded) waits; the
   * upstream while the client takes the responses.
   */
  updateFlow(readAhead: number): void {
    const { client, upstream } = this;
    this.clientReading.set(client, !isFull(upstream) && readAhead < MAX_READ_AHEAD);
    if (upstream !== null) this.upstreamReading.set(upstream, !isFull(client));
  }

  /** The client is read whatever the flow: it is closing, and what it sends is dropped. */
  readClientToEnd(): void {
    this.clientReading.set(this.client, true);
  }
}
