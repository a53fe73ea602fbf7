// The flags every command that talks to a control plane shares, so they are spelt and documented once.
import type { Command } from 'commander';
import { DEFAULT_CONTROL_URL, DEFAULT_TIMEOUT_MS } from './client.js';

/** --url, --admin-token, --api-key, --timeout-ms (see client.ts for how they resolve). */
export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option(
      '--url <url>',
      `control plane API base URL (env EE_CONTROL_URL; default: .easyenclave/config.json from npm start, else ${DEFAULT_CONTROL_URL})`,
    )
    .option(
      '--admin-token <token>',
      'admin bearer token (env EE_ADMIN_TOKEN; prefer the environment: flags show up in ps)',
    )
    .option('--api-key <key>', 'API key of a user (env EE_API_KEY)')
    .option('--timeout-ms <ms>', `per-request timeout in milliseconds (default ${DEFAULT_TIMEOUT_MS})`);
}

/** --launcher-token / --uptime-token: the market's service tokens, only on the commands that send them. */
export function addServiceTokenOption(cmd: Command, which: 'launcher' | 'uptime'): Command {
  return which === 'launcher'
    ? cmd.option(
        '--launcher-token <token>',
        "the launcher's service token (env EE_LAUNCHER_TOKEN; prefer the environment)",
      )
    : cmd.option(
        '--uptime-token <token>',
        "the uptime reporter's service token (env EE_UPTIME_TOKEN; prefer the environment)",
      );
}

/** --json for read commands. */
export function addJsonOption(cmd: Command): Command {
  return cmd.option('--json', 'print one JSON document on stdout instead of a table');
}

/** Examples at the end of a command's --help. */
export function addExamples(cmd: Command, examples: readonly string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}`);
}

/** A command's options, including those of its parents (the action's last argument is the command). */
export function optsOf<T>(cmd: Command): T {
  return cmd.optsWithGlobals() as T;
}
