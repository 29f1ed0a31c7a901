/** Named errors of the fake's streaming half, so callers branch on type, not on message text. */

/** The peer broke SPDY/3.1 framing rules; the session answers with GOAWAY and closes. */
export class SpdyProtocolError extends Error {
  override readonly name: string = 'SpdyProtocolError';
}

/** A header block could not be (de)compressed or parsed; the zlib state is lost for good. */
export class SpdyHeaderError extends SpdyProtocolError {
  override readonly name: string = 'SpdyHeaderError';
}

/** The exec'd executable does not exist in the (emulated) container image. */
export class ExecutableNotFoundError extends Error {
  override readonly name: string = 'ExecutableNotFoundError';
  constructor(readonly executable: string) {
    super(`executable file not found in $PATH: ${executable}`);
  }
}

/** The emulated process was killed because its session ended. */
export class ProcessKilledError extends Error {
  override readonly name: string = 'ProcessKilledError';
  constructor() {
    super('process killed: session ended');
  }
}
