/**
 * Every certificate string type through the real proxy, on HTTP/1.1 and HTTP/2: the
 * X-Remote-User / X-Remote-Group bytes the fake kube-apiserver receives are exactly the Go
 * strings kube-apiserver's own x509 parser makes of the names (test/support/go-names.ts,
 * go1.23), and a certificate Go refuses gets a 401 naming the attribute, with nothing sent
 * upstream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RecordedRequest } from '../../src/demo/fake-apiserver/index.js';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { type ClientResponse, requestH1, requestH2 } from '../fake-apiserver/testkit.js';
import {
  identityFor,
  nameDer,
  OID_CN,
  OID_OU,
  type RawAttribute,
  STRING_CASES,
  subjectFor,
  utf8Attribute,
} from '../support/go-names.js';
import { makePki, type TestPki } from '../support/pki.js';
import { assertIdentityBytes, type Expected, type Stack, startStack } from './harness.js';

interface Case {
  readonly label: string;
  readonly cert: IssuedCert;
  /** The identity on the wire, or the start of the 401's message. */
  readonly expected: Expected | { readonly refused: string };
}

let pki: TestPki;
let stack: Stack;
const cases: Case[] = [];

/** Cases a TLS client can present (OpenSSL parses them), as CN and as O. */
async function stringCases(): Promise<Case[]> {
  const out: Case[] = [];
  for (const c of STRING_CASES.filter((s) => s.openssl)) {
    for (const where of ['CN', 'O'] as const) {
      out.push({
        label: `${c.label} as ${where}`,
        cert: await pki.clusterCa.issue({ names: { subject: subjectFor(c, where) } }),
        expected: identityFor(c, where),
      });
    }
  }
  return out;
}

before(async () => {
  pki = await makePki();
  stack = await startStack(pki, { proxyFlags: ['--reject-mode=status'] });
  cases.push(...(await stringCases()));
  const kubernetesAsUniversalString: RawAttribute = {
    oid: OID_CN,
    tag: 0x1c,
    value: Buffer.from('kubernetes'.split('').flatMap((ch) => [0, 0, 0, ch.charCodeAt(0)])),
  };
  cases.push(
    {
      label: 'an OU Go refuses',
      cert: await pki.clusterCa.issue({
        names: {
          subject: nameDer(
            { oid: OID_OU, tag: 0x13, value: Buffer.from('ops_team') },
            utf8Attribute(OID_CN, 'alice'),
          ),
        },
      }),
      expected: { refused: 'client certificate subject OU: invalid PrintableString' },
    },
    {
      // OpenSSL matches this issuer to the CA in its canonical form; Go cannot parse it.
      label: 'the issuer CN as a UniversalString',
      cert: await pki.clusterCa.issue({
        names: {
          subject: nameDer(utf8Attribute(OID_CN, 'alice')),
          issuer: nameDer(kubernetesAsUniversalString),
        },
      }),
      expected: {
        refused: 'client certificate issuer CN: unsupported string type: 28 (UniversalString)',
      },
    },
  );
});

after(async () => {
  await stack?.stop();
  pki?.cleanup();
});

type Protocol = 'h1' | 'h2';
let tagNumber = 0;

async function send(
  protocol: Protocol,
  cert: IssuedCert,
): Promise<{ res: ClientResponse; seen: RecordedRequest[] }> {
  tagNumber++;
  const tag = `identity=${tagNumber}`;
  const url = `${stack.proxy.url}/api?${tag}`;
  const options = { ca: pki.clusterCa.certPem, cert };
  const res = await (protocol === 'h1' ? requestH1(url, options) : requestH2(url, options));
  return { res, seen: stack.fake.requests.filter((r) => r.query === tag) };
}

async function refusedHandshakes(): Promise<number> {
  const text = await (await fetch(`${stack.proxy.adminUrl}/metrics`)).text();
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('kube_crl_proxy_handshakes_total{') &&
        l.includes('outcome="rejected"') &&
        l.includes('reason="invalid_identity"'),
    );
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

for (const protocol of ['h1', 'h2'] as const) {
  describe(`certificate names over ${protocol === 'h1' ? 'HTTP/1.1' : 'HTTP/2'}`, () => {
    test('the apiserver receives the Go strings, or nothing and the client a 401', async () => {
      const refusedBefore = await refusedHandshakes();
      let refusals = 0;
      for (const c of cases) {
        const { res, seen } = await send(protocol, c.cert);
        if ('refused' in c.expected) {
          refusals++;
          assert.equal(res.status, 401, `${c.label}: ${res.body}`);
          const status = JSON.parse(res.body) as { kind: string; reason: string; message: string };
          assert.equal(status.kind, 'Status', c.label);
          assert.equal(status.reason, 'Unauthorized', c.label);
          assert.ok(status.message.startsWith(c.expected.refused), `${c.label}: ${status.message}`);
          assert.deepEqual(seen, [], `${c.label}: nothing reached the apiserver`);
        } else {
          assert.equal(res.status, 200, `${c.label}: ${res.body}`);
          assert.equal(seen.length, 1, c.label);
          assertIdentityBytes(seen[0] as RecordedRequest, c.expected, undefined, c.label);
        }
      }
      assert.ok(refusals >= 8, 'the refused cases are exercised');
      assert.equal(await refusedHandshakes(), refusedBefore + refusals, 'invalid_identity count');
    });
  });
}

test('T61String CNs t61-x\\xE9 and t61-x\\xE8 reach the apiserver as two users', async () => {
  const users = new Set<string>();
  for (const c of cases.filter((k) => k.label.startsWith('T61String with 0xE'))) {
    for (const protocol of ['h1', 'h2'] as const) {
      const { seen } = await send(protocol, c.cert);
      const user = seen[0]?.user?.username;
      if (c.label.endsWith('as CN') && user !== undefined) users.add(user);
    }
  }
  assert.deepEqual([...users].sort(), ['t61-x\u00e8', 't61-x\u00e9']);
});
