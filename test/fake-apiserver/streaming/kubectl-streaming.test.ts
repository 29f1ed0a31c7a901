/**
 * The real kubectl against the fake apiserver directly: proves the fake is faithful (the same
 * tests run through kube-crl-proxy in test/e2e/streaming.test.ts).
 */
import { defineStreamingTests } from '../../support/kubectl-streaming.js';

defineStreamingTests('direct');
