/**
 * This package's version, from its own package.json (two levels up from dist/src/), so it is
 * right however the package was installed: yargs' default looks in the working directory's
 * package.json, which is the host project's when installed with `npm install` into a directory.
 */
import { readFileSync } from 'node:fs';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;
