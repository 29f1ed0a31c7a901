/**
 * exec, attach, port-forward and logs -f with the real kubectl through kube-crl-proxy, on both
 * transports, asserting the identity the fake saw on every upgrade.
 */
import { defineStreamingTests } from '../support/kubectl-streaming.js';

defineStreamingTests('proxy');
