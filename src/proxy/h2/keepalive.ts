/**
 * Node has no idle timeout for HTTP/2: the relay pings the client each interval, and a client
 * whose ping is still unanswered one interval later is gone without a FIN. An upstream that has
 * not sent its SETTINGS in a whole interval is not serving.
 */
import type { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { pingFrame } from './frames.js';

/** Payload of the relay's pings: their ACKs are recognised (and not relayed). */
const PING_PAYLOAD = randomBytes(8);

export interface KeepAliveHost {
  /** Whether the client has had a server preface (the upstream's SETTINGS or the relay's). */
  readonly clientStarted: boolean;
  sendPing(frame: Buffer): void;
  /** The upstream sent no SETTINGS in a whole interval. */
  upstreamSilent(): void;
  /** The client left a ping unanswered for an interval. */
  clientSilent(): void;
}

export class KeepAlive {
  private timer: NodeJS.Timeout | null = null;
  private awaiting = false;

  constructor(
    private readonly host: KeepAliveHost,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Whether a PING ACK's payload, `buf[at, at + 8)`, answers the relay's own ping. */
  answered(buf: Buffer, at: number): boolean {
    if (buf.compare(PING_PAYLOAD, 0, 8, at, at + 8) !== 0) return false;
    this.awaiting = false;
    return true;
  }

  private tick(): void {
    const host = this.host;
    if (!host.clientStarted) host.upstreamSilent();
    else if (this.awaiting) host.clientSilent();
    else {
      this.awaiting = true;
      host.sendPing(pingFrame(PING_PAYLOAD, false));
    }
  }
}
