/**
 * What the proxy uses of node:http, taken from the module itself rather than through an ESM
 * import. An ESM import of a builtin reads every export of its namespace, and node:http's
 * WebSocket, CloseEvent and MessageEvent exports are getters that load undici (on Node 22 and
 * later): a bundled HTTP client the proxy never uses, left in memory for the life of the
 * process (bench/README.md, scenario memory). Its types are imported as usual
 * (`import type … from 'node:http'`).
 */
export const { createServer, request, STATUS_CODES } = process.getBuiltinModule('node:http');
