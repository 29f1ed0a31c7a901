/**
 * The set-up most end-to-end tests share: a test PKI with a user alice, the fake kube-apiserver
 * trusting it, and the real proxy binary in front of it, started on demand.
 */
import {
  type FakeApiserver,
  type FakeApiserverOptions,
  startFakeApiserver,
} from '../../src/demo/fake-apiserver/index.js';
import type { IssuedCert } from '../../src/demo/pki-factory.js';
import { makePki, proxyArgs, type TestPki } from './pki.js';
import { type ProxyProcess, startProxyProcess } from './proxy-process.js';

export interface TestClusterOptions {
  /** alice's groups (O=); dev by default. */
  readonly aliceGroups?: string[];
  /**
   * The fake accepts any front-proxy client name, not only front-proxy-client (for tests that
   * give the proxy a client certificate of another name).
   */
  readonly anyProxyClientName?: boolean;
  /** Options of the fake apiserver beyond the PKI's certificates and CAs. */
  readonly apiserver?: (pki: TestPki) => Partial<FakeApiserverOptions>;
  /** How stop() stops the proxies. */
  readonly stopSignal?: NodeJS.Signals;
}

/**
 * The fake apiserver of this PKI: served with its own certificate, trusting the cluster CA for
 * clients and the front-proxy CA for requestheader authentication, with kube-apiserver's
 * default allowed name (front-proxy-client) unless `anyProxyClientName`.
 */
export function clusterApiserverOptions(
  pki: TestPki,
  options: TestClusterOptions = {},
): FakeApiserverOptions {
  return {
    tls: { cert: pki.apiserver.certPem, key: pki.apiserver.keyPem },
    clientCA: pki.clusterCa.certPem,
    requestheader: {
      clientCA: pki.frontProxyCa.certPem,
      ...(options.anyProxyClientName === true ? { allowedNames: [] } : {}),
    },
    ...options.apiserver?.(pki),
  };
}

interface Started {
  readonly pki: TestPki;
  readonly alice: IssuedCert;
  readonly fake: FakeApiserver;
}

/**
 * Start it from the file's before() and stop it from its after(): node:test runs a file's
 * top-level hooks of one kind at the same time, so a fixture registering hooks of its own would
 * race the file's.
 */
export class TestCluster {
  private started: Started | undefined;
  private readonly proxies: ProxyProcess[] = [];

  constructor(private readonly options: TestClusterOptions = {}) {}

  get pki(): TestPki {
    return this.running().pki;
  }

  get fake(): FakeApiserver {
    return this.running().fake;
  }

  /** A client certificate of the cluster CA, good unless the test revokes it. */
  get alice(): IssuedCert {
    return this.running().alice;
  }

  async start(): Promise<void> {
    const pki = await makePki();
    const alice = await pki.user('alice', this.options.aliceGroups ?? ['dev']);
    const fake = await startFakeApiserver(clusterApiserverOptions(pki, this.options));
    this.started = { pki, alice, fake };
  }

  /** Stops every proxy it started or was given, closes the fake, removes the PKI. */
  async stop(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.stop(this.options.stopSignal)));
    await this.started?.fake.close();
    this.started?.pki.cleanup();
  }

  /** The real proxy for this PKI in front of `upstream` (the fake by default). */
  async proxy(extra: string[] = [], upstream?: string): Promise<ProxyProcess> {
    const { pki, fake } = this.running();
    return this.stopAfterwards(
      await startProxyProcess(proxyArgs(pki, upstream ?? fake.url, extra)),
    );
  }

  /** Has stop() stop a proxy the test started with flags of its own. */
  stopAfterwards(proxy: ProxyProcess): ProxyProcess {
    this.proxies.push(proxy);
    return proxy;
  }

  private running(): Started {
    if (this.started === undefined) throw new Error('the test cluster is used before start()');
    return this.started;
  }
}
