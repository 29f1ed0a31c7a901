/**
 * The yaml package, loaded the first time a YAML text is read or written: only a --config file,
 * --print-config and check-cert's output need it, and a proxy started with flags alone would
 * otherwise carry it in memory for its whole life (bench/README.md, scenario memory). Loaded
 * with require because reading --config is synchronous (yargs' config parser).
 */
import { createRequire } from 'node:module';

import type { DocumentOptions, ParseOptions, SchemaOptions, ToJSOptions } from 'yaml';

type Yaml = typeof import('yaml');

let yaml: Yaml | null = null;

function loaded(): Yaml {
  yaml ??= createRequire(import.meta.url)('yaml') as Yaml;
  return yaml;
}

/** yaml's parse (its default options unless given). */
export function parseYaml(
  text: string,
  options?: ParseOptions & DocumentOptions & SchemaOptions & ToJSOptions,
): unknown {
  return loaded().parse(text, options);
}

/** yaml's stringify, with its default options. */
export function toYaml(value: unknown): string {
  return loaded().stringify(value);
}
