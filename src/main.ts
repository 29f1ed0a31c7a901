/**
 * The command line: `kube-crl-proxy [flags]` runs the proxy; subcommands run the demo and the
 * inspection tools. Configuration errors print one line naming the flag and exit 2.
 */
import cluster from 'node:cluster';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { type Config, readConfigFile, resolveConfig } from './config/config.js';
import { RUN_OPTIONS } from './config/options.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger } from './log.js';
import { startPrimary, startWorker } from './run/cluster.js';
import { type RunningProxy, startSingle } from './run/single.js';

export const EXIT_CONFIG = 2;

function fail(message: string): never {
  process.stderr.write(`kube-crl-proxy: ${message.trim().replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(EXIT_CONFIG);
}

async function runCommand(args: Record<string, unknown>): Promise<void> {
  let config: Config;
  try {
    config = resolveConfig(args);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  if (cluster.isWorker) {
    await runWorker(config);
    return;
  }
  const log = createLogger(config.logLevel);
  let proxy: RunningProxy;
  try {
    proxy = config.workers > 1 ? await startPrimary(config, log) : await startSingle(config, log);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    proxy.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Logged and counted by the snapshot source; a failure keeps the last good snapshot.
  process.on('SIGHUP', () => void proxy.reload());
}

/** A cluster worker: the primary owns the inputs and the signals that reload them. */
async function runWorker(config: Config): Promise<void> {
  const log = createLogger(config.logLevel).child({ worker: cluster.worker?.id });
  process.on('SIGHUP', () => {});
  const worker = await startWorker(config, log);
  const stop = () => {
    worker.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

export function buildCli(argv: string[]): Argv {
  return yargs(argv)
    .scriptName('kube-crl-proxy')
    .usage(
      '$0 [flags]\n\nTLS proxy in front of kube-apiserver that refuses revoked client certificates.',
    )
    .command(
      '$0',
      'run the proxy',
      (y) =>
        y
          .options(RUN_OPTIONS)
          .option('config', {
            type: 'string',
            group: 'Process:',
            describe: 'YAML or JSON file with the same keys as the flags; flags override it',
          })
          .config('config', (path: string) => readConfigFile(path)),
      (args) => runCommand(args as Record<string, unknown>),
    )
    .command(
      'demo',
      'throwaway PKI + embedded fake apiserver + proxy + kubeconfigs, for a first run',
      (y) =>
        y.option('port', {
          type: 'number',
          default: 0,
          describe: 'client port of the proxy (0: any free port)',
        }),
      async (args) => {
        const { runDemo } = await import('./demo/demo.js');
        await runDemo({ port: args.port });
      },
    )
    .strict()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(120, process.stdout.columns ?? 100))
    .fail((message, err) => {
      // yargs wraps errors thrown while reading --config as YError with the same message.
      if (err instanceof ConfigError || err?.name === 'YError') fail(err.message);
      if (err) throw err;
      fail(message ?? 'invalid arguments');
    });
}

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  await buildCli(argv).parseAsync();
}
