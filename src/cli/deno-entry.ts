/**
 * Entry point for Deno: `deno run -A dist/src/cli/deno-entry.js [flags]` (from the package
 * directory, so Deno finds node_modules). Node stays the first-class runtime: bin/kube-crl-proxy.
 *
 * Deno's Node compatibility covers what the proxy uses, with one gap that would stop it from
 * starting, patched here before the CLI loads (docs/deno.md has the evidence):
 * `X509Certificate.prototype.keyUsage` answers the keyUsage bit names ("DigitalSignature")
 * where Node answers the extendedKeyUsage OIDs, so every front-proxy-client certificate looks
 * as if it lacked clientAuth. The getter is replaced, under Deno only, by one that reads the
 * extension from the certificate's DER.
 */
import { X509Certificate } from 'node:crypto';
import { extendedKeyUsages } from '../tls/offline-chain.js';

function runningUnderDeno(): boolean {
  return 'Deno' in globalThis;
}

function patchExtendedKeyUsage(): void {
  Object.defineProperty(X509Certificate.prototype, 'keyUsage', {
    configurable: true,
    get(this: X509Certificate): string[] | undefined {
      return extendedKeyUsages(this.raw) ?? undefined;
    },
  });
}

if (runningUnderDeno()) patchExtendedKeyUsage();
const { main } = await import('../main.js');
await main();
