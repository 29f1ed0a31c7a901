/**
 * `kube-crl-proxy demo`: throwaway PKI + embedded fake apiserver + proxy + kubeconfigs.
 */
import type { CommandModule } from 'yargs';

export const demoCommand: CommandModule<object, { port: number }> = {
  command: 'demo',
  describe: 'throwaway PKI + embedded fake apiserver + proxy + kubeconfigs, for a first run',
  builder: (y) =>
    y.option('port', {
      type: 'number',
      default: 0,
      describe: 'client port of the proxy (0: any free port)',
    }),
  handler: async (args) => {
    // Loaded only here: the demo pulls in the fake apiserver and the PKI factory.
    const { runDemo } = await import('../demo/demo.js');
    await runDemo({ port: args.port });
  },
};
