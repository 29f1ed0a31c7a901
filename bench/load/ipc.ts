/**
 * The load processes run on the load core and talk to the suite over Node's IPC channel:
 * the suite sends a config, the child connects and warms up, says `ready`; the suite samples
 * /proc and says `go`; the child measures and says `done` with its result, then waits for
 * `exit`. Every child also bounds its own life, so a lost parent never leaves load running.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopChild, trackChild } from '../support/processes.js';

export type ToChild<C> =
  | { readonly type: 'config'; readonly config: C }
  | { readonly type: 'go' }
  | { readonly type: 'command'; readonly name: string; readonly args?: unknown }
  | { readonly type: 'exit' };

export type FromChild<R> =
  | { readonly type: 'ready'; readonly info?: unknown }
  | { readonly type: 'done'; readonly result: R }
  | { readonly type: 'reply'; readonly name: string; readonly value?: unknown }
  | { readonly type: 'error'; readonly message: string };

/** Child side: the config, and a hard deadline after which the process exits by itself. */
export function childMain<C>(
  run: (config: C, send: (msg: FromChild<unknown>) => void) => Promise<void>,
  maxLifeMs = 15 * 60_000,
): void {
  const send = (msg: FromChild<unknown>) => {
    if (process.connected) process.send?.(msg);
  };
  const life = setTimeout(() => {
    send({ type: 'error', message: `load process gave up after ${maxLifeMs} ms` });
    process.exit(3);
  }, maxLifeMs);
  life.unref();
  process.on('disconnect', () => process.exit(0));
  process.on('message', (msg: ToChild<C>) => {
    if (msg.type === 'exit') process.exit(0);
  });
  process.once('message', (msg: ToChild<C>) => {
    if (msg.type !== 'config') return;
    run(msg.config, send).catch((err: unknown) => {
      send({
        type: 'error',
        message: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
      process.exit(1);
    });
  });
}

/** Child side: resolves on the next message of that type. */
export function nextMessage<C>(type: ToChild<C>['type']): Promise<ToChild<C>> {
  return new Promise((resolve) => {
    const onMessage = (msg: ToChild<C>) => {
      if (msg.type !== type) return;
      process.off('message', onMessage);
      resolve(msg);
    };
    process.on('message', onMessage);
  });
}

/** Parent side: a forked load process. */
export class LoadProcess<C, R> {
  private readonly inbox: FromChild<R>[] = [];
  private readonly waiters: Array<{
    type: string;
    resolve: (m: FromChild<R>) => void;
    reject: (e: Error) => void;
  }> = [];
  private exitError: Error | null = null;
  readonly pid: number;

  private constructor(private readonly child: ReturnType<typeof fork>) {
    this.pid = child.pid as number;
    child.on('message', (msg: FromChild<R>) => {
      if (msg.type === 'error') {
        this.fail(new Error(`load process: ${msg.message}`));
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === msg.type);
      if (i >= 0) {
        const [waiter] = this.waiters.splice(i, 1);
        waiter?.resolve(msg);
      } else {
        this.inbox.push(msg);
      }
    });
    child.once('exit', (code, signal) => {
      this.fail(new Error(`load process exited (${code ?? signal})`));
    });
  }

  /** `script` is a module path relative to bench/load (compiled name, .js). */
  static start<C, R>(script: string, config: C, nodeArgs: string[] = []): LoadProcess<C, R> {
    const path = fileURLToPath(new URL(script, import.meta.url));
    const child = trackChild(
      fork(path, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: nodeArgs }),
    );
    const load = new LoadProcess<C, R>(child);
    load.send({ type: 'config', config });
    return load;
  }

  send(msg: ToChild<C>): void {
    this.child.send(msg);
  }

  next(type: FromChild<R>['type'], timeoutMs = 120_000): Promise<FromChild<R>> {
    const i = this.inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as FromChild<R>);
    if (this.exitError !== null) return Promise.reject(this.exitError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`load process: no '${type}' within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        type,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  async ready(timeoutMs?: number): Promise<unknown> {
    const msg = await this.next('ready', timeoutMs);
    return msg.type === 'ready' ? msg.info : undefined;
  }

  async done(timeoutMs?: number): Promise<R> {
    const msg = await this.next('done', timeoutMs);
    if (msg.type !== 'done') throw new Error('unreachable');
    return msg.result;
  }

  async command(name: string, args?: unknown, timeoutMs?: number): Promise<unknown> {
    this.send({ type: 'command', name, args });
    const msg = await this.next('reply', timeoutMs);
    return msg.type === 'reply' ? msg.value : undefined;
  }

  async stop(): Promise<void> {
    if (this.child.connected) this.send({ type: 'exit' });
    await stopChild(this.child, 3_000);
  }

  private fail(error: Error): void {
    this.exitError ??= error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}
