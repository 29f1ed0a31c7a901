/**
 * The pseudo-terminal of a `tty=true` session, as a container runtime's pty would behave:
 *  - the resize channel: newline-delimited JSON `{"Width":W,"Height":H}` (client-go encodes
 *    TerminalSize with json.Encoder, so every message ends in "\n");
 *  - output post-processing (ONLCR): "\n" becomes "\r\n", because kubectl put the local
 *    terminal in raw mode and would otherwise print staircases;
 *  - canonical input with echo (ICANON, ECHO, ICRNL): keystrokes are echoed, Enter (\r)
 *    ends a line, Backspace/Ctrl-U edit it, Ctrl-D on an empty line is EOF, Ctrl-C kills
 *    the foreground command (status 130, as SIGINT would).
 */
import { type Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import type { Terminal, TerminalSize } from './process-io.js';

export class TerminalState implements Terminal {
  size: TerminalSize | null = null;
  private pending = '';
  private readonly interruptListeners = new Set<() => void>();
  private resolveFirst!: () => void;
  /** Settles on the first resize: kubectl sends one right after the upgrade. */
  readonly firstResize: Promise<void> = new Promise((resolve) => {
    this.resolveFirst = resolve;
  });

  onInterrupt(listener: () => void): () => void {
    this.interruptListeners.add(listener);
    return () => this.interruptListeners.delete(listener);
  }

  /** Delivers Ctrl-C; false when no program handles it (the process is then killed). */
  interrupt(): boolean {
    for (const listener of [...this.interruptListeners]) listener();
    return this.interruptListeners.size > 0;
  }

  /** Feeds bytes of the resize channel (any split; messages end in "\n"). */
  feed(bytes: Buffer): void {
    this.pending += bytes.toString('utf8');
    let newline = this.pending.indexOf('\n');
    while (newline >= 0) {
      this.apply(this.pending.slice(0, newline));
      this.pending = this.pending.slice(newline + 1);
      newline = this.pending.indexOf('\n');
    }
    // A sender that omits the newline still sends one complete object per message.
    if (this.pending.trim().endsWith('}') && this.apply(this.pending)) this.pending = '';
  }

  private apply(text: string): boolean {
    if (text.trim() === '') return false;
    try {
      const { Width, Height } = JSON.parse(text) as { Width?: unknown; Height?: unknown };
      if (typeof Width !== 'number' || typeof Height !== 'number') return false;
      this.size = { width: Width, height: Height };
      this.resolveFirst();
      return true;
    } catch {
      return false;
    }
  }
}

/** ONLCR: the pty turns every "\n" the process writes into "\r\n". */
export class TtyOutput extends Transform {
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
    let text = chunk.toString('latin1');
    if (text.includes('\n')) text = text.replace(/\r?\n/g, '\r\n');
    callback(null, Buffer.from(text, 'latin1'));
  }
}

const CTRL_C = 0x03;
const CTRL_D = 0x04;
const CTRL_U = 0x15;
const BACKSPACE = 0x08;
const DELETE = 0x7f;

/**
 * Cooks the client's raw keystrokes into lines for the process's stdin, echoing them on the
 * terminal. Ends `processStdin` on Ctrl-D at the start of a line or when the client closes
 * stdin; calls `interrupt` on Ctrl-C.
 */
export function attachLineDiscipline(
  raw: Readable,
  processStdin: Writable,
  terminalOutput: Writable,
  interrupt: () => void,
): void {
  let line: number[] = [];
  const echo = (text: string | Buffer): void => {
    if (!terminalOutput.destroyed && !terminalOutput.writableEnded) terminalOutput.write(text);
  };
  const deliver = (bytes: number[]): void => {
    if (processStdin.destroyed || processStdin.writableEnded) return;
    if (!processStdin.write(Buffer.from(bytes))) {
      raw.pause();
      processStdin.once('drain', () => raw.resume());
    }
  };
  raw.on('data', (chunk: Buffer) => {
    for (const byte of chunk) {
      if (byte === CTRL_C) {
        echo('^C\n');
        line = [];
        interrupt();
      } else if (byte === CTRL_D) {
        if (line.length === 0) {
          processStdin.end();
        } else {
          deliver(line);
          line = [];
        }
      } else if (byte === BACKSPACE || byte === DELETE) {
        // Remove a whole UTF-8 sequence: continuation bytes are 10xxxxxx.
        let removed = false;
        while (line.length > 0 && !removed) {
          removed = ((line.pop() as number) & 0xc0) !== 0x80;
        }
        if (removed) echo('\b \b');
      } else if (byte === CTRL_U) {
        echo('\b \b'.repeat(Buffer.from(line).toString('utf8').length));
        line = [];
      } else if (byte === 0x0d || byte === 0x0a) {
        echo('\n');
        line.push(0x0a);
        deliver(line);
        line = [];
      } else {
        line.push(byte);
        echo(Buffer.of(byte));
      }
    }
  });
  raw.on('end', () => {
    if (line.length > 0) deliver(line);
    if (!processStdin.writableEnded) processStdin.end();
  });
}
