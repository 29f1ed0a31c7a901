/**
 * The deny file: every way a file is refused (naming the entry and the problem), each selector
 * matching the certificates it names and no other, values as openssl prints them, and `until`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Authority, type IssuedCert } from '../../src/demo/pki-factory.js';
import { InputError } from '../../src/errors.js';
import {
  type DenyData,
  type DenyEntry,
  DenyList,
  deniedMessage,
  denyWarnings,
  issuerKeys,
  loadDenyFile,
  MAX_DENY_FILE_BYTES,
  parseDenyEntries,
} from '../../src/pki/deny-list.js';
import { peerOf } from '../../src/tls/verify.js';

let dir: string;
let ca: Authority;
let otherCa: Authority;
let alice: IssuedCert;
let bob: IssuedCert;
let carol: IssuedCert;
/** A second certificate for carol's key. */
let carolAgain: IssuedCert;
/** Same serial as alice's, from another CA. */
let impostor: IssuedCert;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kcp-deny-'));
  ca = await Authority.create({ commonName: 'kubernetes', organizations: ['acme'] });
  otherCa = await Authority.create({ commonName: 'other' });
  alice = await ca.issue({ commonName: 'alice', organizations: ['dev'] });
  bob = await ca.issue({ commonName: 'bob', organizations: ['ops', 'contractors'] });
  carol = await ca.issue({ commonName: 'carol' });
  carolAgain = await ca.issue({ commonName: 'carol', keyOf: carol });
  impostor = await otherCa.issue({ commonName: 'alice', serial: alice.serial.toLowerCase() });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function parse(yaml: string): DenyEntry[] {
  return parseDenyEntries('deny.yaml', Buffer.from(yaml));
}

function list(yaml: string): DenyList {
  return new DenyList({ file: 'deny.yaml', digest: 'x', entries: parse(yaml) });
}

/** The index of the entry that denies `cert` at `now`, or null. */
function deniedBy(deny: DenyList, cert: IssuedCert, now = Date.now()): number | null {
  return deny.match(peerOf(cert.der), now)?.index ?? null;
}

function refusal(yaml: string): string {
  try {
    parse(yaml);
  } catch (err) {
    assert.ok(err instanceof InputError);
    assert.equal(err.flag, 'deny-file');
    assert.equal(err.input, 'deny');
    return err.problem;
  }
  assert.fail(`accepted: ${yaml}`);
}

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8' }).trim();
}

describe('a deny file is refused whole, naming the entry and the problem', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['empty file', '', /holds no list \(write \[\] to deny nothing\)/],
    ['comments only', '# nothing yet\n', /holds no list/],
    ['a mapping', 'user: alice\n', /must be a YAML list of entries/],
    ['not YAML', '- {user: alice\n', /is not valid YAML/],
    ['a scalar entry', '- alice\n', /entry 1: must be a mapping such as \{user: alice\}/],
    ['unknown key', '- {user: alice}\n- {usr: bob}\n', /entry 2: unknown key "usr" \(keys: /],
    ['no selector', '- {reason: stolen}\n', /entry 1: names no client: give one of user, group/],
    ['two selectors', '- {user: alice, group: dev}\n', /entry 1: has user and group: one selector/],
    ['a list value', '- {group: [a, b]}\n', /entry 1: group must be one value/],
    ['empty user', '- {user: ""}\n', /entry 1: user is empty/],
    [
      'serial not hex',
      '- {serial: 3G, issuer: CN=kubernetes}\n',
      /entry 1: serial "3G" is not hex/,
    ],
    ['serial without issuer', '- {serial: 3BCA}\n', /entry 1: serial needs the issuer/],
    [
      'issuer without serial',
      '- {user: a, issuer: CN=x}\n',
      /entry 1: issuer goes only with serial/,
    ],
    [
      'issuer not a name',
      '- {serial: "01", issuer: kubernetes}\n',
      /issuer "kubernetes" is not a name/,
    ],
    [
      'short fingerprint',
      '- {fingerprint: abcd}\n',
      /entry 1: fingerprint "abcd" is not a SHA-256/,
    ],
    ['spki not hex', `- {spki: ${'z'.repeat(64)}}\n`, /entry 1: spki "z+" is not a SHA-256/],
    [
      'date only',
      '- {user: a, until: 2026-12-08}\n',
      /entry 1: until "2026-12-08" is not an RFC 3339/,
    ],
    ['no offset', '- {user: a, until: "2026-12-08T09:00:00"}\n', /is not an RFC 3339 time/],
    ['30 February', '- {user: a, until: "2026-02-30T00:00:00Z"}\n', /is not an RFC 3339 time/],
    ['control in reason', '- {user: a, reason: "a\\nb"}\n', /reason contains a control character/],
    ['long reason', `- {user: a, reason: ${'r'.repeat(1025)}}\n`, /reason is 1025 characters/],
    ['duplicate key', '- {user: a, user: b}\n', /is not valid YAML: Map keys must be unique/],
  ];
  for (const [name, yaml, expected] of cases) {
    test(name, () => assert.match(refusal(yaml), expected));
  }

  test('bytes that are not UTF-8, and a file over the size limit', () => {
    assert.throws(
      () => parseDenyEntries('deny.yaml', Buffer.from([0x2d, 0x20, 0xff])),
      /is not UTF-8 text/,
    );
    const big = join(dir, 'big.yaml');
    writeFileSync(big, `- {user: a, reason: ${'x'.repeat(MAX_DENY_FILE_BYTES)}}\n`);
    assert.throws(() => loadDenyFile(big), /more than 1048576: a deny file is for emergency locks/);
    assert.throws(() => loadDenyFile(join(dir, 'absent.yaml')), /cannot read: no such file/);
  });

  test('[] denies nothing; values YAML would read as numbers or booleans stay text', () => {
    assert.deepEqual(parse('[]\n'), []);
    const entries = parse('- {serial: 1234, issuer: CN=x}\n- {user: yes}\n- {group: null}\n');
    assert.deepEqual(
      entries.map((e) => e.selector),
      [
        { kind: 'serial', serial: '1234', issuer: 'CN=x' },
        { kind: 'user', value: 'yes' },
        { kind: 'group', value: 'null' },
      ],
    );
  });
});

describe('each selector denies what it names and nothing else', () => {
  test('user and group: what would be forwarded (CN, every O)', () => {
    const deny = list('- {group: contractors}\n- {user: alice}\n');
    assert.equal(deniedBy(deny, alice), 2);
    assert.equal(deniedBy(deny, bob), 1);
    assert.equal(deniedBy(deny, carol), null);
    // The same user name from another CA is the same user to the apiserver.
    assert.equal(deniedBy(deny, impostor), 2);
    assert.equal(deniedBy(list('- {user: Alice}\n'), alice), null, 'user names are case-sensitive');
    assert.equal(deniedBy(list('- {group: kubernetes}\n'), alice), null, 'issuer O is no group');
  });

  test('a user name outside ASCII matches the UTF-8 name of the certificate', async () => {
    const jose = await ca.issue({ commonName: 'José' });
    assert.equal(deniedBy(list('- {user: José}\n'), jose), 1);
  });

  test('serial and issuer, written as openssl prints them', () => {
    const file = join(dir, 'alice.crt');
    writeFileSync(file, alice.certPem);
    // serial=3BCA… and issuer=O = acme, CN = kubernetes (OpenSSL 3's default name format).
    const serial = openssl(['x509', '-in', file, '-noout', '-serial']).replace(/^serial=/, '');
    const issuer = openssl(['x509', '-in', file, '-noout', '-issuer']);
    const rfc2253 = openssl(['x509', '-in', file, '-noout', '-issuer', '-nameopt', 'RFC2253']);
    assert.match(issuer, /^issuer=O = acme, CN = kubernetes$/);
    assert.match(rfc2253, /^issuer=CN=kubernetes,O=acme$/);
    const colons = (serial.match(/../g) ?? []).join(':').toLowerCase();
    for (const [s, i] of [
      [serial, issuer],
      [serial, issuer.replace(/^issuer=/, '')],
      [colons, 'O=acme, CN=kubernetes'],
      [`00${serial}`, rfc2253.replace(/^issuer=/, '')],
      [serial, 'o=ACME,cn=Kubernetes'],
    ]) {
      const deny = list(`- {serial: "${s}", issuer: "${i}"}\n`);
      assert.equal(deniedBy(deny, alice), 1, `${s} / ${i}`);
      assert.equal(deniedBy(deny, impostor), null, 'the same serial from another CA');
      assert.equal(deniedBy(deny, bob), null);
    }
    assert.equal(deniedBy(list(`- {serial: "${serial}", issuer: "CN=kubernetes"}\n`), alice), null);
  });

  test('fingerprint: the SHA-256 of the certificate DER, as openssl prints it', () => {
    const file = join(dir, 'bob.crt');
    writeFileSync(file, bob.certPem);
    const printed = openssl(['x509', '-in', file, '-noout', '-fingerprint', '-sha256']);
    const fingerprint = printed.replace(/^sha256 Fingerprint=/i, '');
    assert.match(fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const deny = list(`- {fingerprint: "${fingerprint}"}\n`);
    assert.equal(deniedBy(deny, bob), 1);
    assert.equal(deniedBy(deny, alice), null);
    const lower = fingerprint.replace(/:/g, '').toLowerCase();
    assert.equal(deniedBy(list(`- {fingerprint: ${lower}}\n`), bob), 1);
  });

  test('spki: the SHA-256 of the SubjectPublicKeyInfo DER also catches a re-issue for the key', () => {
    const file = join(dir, 'carol.crt');
    writeFileSync(file, carol.certPem);
    const publicKey = openssl(['x509', '-in', file, '-noout', '-pubkey']);
    const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'DER'], {
      input: publicKey,
    });
    const spki = createHash('sha256').update(der).digest('hex');
    const deny = list(`- {spki: ${spki}, reason: laptop stolen}\n`);
    assert.notEqual(carol.serial, carolAgain.serial);
    assert.equal(deniedBy(deny, carol), 1);
    assert.equal(deniedBy(deny, carolAgain), 1);
    assert.equal(deniedBy(deny, alice), null);
    // The certificate's own fingerprint does not catch the re-issue.
    const fingerprint = createHash('sha256').update(carol.der).digest('hex');
    assert.equal(deniedBy(list(`- {fingerprint: ${fingerprint}}\n`), carolAgain), null);
  });

  test('the first entry of the file that applies is the one named', () => {
    const deny = list(
      [
        '- {user: alice, until: "2020-01-01T00:00:00Z", reason: old}',
        '- {group: dev, reason: team locked}',
        '- {user: alice, reason: laptop stolen}',
      ].join('\n'),
    );
    const entry = deny.match(peerOf(alice.der), Date.now());
    assert.equal(entry?.index, 2);
    assert.equal(
      deniedMessage(entry as DenyEntry),
      'client certificate denied by --deny-file entry 2 (group dev): team locked',
    );
  });
});

describe('until', () => {
  test('an entry lapses at its until, to the millisecond; the message says when', () => {
    const until = Date.parse('2026-12-08T09:00:00Z');
    const deny = list('- {user: alice, until: "2026-12-08T10:00:00+01:00", reason: incident 42}\n');
    assert.equal(deniedBy(deny, alice, until - 1), 1);
    assert.equal(deniedBy(deny, alice, until), null);
    assert.equal(
      deniedMessage(deny.data?.entries[0] as DenyEntry),
      'client certificate denied by --deny-file entry 1 (user alice, until 2026-12-08T09:00:00Z): incident 42',
    );
  });

  test('warnings: an entry already lapsed, a serial entry whose issuer is no CA of the bundle', () => {
    const data: DenyData = {
      file: 'deny.yaml',
      digest: 'x',
      entries: parse(
        [
          '- {user: alice, until: "2020-01-01T00:00:00Z"}',
          '- {serial: "01", issuer: "CN = kubernetes, O = acme"}',
          '- {serial: "01", issuer: "O = acme, CN = kubernetes"}',
        ].join('\n'),
      ),
    };
    assert.deepEqual(denyWarnings(data, ['O=acme, CN=kubernetes'], Date.now()), [
      'deny.yaml: entry 1 (user alice) lapsed at 2020-01-01T00:00:00Z: it denies nothing',
    ]);
    assert.deepEqual(denyWarnings(data, ['CN=other'], Date.parse('2019-01-01T00:00:00Z')), [
      'deny.yaml: entry 2 (serial 01, issuer CN = kubernetes, O = acme): no CA of --client-ca-file has that name, so it matches no certificate',
      'deny.yaml: entry 3 (serial 01, issuer O = acme, CN = kubernetes): no CA of --client-ca-file has that name, so it matches no certificate',
    ]);
  });
});

test('issuer names compare by their attributes, in either order, whatever the spacing and case', () => {
  const [certOrder, reversed] = issuerKeys('O = acme, CN = kubernetes') ?? [];
  assert.equal(certOrder, 'O=acme,CN=kubernetes');
  assert.equal(reversed, 'CN=kubernetes,O=acme');
  assert.deepEqual(issuerKeys('cn=a\\, b+o=x'), ['CN=a\\, b+O=x', 'CN=a\\, b+O=x']);
  assert.equal(issuerKeys('kubernetes'), null);
  assert.equal(issuerKeys('CN=a,,O=b'), null);
});
