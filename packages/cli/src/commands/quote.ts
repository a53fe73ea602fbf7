// `ee quote verify`: the command's flags and help. The implementation (quote-verify.ts) and the attestation
// package it needs are loaded only when it runs, so other commands start fast.
import { Option, type Command } from 'commander';
import type { VerifyOptions } from '../quote-verify.js';

export function registerQuote(program: Command): void {
  const quote = program.command('quote').description('work with TDX quotes offline');
  quote
    .command('verify')
    .description(
      'verify a TDX quote offline against a collateral file (Intel root), optionally with an attestation policy',
    )
    .argument('<quote-file>', 'the quote: raw binary, hex (0x optional, whitespace allowed) or base64')
    .requiredOption('--collateral <file>', 'collateral JSON (dcap-qvl getCollateral shape)')
    .option('--at <unix-seconds>', 'verification time (default: now)')
    .option(
      '--policy <file>',
      'attestation policy JSON: its TCB rules apply, and the quote must match its measurement allowlist',
    )
    .option(
      '--repo <owner/name>',
      'with --policy: the release the quote claims to be (default: any release whose MRTD matches)',
    )
    .option('--release-tag <tag>', 'with --policy and --repo: the release tag')
    .option('--network <name>', 'with --policy: the network to check the policy for', 'forge-1')
    .option('--json', 'print one JSON object instead of the table')
    .addOption(
      new Option(
        '--root-ca <der-or-pem-file>',
        "TESTING ONLY: verify against this root CA instead of Intel's (prints a loud warning)",
      ),
    )
    .addHelpText(
      'after',
      '\nExit codes: 0 the quote verifies (and the policy allows it); 1 it does not, with the reasons; 2 usage errors.',
    )
    .action(async (file: string, o: VerifyOptions) => (await import('../quote-verify.js')).verifyCommand(file, o));
}
