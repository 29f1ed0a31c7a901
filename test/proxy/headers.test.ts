import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ConnectionHeaders,
  connectionTokens,
  type HeaderList,
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
/** `Jürgen` as the apiserver's Go parser holds a UTF8String: its UTF-8 bytes. */
const JURGEN = Buffer.from('Jürgen', 'utf8').toString('latin1');

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

  test('identity values (Go strings, one char per byte) are sent as they are', () => {
    const bytes = [JURGEN, 't61-x\u00e9'];
    const out = sanitizeRequestHeaders([], { user: bytes[0] as string, groups: bytes }, rules);
    assert.deepEqual(out, [
      ['X-Remote-User', JURGEN],
      ['X-Remote-Group', JURGEN],
      ['X-Remote-Group', 't61-x\u00e9'],
    ]);
    assert.equal(Buffer.from(JURGEN, 'latin1').toString('utf8'), 'Jürgen');
  });
});

describe('ConnectionHeaders (what a connection adds upstream)', () => {
  /** The lines back as pairs. */
  function pairsOf(lines: string): HeaderList {
    assert.ok(lines === '' || lines.endsWith('\r\n'), 'every line ends in CRLF');
    return lines
      .split('\r\n')
      .slice(0, -1)
      .map((line): [string, string] => {
        const colon = line.indexOf(': ');
        return [line.slice(0, colon), line.slice(colon + 2)];
      });
  }

  /** What sanitizeRequestHeaders sends, less the names the splice writes itself. */
  function expected(headers: HeaderList, who: typeof identity | null): HeaderList {
    return sanitizeRequestHeaders(headers, who, rules, { forwardedFor: '10.0.0.7' }).filter(
      ([name]) => !['host', 'content-length'].includes(name.toLowerCase()),
    );
  }

  const NAMES = [
    'Accept',
    'User-Agent',
    'X-Foo',
    'foo-bar',
    'Host',
    'Content-Length',
    'Transfer-Encoding',
    'Connection',
    'connection',
    'Keep-Alive',
    'TE',
    'Upgrade',
    'Proxy-Authorization',
    'Trailer',
    'X-Forwarded-For',
    'x-forwarded-for',
    'X-Remote-User',
    'x_remote_group',
    'X-REMOTE-UID',
    'X-Custom-User',
    'X-Remote-Extra-Scopes',
    'x-acme-extra-team',
    'X-Remote-Extras',
    'Authorization',
    'Impersonate-User',
  ];
  const VALUES = [
    'a',
    '192.0.2.1',
    'close',
    'X-Foo',
    'foo-bar, keep-alive',
    'Upgrade',
    'te',
    ' trailers',
  ];

  test('sends exactly what sanitizeRequestHeaders keeps, in order (3,000 generated heads)', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const anonymous = new ConnectionHeaders('10.0.0.7', null, rules);
    const alice = new ConnectionHeaders(
      '10.0.0.7',
      { user: JURGEN, groups: ['dev', 'ops'] },
      rules,
    );
    let dropped = 0;
    for (let i = 0; i < 3000; i++) {
      const headers: HeaderList = [];
      for (let n = random(9); n > 0; n--)
        headers.push([
          NAMES[random(NAMES.length)] as string,
          VALUES[random(VALUES.length)] as string,
        ]);
      const listed = connectionTokens(
        headers
          .filter(([name]) => name.toLowerCase() === 'connection')
          .map(([, value]) => value)
          .join(','),
      );
      const who = i % 2 === 0 ? null : { user: JURGEN, groups: ['dev', 'ops'] };
      const own = who === null ? anonymous : alice;
      const want = expected(headers, who);
      assert.deepEqual(pairsOf(own.headLines(headers, listed)), want, JSON.stringify(headers));
      // The HTTP/2 relay's list: the same decisions, te: trailers kept when asked.
      const keepTeTrailers = i % 3 === 0;
      assert.deepEqual(
        own.fields(headers, keepTeTrailers),
        sanitizeRequestHeaders(headers, who, rules, { forwardedFor: '10.0.0.7', keepTeTrailers }),
      );
      dropped += headers.length + 1 + (who === null ? 0 : 3) - want.length;
    }
    assert.ok(dropped > 3000, 'the generated heads exercise the dropping rules');
  });

  test('a client X-Forwarded-For is joined with the address, identity after it', () => {
    const own = new ConnectionHeaders('10.0.0.7', identity, rules);
    assert.equal(
      own.headLines(
        [
          ['X-Forwarded-For', '192.0.2.1'],
          ['X-Remote-User', 'mallory'],
          ['Accept', '*/*'],
        ],
        new Set(),
      ),
      'Accept: */*\r\nX-Forwarded-For: 192.0.2.1, 10.0.0.7\r\nX-Remote-User: alice\r\nX-Remote-Group: dev\r\nX-Remote-Group: ops\r\n',
    );
  });
});
