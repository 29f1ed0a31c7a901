/**
 * The byte pipe of an upgraded connection (after the apiserver's 101): bytes both ways, as
 * they come, with backpressure, until either side ends; then both are closed. A WebSocket
 * tunnel's server→client bytes pass a frame reader (headers only), so that a cut session
 * ends at a message boundary with the Status on its error channel and a Close frame
 * (websocket.ts); a SPDY tunnel has no such place and is closed.
 */
import type { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { activeUpgrades } from '../metrics/metrics.js';
import type { StatusResponse } from './status.js';
import type { UpgradeKind } from './upgrade.js';
import { FrameReader, finalFrames } from './websocket.js';

/** A cut session gets this long to reach the end of the message under way. */
const CUT_GRACE_MS = 1000;
/** After its last frames, the client gets this long to close before it is closed. */
const CLOSE_GRACE_MS = 1000;

export class Tunnel {
  private readonly frames: FrameReader | null;
  private clientEnded = false;
  private upstreamEnded = false;
  /** The cut's Status, once cut: no client byte goes up any more. */
  private cutStatus: StatusResponse | null = null;
  private cutting = false;
  private counted = true;

  private readonly onClientData = (chunk: Buffer) => {
    if (!this.upstream.write(chunk)) this.client.pause();
  };
  private readonly onUpstreamData = (chunk: Buffer) => this.fromUpstream(chunk);

  constructor(
    private readonly client: Duplex,
    private readonly upstream: Duplex,
    private readonly kind: UpgradeKind,
    /** The WebSocket subprotocol the apiserver chose ('' for none). */
    private readonly protocol: string,
  ) {
    this.frames = kind === 'websocket' ? new FrameReader() : null;
  }

  /** Starts the pipe; `upstreamHead` are server bytes read with the 101, sent first. */
  start(upstreamHead: Buffer): void {
    const { client, upstream, kind } = this;
    activeUpgrades.inc({ kind });
    client.on('data', this.onClientData);
    upstream.on('data', this.onUpstreamData);
    upstream.on('drain', () => {
      if (!this.cutting) client.resume();
    });
    client.on('drain', () => upstream.resume());
    client.once('end', () => {
      this.clientEnded = true;
      if (!this.cutting) upstream.end();
    });
    upstream.once('end', () => {
      this.upstreamEnded = true;
      // A cut session whose server ends before the message under way does: nothing to finish.
      if (this.cutting) this.destroy();
      else client.end();
    });
    client.on('error', () => this.destroy());
    upstream.on('error', () => this.destroy());
    client.once('close', () => this.closed(this.upstream, this.clientEnded));
    upstream.once('close', () => this.closed(this.client, this.upstreamEnded));
    if (upstreamHead.length > 0) this.fromUpstream(upstreamHead);
    client.resume();
    upstream.resume();
  }

  /**
   * The certificate is no longer accepted: nothing more of the client's goes up; a WebSocket
   * session ends at its next message boundary with the Status (`status` null: closed).
   */
  cut(status: StatusResponse | null): void {
    if (this.cutting) return;
    this.cutting = true;
    const { client, frames } = this;
    client.off('data', this.onClientData);
    // Read and dropped from here on, so that closing never resets the client's connection
    // under the last frames.
    client.on('data', () => {});
    client.resume();
    if (status === null || frames === null) {
      this.destroy();
      return;
    }
    this.cutStatus = status;
    if (frames.atBoundary) {
      this.finish(status, frames);
      return;
    }
    setTimeout(() => this.destroy(), CUT_GRACE_MS).unref();
  }

  private fromUpstream(chunk: Buffer): void {
    const { frames, client } = this;
    if (frames === null) {
      if (!client.write(chunk)) this.upstream.pause();
      return;
    }
    const status = this.cutStatus;
    if (status === null) {
      frames.feed(chunk, 0, false);
      if (!client.write(chunk)) this.upstream.pause();
      return;
    }
    const upto = frames.feed(chunk, 0, true);
    if (upto > 0) client.write(upto === chunk.length ? chunk : chunk.subarray(0, upto));
    if (frames.atBoundary) this.finish(status, frames);
  }

  /** At a message boundary of a cut session: the last frames, then the close. */
  private finish(status: StatusResponse, frames: FrameReader): void {
    this.cutStatus = null;
    this.upstream.off('data', this.onUpstreamData);
    this.upstream.destroy();
    this.client.end(finalFrames(this.protocol, status, frames));
    setTimeout(() => this.client.destroy(), CLOSE_GRACE_MS).unref();
  }

  /**
   * One side closed. After its clean end the other side finishes writing what it holds (and
   * is closed after a grace); an abrupt close closes the other side at once.
   */
  private closed(other: Duplex, endedCleanly: boolean): void {
    this.uncount();
    if (this.cutting) return;
    if (endedCleanly) setTimeout(() => other.destroy(), CLOSE_GRACE_MS).unref();
    else other.destroy();
  }

  private destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  private uncount(): void {
    if (!this.counted) return;
    this.counted = false;
    activeUpgrades.dec({ kind: this.kind });
  }
}
