/**
 * Readiness, as /readyz and the kube_crl_proxy_ready gauge report it: a snapshot is in force
 * (always true once serving: the proxy never starts without one) and the apiserver accepted a
 * TLS connection recently (probed when it has not).
 */
import { errorMessage } from '../errors.js';
import type { Readiness } from '../metrics/admin.js';
import { ready } from '../metrics/metrics.js';
import type { Upstream } from '../proxy/upstream.js';

/** The apiserver counts as answering if a TLS connection succeeded this recently. */
const UPSTREAM_FRESH_MS = 15_000;
const EVALUATE_EVERY_MS = 5_000;

export function upstreamReadiness(
  upstream: Upstream,
  extra: () => string | null = () => null,
): Readiness & { stop(): void } {
  const check = async (): Promise<string | null> => {
    const problem = extra();
    if (problem !== null) return problem;
    if (Date.now() - upstream.lastContactAt > UPSTREAM_FRESH_MS) {
      try {
        await upstream.probe();
      } catch (err) {
        return `the apiserver did not answer: ${errorMessage(err)}`;
      }
    }
    return null;
  };
  const timer = setInterval(() => {
    check().then(
      (problem) => ready.set(problem === null ? 1 : 0),
      () => ready.set(0),
    );
  }, EVALUATE_EVERY_MS);
  timer.unref();
  ready.set(1);
  return {
    async check() {
      const problem = await check();
      ready.set(problem === null ? 1 : 0);
      return problem;
    },
    stop: () => clearInterval(timer),
  };
}
