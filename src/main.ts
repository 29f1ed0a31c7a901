/**
 * The command line: `kube-crl-proxy [flags]` runs the proxy; subcommands run the demo, the
 * inspection tools and the CRL tool. Configuration errors are listed at once, one line each
 * naming the flag, exit 2.
 */
import yargs, { type Argv, type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { checkCertCommand } from './cli/check-cert-command.js';
import { checkConfigCommand } from './cli/check-config-command.js';
import { crlCommand } from './cli/crl-command.js';
import { demoCommand } from './cli/demo-command.js';
import { fail, failWith } from './cli/exit.js';
import { inspectCrlCommand } from './cli/inspect-crl-command.js';
import { runCommand } from './cli/run-command.js';
import { ConfigError, ConfigErrors } from './errors.js';
import { VERSION } from './version.js';

/** Every command, in --help order. */
export const COMMANDS: readonly CommandModule[] = [
  runCommand,
  checkConfigCommand,
  demoCommand as unknown as CommandModule,
  checkCertCommand as unknown as CommandModule,
  inspectCrlCommand as unknown as CommandModule,
  crlCommand,
];

export function buildCli(argv: string[]): Argv {
  let cli = yargs(argv)
    .scriptName('kube-crl-proxy')
    .usage(
      '$0 [flags]\n\nTLS proxy in front of kube-apiserver that refuses revoked client certificates.',
    );
  for (const command of COMMANDS) cli = cli.command(command);
  return (
    cli
      .example(
        '$0 --config=/etc/kube-crl-proxy/config.yaml',
        'run with the settings of deploy/kube-crl-proxy.example.yaml (kubeadm paths)',
      )
      .example(
        '$0 --config=/etc/kube-crl-proxy/config.yaml --print-config',
        'show the effective configuration and exit',
      )
      .example(
        '$0 check-config --config=/etc/kube-crl-proxy/config.yaml',
        'load every input of that configuration once and list every problem, without listening',
      )
      .example(
        '$0 check-cert alice.crt --config=/etc/kube-crl-proxy/config.yaml',
        'would alice.crt be accepted by that configuration, and as whom?',
      )
      .example(
        '$0 inspect-crl /etc/kubernetes/pki/crl/ --client-ca-file=/etc/kubernetes/pki/ca.crt',
        'number, freshness and signature of every CRL in the directory',
      )
      .example(
        '$0 crl revoke alice.crt --ca-cert=/etc/kubernetes/pki/ca.crt --ca-key=/etc/kubernetes/pki/ca.key --crl=/etc/kubernetes/pki/crl/ca.crl',
        "revoke alice's certificate in the CRL the proxies read",
      )
      .example('$0 demo', 'a throwaway PKI, a fake apiserver and the proxy, to try it out')
      .epilogue(
        'Exit codes: 0 success; 1 the answer is no (check-cert: refused; inspect-crl: invalid signature); 2 bad configuration or input (crl revoke/renew: nothing written). Signals: SIGHUP reloads every input, SIGTERM drains and stops. Reference: docs/cli.md; setup on kubeadm: docs/kubeadm.md.',
      )
      // Flags as declared only, as kube-apiserver's flag parser takes them: no --clientCaFile.
      .parserConfiguration({ 'camel-case-expansion': false })
      .strict()
      .help()
      .alias('help', 'h')
      .version(VERSION)
      .wrap(Math.min(120, process.stdout.columns ?? 100))
      .fail((message, err) => {
        // The run command and check-config list their own problems; this is for the others.
        if (err instanceof ConfigErrors) failWith(err.errors);
        if (err instanceof ConfigError || err?.name === 'YError') fail(err.message);
        if (err) throw err;
        fail(message ?? 'invalid arguments');
      })
  );
}

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  await buildCli(argv).parseAsync();
}
