/**
 * The run flags and `--config` on the command line, as the run command and check-config take
 * them.
 */
import type { Argv, Options } from 'yargs';
import { GROUPS, RUN_OPTIONS } from '../config/options.js';
import type { CommandLine } from '../config/sources.js';

/**
 * The run flags and `--config`, as the run command and check-config take them. yargs only
 * parses them: the config layer checks them all (src/config/sources.ts), so that every
 * problem is listed at once. For the same reason no `choices` reach yargs, which would stop
 * at the first value outside them; --help still lists them.
 */
export function withRunFlags(y: Argv): Argv {
  const options = Object.fromEntries(
    Object.entries(RUN_OPTIONS).map(([name, option]: [string, Options]) => {
      if (option.choices === undefined) return [name, option];
      const { choices, ...rest } = option;
      const listed = (choices as readonly string[]).map((c) => JSON.stringify(c)).join(', ');
      return [
        name,
        { ...rest, type: 'string', describe: `${option.describe} [choices: ${listed}]` },
      ];
    }),
  );
  return y.strict(false).options(options).option('config', {
    type: 'string',
    group: GROUPS.process,
    describe: 'YAML or JSON file with the same keys as the flags; flags override it',
  });
}

/** The command line of the run command or check-config, for the config layer. */
export function commandLine(
  args: Record<string, unknown>,
  command: string | null,
  ownFlags: CommandLine['ownFlags'],
): CommandLine {
  const argv = process.argv.slice(2);
  const positionals = (args._ as (string | number)[] | undefined) ?? [];
  return {
    argv: command === null ? argv : argv.toSpliced(argv.indexOf(command), 1),
    parsed: args,
    positionals: command === null ? positionals : positionals.slice(1),
    ownFlags: { config: 'string', help: 'boolean', version: 'boolean', ...ownFlags },
    commands: COMMAND_NAMES,
  };
}

/** The subcommands, for suggestions (main.ts registers them). */
const COMMAND_NAMES = ['check-config', 'demo', 'check-cert', 'inspect-crl', 'crl'];
