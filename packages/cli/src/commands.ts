// Which command modules `ee` loads. A long-running role (the control plane, an agent, a node's launcher) loads
// only its own: the server's process then holds server code only, not the CLI's other commands nor the SDK
// client, schemas and sealing client they import, for its whole life. Any other invocation (a tool command,
// help, an unknown or misspelt name) loads them all, so help and suggestions stay complete.
import type { Command } from 'commander';

export type Register = (program: Command) => void;

/**
 * Every command module, in the order `ee --help` lists them. A role name marks a long-running role's module,
 * which registers exactly one top-level command of that name.
 */
const COMMANDS: readonly (readonly [role: string | null, load: () => Promise<Register>])[] = [
  ['control-plane', async () => (await import('./commands/control-plane.js')).registerControlPlane],
  ['agent', async () => (await import('./commands/agent.js')).registerAgent],
  ['node', async () => (await import('./commands/node.js')).registerNode],
  [null, async () => (await import('./commands/jobs.js')).registerJobs],
  [null, async () => (await import('./commands/deploy.js')).registerDeploy],
  [null, async () => (await import('./commands/quote.js')).registerQuote],
  [null, async () => (await import('./commands/health.js')).registerHealth],
  [null, async () => (await import('./commands/apps.js')).registerApps],
  [null, async () => (await import('./commands/attestation.js')).registerAttestation],
  [null, async () => (await import('./commands/accounts.js')).registerAccounts],
  [null, async () => (await import('./commands/credits.js')).registerCredits],
  [null, async () => (await import('./commands/ledger.js')).registerLedger],
  [null, async () => (await import('./commands/nodes.js')).registerNodes],
  [null, async () => (await import('./commands/leases.js')).registerLeases],
  [null, async () => (await import('./commands/settle.js')).registerSettle],
  [null, async () => (await import('./commands/abuse.js')).registerAbuse],
  [null, async () => (await import('./commands/payouts.js')).registerPayouts],
  [null, async () => (await import('./commands/policy.js')).registerPolicy],
  [null, async () => (await import('./commands/completion.js')).registerCompletion],
  [null, async () => (await import('./commands/receipts.js')).registerReceipts],
];

/** The registrations for an invocation whose first argument is `first` (a command name, an option, or none). */
export async function loadCommands(first: string | undefined): Promise<Register[]> {
  const role = COMMANDS.find(([name]) => name !== null && name === first);
  return role ? [await role[1]()] : Promise.all(COMMANDS.map(([, load]) => load()));
}
