/**
 * The relay's writes: what the reads of one turn of the event loop produced goes out in one
 * write per socket (turn.ts), and each side is read only while what reading it produces can be
 * written (../backpressure.ts).
 */
import type { Socket } from 'node:net';
import { isFull, ReadSwitch } from '../backpressure.js';
import { Output } from '../output.js';
import { atEndOfTurn } from './turn.js';

export class RelayWrites {
  /** What goes to the upstream: the client's frames, and the relay's own. */
  readonly toUpstream = new Output();
  /** What goes to the client: the upstream's frames, and the relay's own. */
  readonly toClient = new Output();
  private upstream: Socket | null = null;
  private readonly clientReading = new ReadSwitch();
  private readonly upstreamReading = new ReadSwitch();
  private queued = false;
  private readonly task = () => {
    this.queued = false;
    this.endOfTurn();
  };

  constructor(
    private readonly client: Socket,
    /** Runs at the end of each turn in which schedule() was called (it calls write()). */
    private readonly endOfTurn: () => void,
  ) {}

  /** The upstream connection the relay writes to, or null when there is none any more. */
  setUpstream(upstream: Socket | null): void {
    this.upstream = upstream;
  }

  schedule(): void {
    if (this.queued) return;
    this.queued = true;
    atEndOfTurn(this.task);
  }

  /** Writes what each output holds. */
  write(): void {
    const up = this.toUpstream.take();
    const upstream = this.upstream;
    if (up !== null && upstream !== null && !upstream.destroyed) upstream.write(up);
    this.writeToClient();
  }

  writeToClient(): void {
    const out = this.toClient.take();
    if (out !== null) this.client.write(out);
  }

  /**
   * Backpressure: reading the client writes upstream (and answers to the client), reading
   * upstream writes to the client. `clientBehind`: the client is to be treated as full (frames
   * of the relay's own wait for it).
   */
  updateFlow(clientBehind: boolean): void {
    const { client, upstream } = this;
    const clientFull = clientBehind || isFull(client);
    this.clientReading.set(client, !clientFull && !isFull(upstream));
    if (upstream !== null) this.upstreamReading.set(upstream, !clientFull);
  }
}
