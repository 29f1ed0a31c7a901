/**
 * WebSocket frames written and read by the `ws` package's own Sender and Receiver (exported
 * by the package, not declared by @types/ws), for tests that check frames byte for byte.
 */
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';

const { Receiver, Sender } = createRequire(import.meta.url)('ws') as {
  Receiver: new (options: { isServer: boolean }) => Writable;
  Sender: {
    frame(
      data: Buffer,
      options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean },
    ): Buffer[];
  };
};

/** One frame (a server's unless `mask`). */
export function frame(data: Buffer, opcode = 0x2, fin = true, mask = false): Buffer {
  return Buffer.concat(Sender.frame(data, { fin, opcode, mask, readOnly: false, rsv1: false }));
}

export interface Received {
  readonly messages: Array<{ readonly data: Buffer; readonly binary: boolean }>;
  /** The Close frame's code and reason, null if none came. */
  readonly close: { readonly code: number; readonly reason: string } | null;
}

/** Reads server frames as a client does; rejects on anything malformed. */
export function receive(bytes: Buffer): Promise<Received> {
  return new Promise((resolve, reject) => {
    const messages: Array<{ data: Buffer; binary: boolean }> = [];
    const receiver = new Receiver({ isServer: false });
    receiver.on('message', (data: Buffer, binary: boolean) => messages.push({ data, binary }));
    receiver.on('conclude', (code: number, reason: Buffer) =>
      resolve({ messages, close: { code, reason: reason.toString() } }),
    );
    receiver.on('error', reject);
    receiver.write(bytes, () => resolve({ messages, close: null }));
  });
}
