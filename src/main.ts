/**
 * The command line: `kube-crl-proxy [flags]` runs the proxy; subcommands run the demo and the
 * inspection tools. Configuration errors print one line naming the flag and exit 2.
 */
import yargs, { type Argv, type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { checkCertCommand } from './cli/check-cert-command.js';
import { demoCommand } from './cli/demo-command.js';
import { fail } from './cli/exit.js';
import { inspectCrlCommand } from './cli/inspect-crl-command.js';
import { runCommand } from './cli/run-command.js';
import { ConfigError } from './errors.js';

/** Every command, in --help order. */
export const COMMANDS: readonly CommandModule[] = [
  runCommand,
  demoCommand as unknown as CommandModule,
  checkCertCommand as unknown as CommandModule,
  inspectCrlCommand as unknown as CommandModule,
];

export function buildCli(argv: string[]): Argv {
  let cli = yargs(argv)
    .scriptName('kube-crl-proxy')
    .usage(
      '$0 [flags]\n\nTLS proxy in front of kube-apiserver that refuses revoked client certificates.',
    );
  for (const command of COMMANDS) cli = cli.command(command);
  return cli
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
