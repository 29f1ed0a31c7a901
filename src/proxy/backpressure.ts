/**
 * Backpressure between a client connection and its upstream connection, shared by the HTTP/2
 * relay and the HTTP/1.1 splice: a side is read only while what reading it produces can be
 * written.
 */

/**
 * Output a socket may hold before the side feeding it is paused (reading resumes when it has
 * drained). Above Node's 16 KB so that bursts (watch events to thousands of streams) do not
 * pause and resume reading on every turn.
 */
export const HIGH_WATER_MARK = 256 * 1024;

/** Whether `socket` holds as much unwritten output as the side feeding it may leave there. */
export function isFull(socket: { readonly writableLength: number } | null): boolean {
  return socket !== null && socket.writableLength >= HIGH_WATER_MARK;
}

/** Whether one socket is read: it is paused or resumed only when that changes. */
export class ReadSwitch {
  private paused = false;

  /** Reads `socket` when `read`, else pauses it. */
  set(socket: { pause(): unknown; resume(): unknown }, read: boolean): void {
    if (read !== this.paused) return;
    this.paused = !read;
    if (read) socket.resume();
    else socket.pause();
  }

  /** Another socket is behind the switch, and it is being read. */
  reset(): void {
    this.paused = false;
  }
}
