import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  headerValue,
  identityHeaderRules,
  sanitizeRequestHeaders,
} from '../../src/proxy/headers.js';

const rules = identityHeaderRules({
  usernameHeaders: ['X-Remote-User', 'X-Custom-User'],
  groupHeaders: ['X-Remote-Group'],
  extraHeadersPrefixes: ['X-Remote-Extra-', 'X-Acme-Extra-'],
  uidHeaders: ['X-Remote-Uid'],
});
const identity = { user: 'alice', groups: ['dev', 'ops'] };

describe('sanitizeRequestHeaders', () => {
  test('strips identity headers in any case, with underscores, and every configured name', () => {
    const out = sanitizeRequestHeaders(
      [
        ['x-remote-user', 'a'],
        ['X-REMOTE-GROUP', 'b'],
        ['X_Remote_User', 'c'],
        ['x-custom-user', 'd'],
        ['X-Acme-Extra-Foo', 'e'],
        ['x-remote-extra-bar', 'f'],
        ['X-Remote-Uid', 'g'],
        [' X-Remote-User', 'h'],
        ['Accept', 'application/json'],
      ],
      identity,
      rules,
    );
    assert.deepEqual(out, [
      ['Accept', 'application/json'],
      ['X-Remote-User', 'alice'],
      ['X-Remote-Group', 'dev'],
      ['X-Remote-Group', 'ops'],
    ]);
  });

  test('anonymous: identity headers stripped and none added; Authorization and Impersonate-* kept', () => {
    const out = sanitizeRequestHeaders(
      [
        ['Authorization', 'Bearer t'],
        ['Impersonate-User', 'bob'],
        ['X-Remote-User', 'admin'],
      ],
      null,
      rules,
    );
    assert.deepEqual(out, [
      ['Authorization', 'Bearer t'],
      ['Impersonate-User', 'bob'],
    ]);
  });

  test('upgrade requests keep exactly one Connection: Upgrade and the Upgrade token', () => {
    const out = sanitizeRequestHeaders(
      [
        ['Connection', 'Upgrade, X-Drop'],
        ['Upgrade', 'websocket'],
        ['X-Drop', '1'],
        ['Sec-WebSocket-Protocol', 'v5.channel.k8s.io'],
      ],
      identity,
      rules,
      { keepUpgrade: true, forwardedFor: '10.0.0.1' },
    );
    assert.deepEqual(out, [
      ['Sec-WebSocket-Protocol', 'v5.channel.k8s.io'],
      ['Connection', 'Upgrade'],
      ['Upgrade', 'websocket'],
      ['X-Forwarded-For', '10.0.0.1'],
      ['X-Remote-User', 'alice'],
      ['X-Remote-Group', 'dev'],
      ['X-Remote-Group', 'ops'],
    ]);
  });

  test('X-Forwarded-For is appended to, not replaced', () => {
    const out = sanitizeRequestHeaders([['X-Forwarded-For', '192.0.2.1']], null, rules, {
      forwardedFor: '127.0.0.1',
    });
    assert.deepEqual(out, [['X-Forwarded-For', '192.0.2.1, 127.0.0.1']]);
  });

  test('UTF-8 identity values travel as their bytes', () => {
    assert.equal(Buffer.from(headerValue('Jürgen'), 'latin1').toString('utf8'), 'Jürgen');
    assert.equal(headerValue('plain'), 'plain');
  });
});
