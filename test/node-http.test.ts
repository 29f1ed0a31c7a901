/**
 * The serving path's use of node:http (src/node-http.ts): taken without an ESM import, so the
 * HTTP client bundled in Node (undici), which the namespace's getters would load, stays out of
 * the proxy's memory.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { createServer, request, STATUS_CODES } from '../src/node-http.js';

test('node:http as the proxy uses it: the same functions', async () => {
  const http = await import('node:http');
  assert.equal(createServer, http.createServer);
  assert.equal(request, http.request);
  assert.equal(STATUS_CODES, http.STATUS_CODES);
});

test('the run command and everything it serves with load no HTTP client', () => {
  const entry = new URL('../src/main.js', import.meta.url).href;
  const script = `import(${JSON.stringify(entry)}).then(() => process.stdout.write(process.moduleLoadList.filter((m) => m.includes('undici')).join(',')))`;
  assert.equal(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }), '');
});
