// `ee attestation fetch | verify`: the commands' flags and help. The implementation (attestation-run.ts) and
// the attestation package it needs are loaded only when they run, so other commands start fast.
import { Option, type Command } from 'commander';
import type { FetchOptions, VerifyOptions } from '../attestation-run.js';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';

export function registerAttestation(program: Command): void {
  const att = program
    .command('attestation')
    .description('fetch and verify attestation evidence of the control plane or of an app');
  const appOption = () =>
    new Option(
      '--app <app>',
      "an app's agent (GET /v1/apps/<app>/attestation) instead of the control plane (GET /v1/attestation)",
    );
  const nonceOption = () =>
    new Option('--nonce <hex>', 'challenge nonce, 64 hex characters (default: 32 fresh random bytes)');

  const fetch = att
    .command('fetch')
    .description(
      'challenge the control plane (or an app) with a fresh nonce and print or save its evidence, unverified',
    )
    .addOption(appOption())
    .addOption(nonceOption())
    .option('--out <file>', 'also save the evidence as JSON (for ee attestation verify --evidence)');
  addJsonOption(addConnectionOptions(fetch));
  addExamples(fetch, [
    'ee attestation fetch --url http://127.0.0.1:8088',
    'ee attestation fetch --app demo --out demo-evidence.json',
    'ee attestation fetch --json | jq .measurements',
  ]);
  fetch.addHelpText(
    'after',
    '\nExit codes: 0 evidence fetched; 1 the server refused, could not be reached or answered another nonce; 2 usage errors.',
  );
  fetch.action(async (_o: unknown, cmd: Command) =>
    (await import('../attestation-run.js')).fetchCommand(optsOf<FetchOptions>(cmd)),
  );

  const verify = att
    .command('verify')
    .description(
      'challenge the control plane (or an app) with a fresh nonce and verify the evidence locally against a policy',
    )
    .addOption(appOption())
    .addOption(nonceOption())
    .option(
      '--evidence <file>',
      'verify a file saved by `ee attestation fetch --out` instead of fetching (nonce from the file unless --nonce)',
    )
    .requiredOption(
      '--policy <file>',
      'attestation policy JSON: the measurement allowlist (and TCB rules for TDX quotes)',
    )
    .option(
      '--collateral <file>',
      'DCAP collateral JSON for TDX quotes (default: fetched from --pccs-url / EE_PCCS_URL / Intel PCS)',
    )
    .option('--pccs-url <url>', 'PCCS to fetch collateral from for TDX quotes (default: EE_PCCS_URL, else Intel PCS)')
    .option(
      '--network <name>',
      "network to check the evidence for (default: the app's network; for the control plane sandbox-1 for sandbox evidence, else forge-1)",
    )
    .option('--require-tdx', 'refuse sandbox evidence even on an unsealed network')
    .addOption(
      new Option(
        '--root-ca <der-or-pem-file>',
        "TESTING ONLY: verify TDX quotes against this root CA instead of Intel's (prints a loud warning)",
      ),
    );
  addJsonOption(addConnectionOptions(verify));
  addExamples(verify, [
    'ee attestation verify --policy agent-attestation-allowlist.json',
    'ee attestation verify --app demo --policy policy.json --collateral collateral.json --json',
    'ee attestation verify --evidence demo-evidence.json --policy policy.json --require-tdx',
  ]);
  verify.addHelpText(
    'after',
    '\nChecks: nonce echoed, report_data = SHA-512("ee-tunnel-v1" | nonce | SHA-256(keyset)) inside the quote, the quote\n(DCAP chain and TCB for TDX; signature and declared measurements for sandbox), measurements in the policy allowlist.\nExit codes: 0 every check passed; 1 a check failed (reasons printed) or the server could not be reached; 2 usage errors.',
  );
  verify.action(async (_o: unknown, cmd: Command) =>
    (await import('../attestation-run.js')).verifyCommand(optsOf<VerifyOptions>(cmd)),
  );
}
