/**
 * SETTINGS travel end to end (RFC 9113 6.5), so each peer's settings bind the other peer; the
 * relay follows both directions to know which are in force, once acknowledged, for its own
 * parts: the upstream's bind the client's HPACK encoder (the relay's decoder), the frames the
 * client may send and the client's DATA windows; the client's bind the upstream's HPACK encoder
 * (the status reader) and the upstream's DATA windows. The client is offered the upstream's
 * settings lowered to the proxy's limits.
 */
import type { Limits } from '../../config/config.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  Setting,
  type SettingsChange,
  settingsChange,
  settingsFrame,
} from './frames.js';

export class SettingsMirror {
  /** SETTINGS of the upstream (or the relay's own) sent to the client, awaiting its ACK. */
  private readonly sentToClient: SettingsChange[] = [];
  /** SETTINGS of the client sent upstream, awaiting the upstream's ACK. */
  private readonly sentToUpstream: SettingsChange[] = [];
  private upstreamFrameSizeInForce = DEFAULT_MAX_FRAME_SIZE;
  private frameLimit = DEFAULT_MAX_FRAME_SIZE;
  private upstreamSettingsSeen = false;
  private clientSettingsSeen = false;

  constructor(private readonly limits: Pick<Limits, 'h2MaxConcurrentStreams' | 'maxHeaderBytes'>) {}

  /** Largest frame the client may send: the upstream's limit, sent or in force. */
  get clientFrameLimit(): number {
    return this.frameLimit;
  }

  /** Whether the upstream's first SETTINGS (its connection preface) arrived. */
  get upstreamStarted(): boolean {
    return this.upstreamSettingsSeen;
  }

  /** Whether the client's first SETTINGS went upstream (its connection preface is complete). */
  get clientStarted(): boolean {
    return this.clientSettingsSeen;
  }

  /** SETTINGS of the relay's own, when it is the server: none changed. */
  ownSettings(): Buffer {
    this.sentToClient.push({});
    return settingsFrame([]);
  }

  /**
   * The upstream's SETTINGS `payload`, on its way to the client: the frame to send instead, or
   * null to pass it as it is.
   */
  fromUpstream(payload: Buffer): Buffer | null {
    const first = !this.upstreamSettingsSeen;
    this.upstreamSettingsSeen = true;
    this.sentToClient.push(settingsChange(payload));
    this.updateFrameLimit();
    return this.settingsForClient(payload, first);
  }

  /**
   * The client acknowledged the oldest SETTINGS it was sent: the change now in force, or
   * undefined when it was sent none (a protocol error).
   */
  clientAcknowledged(): SettingsChange | undefined {
    const change = this.sentToClient.shift();
    if (change === undefined) return undefined;
    if (change.maxFrameSize !== undefined) this.upstreamFrameSizeInForce = change.maxFrameSize;
    this.updateFrameLimit();
    return change;
  }

  /** The client's SETTINGS `payload` (valid) goes upstream. */
  fromClient(payload: Buffer): void {
    this.clientSettingsSeen = true;
    this.sentToUpstream.push(settingsChange(payload));
  }

  /** The upstream acknowledged the client's oldest SETTINGS: the change now in force. */
  upstreamAcknowledged(): SettingsChange | undefined {
    return this.sentToUpstream.shift();
  }

  private updateFrameLimit(): void {
    let limit = this.upstreamFrameSizeInForce;
    for (const change of this.sentToClient)
      if (change.maxFrameSize !== undefined) limit = Math.max(limit, change.maxFrameSize);
    this.frameLimit = limit;
  }

  /**
   * The upstream's SETTINGS as the client sees them: the stream limit lowered to ours (and
   * stated in the first SETTINGS when the upstream leaves it unlimited), likewise the header
   * list size, and no extended CONNECT (not relayed). Null when nothing changes.
   */
  private settingsForClient(payload: Buffer, first: boolean): Buffer | null {
    const { limits } = this;
    const entries: Array<[number, number]> = [];
    let changed = false;
    let streamsSet = false;
    let listSet = false;
    for (let i = 0; i + 6 <= payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      let value = payload.readUInt32BE(i + 2);
      if (id === Setting.EnableConnectProtocol) {
        changed = true;
        continue;
      }
      if (id === Setting.MaxConcurrentStreams) {
        streamsSet = true;
        if (value > limits.h2MaxConcurrentStreams) {
          value = limits.h2MaxConcurrentStreams;
          changed = true;
        }
      } else if (id === Setting.MaxHeaderListSize) {
        listSet = true;
        if (value > limits.maxHeaderBytes) {
          value = limits.maxHeaderBytes;
          changed = true;
        }
      }
      entries.push([id, value]);
    }
    if (first && !streamsSet) {
      entries.push([Setting.MaxConcurrentStreams, limits.h2MaxConcurrentStreams]);
      changed = true;
    }
    if (first && !listSet) {
      entries.push([Setting.MaxHeaderListSize, limits.maxHeaderBytes]);
      changed = true;
    }
    return changed ? settingsFrame(entries) : null;
  }
}
