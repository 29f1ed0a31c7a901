/**
 * Where each setting comes from — the command line over the `--config` file over the defaults —
 * and what in them is not a setting: a flag the proxy does not take, named as the user typed
 * it, or a key of the file it does not know, named as the file spells it. Problems are
 * collected, not thrown, so that every one is listed at once.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, ConfigErrors, errorMessage, fileErrorMessage } from '../errors.js';
import { type Config, defaultArgs, resolveConfig } from './config.js';
import { RUN_OPTIONS } from './options.js';
import { parseYaml } from './yaml.js';

/** A `--config` file: the values of the keys it may hold, and what is wrong with it. */
export interface ConfigFile {
  readonly path: string;
  readonly values: Readonly<Record<string, unknown>>;
  readonly problems: readonly ConfigError[];
}

/** Reads a `--config` file (YAML or JSON) and checks its keys against the flags. */
export function readConfigFile(path: string): ConfigFile {
  const refused = (problem: string): ConfigFile => ({
    path,
    values: {},
    problems: [new ConfigError('config', `${path}: ${problem}`)],
  });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return refused(`cannot read: ${fileErrorMessage(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text); // YAML is a superset of JSON
  } catch (err) {
    return refused(`is not valid YAML or JSON: ${errorMessage(err).split('\n')[0]}`);
  }
  if (parsed === null || parsed === undefined) return { path, values: {}, problems: [] };
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    return refused('must hold a mapping of flag names to values');
  }
  const values: Record<string, unknown> = {};
  const problems: ConfigError[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    if (key in RUN_OPTIONS) {
      values[key] = value;
    } else {
      const hint = suggestion(key, Object.keys(RUN_OPTIONS), '');
      problems.push(new ConfigError('config', `${path}: unknown key "${key}"${hint}`));
    }
  }
  return { path, values, problems };
}

/** A command line as the run command and check-config receive it. */
export interface CommandLine {
  /** The tokens the user typed after the command's name. */
  readonly argv: readonly string[];
  /** yargs' parse of them (kebab-case keys: camel-case expansion is off). */
  readonly parsed: Readonly<Record<string, unknown>>;
  /** The positional arguments after the command's name; the run command takes none. */
  readonly positionals: readonly (string | number)[];
  /** The command's flags besides the run flags (`config`, `help`, …), booleans marked. */
  readonly ownFlags: Readonly<Record<string, 'boolean' | 'string'>>;
  /** The subcommands' names, to suggest one for a mistyped positional. */
  readonly commands: readonly string[];
}

/** The settings of a command line, before validation. */
export interface Settings {
  /** Every run flag's value: typed flags over the `--config` file over the defaults. */
  readonly args: Readonly<Record<string, unknown>>;
  /** The `--config` file's path, or null. */
  readonly configFile: string | null;
  /** Flags the user did not mean, and the `--config` file's own problems. */
  readonly problems: readonly ConfigError[];
  /** The problem as the user should read it: the flag as typed, or with the file it is set in. */
  relabel(err: ConfigError): ConfigError;
}

export function gatherSettings(line: CommandLine): Settings {
  const booleans = new Set([
    ...Object.entries(RUN_OPTIONS)
      .filter(([, option]) => (option as { type?: string }).type === 'boolean')
      .map(([name]) => name),
    ...Object.entries(line.ownFlags)
      .filter(([, type]) => type === 'boolean')
      .map(([name]) => name),
  ]);
  const known = [...Object.keys(RUN_OPTIONS), ...Object.keys(line.ownFlags)];
  const typed = new Set<string>();
  const problems: ConfigError[] = [];
  for (const { token, value } of flagTokens(line.argv)) {
    const name = canonicalName(token, known, booleans);
    if (name !== null) {
      typed.add(name);
      // yargs would give such a flag its default; kube's flag parser refuses it.
      if (value === null && !booleans.has(name) && name !== 'help') {
        problems.push(new ConfigError(name, 'needs a value', token));
      }
      continue;
    }
    const bare = token.replace(/^-+/, '');
    problems.push(new ConfigError(bare, `unknown flag${suggestion(bare, known, '--')}`, token));
  }
  for (const positional of line.positionals) {
    const text = String(positional);
    problems.push(
      new ConfigError(
        text,
        `unexpected argument (the proxy takes flags only)${suggestion(text, line.commands, '')}`,
        text,
      ),
    );
  }
  let configFile: string | null = null;
  let file: ConfigFile | null = null;
  const config = line.parsed.config;
  if (typeof config === 'string' && config !== '') {
    configFile = config;
    file = readConfigFile(config);
    problems.push(...file.problems);
  } else if (config !== undefined) {
    problems.push(new ConfigError('config', 'give one file path'));
  }
  const args: Record<string, unknown> = { ...defaultArgs(), ...file?.values };
  for (const name of typed) if (name in RUN_OPTIONS) args[name] = line.parsed[name];
  return {
    args,
    configFile,
    problems,
    relabel: (err) => {
      if (err.label !== `--${err.flag}` || typed.has(err.flag)) return err;
      if (file === null || !(err.flag in file.values)) return err;
      return new ConfigError(err.flag, err.problem, `--${err.flag} (set in ${file.path})`);
    },
  };
}

/** The Config of these settings, or ConfigErrors with every problem, each labelled. */
export function loadConfig(settings: Settings): Config {
  const problems = [...settings.problems];
  try {
    const config = resolveConfig(settings.args);
    if (problems.length === 0) return config;
  } catch (err) {
    if (!(err instanceof ConfigErrors)) throw err;
    problems.push(...err.errors);
  }
  throw new ConfigErrors(problems.map((err) => settings.relabel(err)));
}

/** The Config of a `--config` file and no flags, as `kube-crl-proxy --config=PATH` loads it. */
export function loadConfigFile(path: string): Config {
  return loadConfig(
    gatherSettings({
      argv: [],
      parsed: { config: path },
      positionals: [],
      ownFlags: {},
      commands: [],
    }),
  );
}

/**
 * Each flag token as typed, without its `=value`, and its value: after `=`, or the next token
 * when that is not a flag; null when there is none. None after `--`.
 */
function flagTokens(argv: readonly string[]): { token: string; value: string | null }[] {
  const end = argv.indexOf('--');
  const tokens = end === -1 ? argv : argv.slice(0, end);
  // As yargs reads them: `-` (stdin) and negative numbers are values.
  const isFlag = (token: string | undefined) =>
    token?.startsWith('-') === true && token !== '-' && !/^-\d/.test(token);
  return tokens.flatMap((token, i) => {
    if (!isFlag(token)) return [];
    const equals = token.indexOf('=');
    if (equals >= 0) return [{ token: token.slice(0, equals), value: token.slice(equals + 1) }];
    const next = tokens[i + 1];
    return [{ token, value: next === undefined || isFlag(next) ? null : next }];
  });
}

/**
 * The option a flag token names, or null. Spelled only as declared, as kube-apiserver's flag
 * parser takes them: yargs would also take `--clientCaFile`, which no kube flag accepts.
 */
function canonicalName(
  token: string,
  known: readonly string[],
  booleans: ReadonlySet<string>,
): string | null {
  if (token === '-h') return 'help';
  if (!token.startsWith('--')) return null;
  const name = token.slice(2);
  if (known.includes(name)) return name;
  const negated = name.startsWith('no-') ? name.slice(3) : null;
  return negated !== null && booleans.has(negated) ? negated : null;
}

/**
 * "; did you mean …?" when a name is close to one of `names`: the same words in kebab-case, the
 * start of exactly one name, or at most a few letters apart.
 */
export function suggestion(typed: string, names: readonly string[], prefix: string): string {
  const kebab = typed.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
  let best: string | null = names.includes(kebab) ? kebab : null;
  const starting = names.filter((name) => name.startsWith(kebab));
  if (best === null && starting.length === 1) best = starting[0] as string;
  if (best === null) {
    let bestDistance = Math.max(2, Math.floor(kebab.length / 4)) + 1;
    for (const name of names) {
      const distance = editDistance(kebab, name);
      if (distance < bestDistance) [best, bestDistance] = [name, distance];
    }
  }
  return best === null ? '' : `; did you mean ${prefix}${best}?`;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(
        substitution,
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}
