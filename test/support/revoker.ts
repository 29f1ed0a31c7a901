/**
 * A CRL file of the test PKI's cluster CA that only grows: `revoke` adds a certificate,
 * rewrites the file atomically and waits until the proxy reading it has cut that
 * certificate's open connections.
 */
import { crlPem, type IssuedCert } from '../../src/demo/pki-factory.js';
import { atomicWrite, type TestPki } from './pki.js';
import type { ProxyProcess } from './proxy-process.js';

export class Revoker {
  readonly file: string;
  private readonly revoked: string[] = [];
  private crlNumber = 1;

  constructor(
    private readonly pki: TestPki,
    name: string,
    /** The revocation date every entry carries (a fixed one keeps messages exact). */
    private readonly revokedAt = new Date('2026-11-01T00:00:00Z'),
  ) {
    this.file = pki.write(name, crlPem(pki.clusterCa.crl({ revoked: [], crlNumber: 1 })));
  }

  /** Revokes `user` and waits for the proxy's log line that it cut its connections. */
  async revoke(user: IssuedCert, proxy: ProxyProcess): Promise<void> {
    this.revoked.push(user.serial);
    const revoked = this.revoked.map((serial) => ({ serial, revokedAt: this.revokedAt }));
    atomicWrite(
      this.file,
      crlPem(this.pki.clusterCa.crl({ revoked, crlNumber: ++this.crlNumber })),
    );
    await proxy.waitForLog(
      (l) => l.msg.startsWith('closing open connections') && l.serial === user.serial,
      5000,
    );
  }
}
