/**
 * `kube-crl-proxy [flags]`: run the proxy (one process, or a cluster with --workers).
 */
import cluster from 'node:cluster';
import type { CommandModule } from 'yargs';
import type { Config } from '../config/config.js';
import { GROUPS } from '../config/options.js';
import { gatherSettings, loadConfig } from '../config/sources.js';
import { ConfigError, ConfigErrors, errorMessage } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { startPrimary, startWorker } from '../run/cluster.js';
import { type RunningProxy, startSingle } from '../run/single.js';
import { findProblems } from './check-config-command.js';
import { failWith } from './exit.js';
import { printConfigText } from './print-config.js';
import { commandLine, withRunFlags } from './run-flags.js';

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

async function run(parsed: Record<string, unknown>): Promise<void> {
  const settings = gatherSettings(commandLine(parsed, null, { 'print-config': 'boolean' }));
  let config: Config;
  try {
    config = loadConfig(settings);
  } catch (err) {
    if (!(err instanceof ConfigErrors)) throw err;
    // The inputs of the flags that passed are loaded too, so a file problem shows at once;
    // --print-config reads no file.
    if (parsed['print-config'] === true) failWith(err.errors);
    failWith((await findProblems(settings, null, err.errors)).problems);
  }
  if (parsed['print-config'] === true) {
    process.stdout.write(printConfigText(settings));
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
    if (err instanceof ConfigErrors) failWith(err.errors.map((e) => settings.relabel(e)));
    if (err instanceof ConfigError) failWith([settings.relabel(err)]);
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
