#!/usr/bin/env node
// The `ee` command. Exit codes: 0 ok, 1 failure, 2 usage or configuration error.
import { Command, CommanderError } from 'commander';
import { registerControlPlane } from './commands/control-plane.js';
import { registerAgent } from './commands/agent.js';
import { registerQuote } from './commands/quote.js';
import { registerLedger } from './commands/ledger.js';

const program = new Command();
program
  .name('ee')
  .description('easyenclave: attested compute network — control plane, agent and tools')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError();
registerControlPlane(program);
registerAgent(program);
registerQuote(program);
registerLedger(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  process.stderr.write(`ee: ${(err as Error).message}\n`);
  process.exit(1);
}
