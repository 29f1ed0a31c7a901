/**
 * The Go table (test/support/go-names.ts) against Go itself: kubectl 1.32.4 is built with
 * go1.23.8, the Go of kube-apiserver 1.32, and parses certificates with the same crypto/x509.
 *
 * - What Go makes of a name: kubectl refuses a server it cannot verify and names the candidate
 *   CA it tried, as Go's %q of that CA's CommonName (x509.UnknownAuthorityError). A decoy CA
 *   with the case's Name but another key than the server's issuer makes it print the value.
 * - What Go refuses: kubectl cannot load a certificate its parser refuses and prints the
 *   parser's error. Through the proxy, the certificates Go accepts arrive as the same bytes;
 *   the two Go accepts but OpenSSL cannot parse fail the proxy's TLS handshake.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createServer, type Server } from 'node:tls';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { Authority } from '../../src/demo/pki-factory.js';
import { quoteGoString } from '../../src/pki/names.js';
import { toPem } from '../../src/pki/pem.js';
import {
  type KubectlEnv,
  type KubectlResult,
  runKubectl,
  TempDir,
  writeKubeconfig,
} from '../fake-apiserver/testkit.js';
import { assertIdentityBytes, type Stack, startStack } from '../security/harness.js';
import {
  identityFor,
  nameDer,
  OID_CN,
  STRING_CASES,
  type StringCase,
  subjectFor,
  wireOf,
} from '../support/go-names.js';
import { makePki, type TestPki } from '../support/pki.js';

const PARSE_ERROR = 'x509: invalid RDNSequence: invalid attribute value: ';
/** The proxy's OpenSSL alert, or the reset when kubectl was still writing as it closed. */
const HANDSHAKE_REFUSED =
  /Unable to connect to the server: (remote error: tls: error decoding message|.*(connection reset by peer|broken pipe))/;

let pki: TestPki;
let tmp: TempDir;
let placeholder: IssuedCert;

before(async () => {
  pki = await makePki();
  tmp = await TempDir.create('kcp-go-names-');
  placeholder = await pki.user('placeholder');
});

after(async () => {
  await tmp?.remove();
  pki?.cleanup();
});

let runs = 0;
async function kubectlGetApi(
  server: string,
  caPem: string,
  cert?: { certPem: string; keyPem: string },
): Promise<KubectlResult> {
  runs++;
  const env: KubectlEnv = {
    kubeconfig: await writeKubeconfig(
      tmp,
      server,
      caPem,
      cert === undefined ? { token: 'unused' } : { cert },
      `kubeconfig-${runs}`,
    ),
    cacheDir: tmp.file(`cache-${runs}`),
    home: tmp.path,
  };
  return runKubectl(env, ['get', '--raw', '/api', '--request-timeout=10s']);
}

describe('the values Go makes of each string type (kubectl, go1.23.8)', () => {
  let issuer: Authority;
  let decoy: Authority;

  before(async () => {
    [issuer, decoy] = await Promise.all([
      Authority.create({ commonName: 'server-ca' }),
      Authority.create({ commonName: 'decoy' }),
    ]);
  });

  for (const c of STRING_CASES.filter((s) => s.openssl)) {
    test(c.label, async (t) => {
      const name = nameDer({ oid: OID_CN, tag: c.tag, value: c.value });
      const decoyCa = decoy.resign(decoy.cert.der, { subject: name, issuer: name });
      const leaf = await issuer.issue({
        commonName: 'server',
        usage: 'server',
        ipAddresses: ['127.0.0.1'],
        names: { issuer: name },
      });
      const server = await listen(leaf);
      t.after(() => server.close());
      const { port } = server.address() as { port: number };
      const result = await kubectlGetApi(
        `https://127.0.0.1:${port}`,
        toPem('CERTIFICATE', decoyCa),
      );
      assert.notEqual(result.code, 0);
      if ('bytes' in c.go) {
        const quoted = quoteGoString(wireOf(c.go.bytes));
        assert.ok(
          result.stderr.includes(
            `while trying to verify candidate authority certificate ${quoted})`,
          ),
          `${quoted} in ${result.stderr}`,
        );
      } else {
        assert.ok(
          result.stderr.includes(`failed to parse certificate: ${PARSE_ERROR}${c.go.error}`),
          result.stderr,
        );
      }
    });
  }
});

function listen(cert: IssuedCert): Promise<Server> {
  const server = createServer({ cert: cert.certPem, key: cert.keyPem });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('client certificates through the proxy, with kubectl (go1.23.8) as the client', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack(pki);
  });
  after(() => stack?.stop());

  for (const c of STRING_CASES) {
    test(c.label, async () => {
      const der = pki.clusterCa.resign(placeholder.der, { subject: subjectFor(c, 'CN') });
      const mark = stack.fake.requests.length;
      const result = await kubectlGetApi(stack.proxy.url, pki.clusterCa.certPem, {
        certPem: toPem('CERTIFICATE', der),
        keyPem: placeholder.keyPem,
      });
      const seen = stack.since(mark);
      assert.deepEqual(...outcome(c, result, seen.length));
      const expected = identityFor(c, 'CN');
      if (!('refused' in expected)) {
        for (const rec of seen) assertIdentityBytes(rec, expected, undefined, c.label);
      }
    });
  }
});

/** [what happened, what the table says must happen], for one kubectl run. */
function outcome(c: StringCase, result: KubectlResult, seen: number): [unknown, unknown, string] {
  const happened = {
    exit: result.code === 0 ? 0 : 'error',
    goError: goErrorOf(result.stderr),
    handshakeRefused: HANDSHAKE_REFUSED.test(result.stderr),
    reachedApiserver: seen > 0,
  };
  const goAccepts = 'bytes' in c.go;
  const expected = {
    exit: goAccepts && c.openssl ? 0 : 'error',
    goError: goAccepts ? null : c.go.error,
    // Go accepts it but OpenSSL cannot parse it: the proxy's handshake fails (decode_error).
    handshakeRefused: goAccepts && !c.openssl,
    reachedApiserver: goAccepts && c.openssl,
  };
  return [happened, expected, `${c.label}: ${result.stderr}`];
}

/** Go's parse error in kubectl's output, after the common prefix; null when there is none. */
function goErrorOf(stderr: string): string | null {
  const at = stderr.indexOf(PARSE_ERROR);
  if (at < 0) return null;
  return stderr.slice(at + PARSE_ERROR.length).split('\n')[0] as string;
}
