/**
 * `kube-crl-proxy --print-config`: the effective configuration — flags over the `--config`
 * file over the defaults — as YAML that is itself a valid `--config` file. Only what the flags
 * hold is printed: file paths, never file contents, so no key material can leak.
 */
import { RUN_OPTIONS } from '../config/options.js';
import type { Settings } from '../config/sources.js';
import { toYaml } from '../config/yaml.js';

/** The run flags' effective values, in declaration order; flags without a value are left out. */
export function effectiveConfig(args: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(RUN_OPTIONS)) {
    const value = args[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

export function printConfigText(settings: Settings): string {
  const { args, configFile } = settings;
  const source =
    configFile === null ? 'flags, then defaults' : `flags, then ${configFile}, then defaults`;
  return [
    `# kube-crl-proxy effective configuration (${source}); usable as a --config file.`,
    '# Files are named by path; nothing was read from them.',
    toYaml(effectiveConfig(args)),
  ].join('\n');
}
