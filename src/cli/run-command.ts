/**
 * `kube-crl-proxy [flags]`: run the proxy (one process, or a cluster with --workers).
 */
import cluster from 'node:cluster';
import type { Argv, CommandModule } from 'yargs';
import { type Config, readConfigFile, resolveConfig } from '../config/config.js';
import { GROUPS, RUN_OPTIONS } from '../config/options.js';
import { ConfigError, errorMessage } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { startPrimary, startWorker } from '../run/cluster.js';
import { type RunningProxy, startSingle } from '../run/single.js';
import { fail } from './exit.js';
import { printConfigText } from './print-config.js';

/** The run flags and `--config`, read exactly as the run command reads them. */
export function withRunFlags(y: Argv): Argv {
  return (
    y
      .options(RUN_OPTIONS)
      .config('config', (path: string) => readConfigFile(path))
      // Declared after .config(), which would otherwise replace its help text and group.
      .option('config', {
        type: 'string',
        group: GROUPS.process,
        describe: 'YAML or JSON file with the same keys as the flags; flags override it',
      })
  );
}

export const runCommand: CommandModule = {
  command: '$0',
  describe: 'run the proxy',
  builder: (y) =>
    withRunFlags(y).option('print-config', {
      type: 'boolean',
      group: GROUPS.process,
      describe:
        'print the effective configuration (flags > --config file > defaults) as YAML, with file paths but never their contents, and exit without listening',
    }),
  handler: (args) => run(args as Record<string, unknown>),
};

async function run(args: Record<string, unknown>): Promise<void> {
  let config: Config;
  try {
    config = resolveConfig(args);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  if (args['print-config'] === true) {
    process.stdout.write(printConfigText(args));
    return;
  }
  if (cluster.isWorker) {
    await runWorker(config);
    return;
  }
  const log = createLogger(config.logLevel);
  warnIfUnsupportedRuntime(log);
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

/** The Node.js major this release is built and tested on (package.json `engines`). */
const SUPPORTED_NODE_MAJOR = 26;

function warnIfUnsupportedRuntime(log: Logger): void {
  if ('deno' in process.versions) return;
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= SUPPORTED_NODE_MAJOR) return;
  log.warn(
    { node: process.version, supported: `>=${SUPPORTED_NODE_MAJOR}` },
    `running on Node.js ${process.version}, which this release is not tested on; install node@${SUPPORTED_NODE_MAJOR} beside it (docs/kubeadm.md)`,
  );
}
