#!/usr/bin/env node
// The `ee` command. Exit codes: 0 ok, 1 failure, 2 usage or configuration error (docs/cli.md).
import { Command, CommanderError } from 'commander';
import { loadCommands } from './commands.js';
import { CliError, collectSecrets, redact, sanitize, setSecrets } from './errors.js';

// Everything written to stderr by commander or by us passes through redact(): a secret given on the command
// line or in the environment never appears in an error, even one that echoes an argument.
setSecrets(collectSecrets(process.argv, process.env));

// A reader that stops early (`ee ledger verify | head -1`) closes the pipe: what is left to print has no
// reader, which is not a failure of the command. Exit quietly with the command's own code instead of crashing
// on the unhandled EPIPE; any other stdout error is reported.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  process.stderr.write(`ee: cannot write to stdout: ${err.message}\n`);
  process.exit(1);
});
const errLine = (message: string) => process.stderr.write(`ee: ${redact(sanitize(message))}\n`);

const program = new Command();
program
  .name('ee')
  .description('easyenclave: attested compute network — control plane, agent and tools')
  .version('0.1.0')
  .configureOutput({ writeErr: (s) => process.stderr.write(redact(s)) })
  .exitOverride()
  .showHelpAfterError();
for (const register of await loadCommands(process.argv[2])) register(program);
program.addHelpText(
  'after',
  [
    '',
    'Connection (health, apps, attestation, accounts, credits, market): --url / EE_CONTROL_URL (default: the network',
    '  `npm start` started, from .easyenclave/config.json here or above; else http://127.0.0.1:8088),',
    '  --admin-token / EE_ADMIN_TOKEN, --api-key / EE_API_KEY; flags win. Read commands take --json.',
    'Exit codes: 0 ok, 1 failure (server error, unreachable, a check failed), 2 usage (bad flags or arguments).',
    '',
    'Examples:',
    '  ee health',
    '  EE_ADMIN_TOKEN=$(cat .easyenclave/admin-token) ee apps list',
    '  ee apps resolve demo --json',
    "  ee policy init --from-app demo        # writes agent-attestation-allowlist.json from the agent's evidence",
    '  ee attestation verify --app demo --policy agent-attestation-allowlist.json',
    '  ee quote verify quote.bin --collateral collateral.json',
    "  EE_API_KEY=ee_user_… ee credits transfer --to user:… --amount '$12.50'",
    '  ee ledger verify --db .easyenclave/control-plane.db',
    "  EE_API_KEY=ee_provider_… ee nodes register --region eu-west --tier standard --vcpus 4 --price '$0.12'",
    '  EE_API_KEY=ee_user_… ee leases create --app demo --vcpus 2',
    '  ee settle 2026-11-22T03:00:00Z',
    '  ee <command> --help',
  ].join('\n'),
);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof CliError) {
    errLine(err.message);
    process.exit(err.exit_code);
  }
  errLine((err as Error).message);
  process.exit(1);
}
