// What every `ee` command that changes state shares: amounts checked with the control plane's own exact parser
// before any request (a typo is a usage error, exit 2), an Idempotency-Key on every POST (named on failure
// only when the outcome is unknown, so a retry cannot apply twice), and which credential a request uses.
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { AmountError, parseAmount } from '@easyenclave/control-plane';
import { resolveConnection, type GlobalOptions } from './client.js';
import { CliError, usageError } from './errors.js';

/** How one amount is spelt on the command line and in the request body. */
export interface AmountSpec {
  dollarsFlag: string;
  microFlag: string;
  dollarsField: string;
  microField: string;
  /** e.g. '"$200" or 12.50' */
  example: string;
}

export const AMOUNT: AmountSpec = {
  dollarsFlag: '--amount',
  microFlag: '--micro-usd',
  dollarsField: 'amount',
  microField: 'amount_micro_usd',
  example: '"$200" or 12.50',
};

/**
 * The body field(s) of an amount given as dollars or as integer micro-USD, validated exactly as the server
 * will. With `optional`, neither flag means an empty object (the server's default applies).
 */
export function amountBody(
  dollars: string | undefined,
  micro: string | undefined,
  spec: AmountSpec,
  optional = false,
): Record<string, string | bigint> {
  if (optional && dollars === undefined && micro === undefined) return {};
  if ((dollars === undefined) === (micro === undefined))
    throw usageError(
      `give exactly one of ${spec.dollarsFlag} (e.g. ${spec.example}) and ${spec.microFlag} (an integer)`,
    );
  try {
    if (dollars !== undefined) {
      parseAmount(dollars);
      return { [spec.dollarsField]: dollars };
    }
    if (!/^\d{1,16}$/.test(micro!))
      throw usageError(`${spec.microFlag} must be a positive integer, got ${JSON.stringify(micro)}`);
    return { [spec.microField]: parseAmount(BigInt(micro!)) };
  } catch (err) {
    if (err instanceof AmountError)
      throw usageError(`${dollars !== undefined ? spec.dollarsFlag : spec.microFlag}: ${err.message}`);
    throw err;
  }
}

/** --idempotency-key for a command that POSTs. */
export function addIdempotencyOption(cmd: Command): Command {
  return cmd.option('--idempotency-key <key>', 'reuse to retry safely after an error (default: a fresh one)');
}

/** --amount / --micro-usd (read with amountBody and AMOUNT) and --idempotency-key, for a command that POSTs money. */
export const amountOptions = (cmd: Command): Command =>
  addIdempotencyOption(
    cmd
      .option('--amount <dollars>', 'dollars, exactly: "$200", 200, 12.50 (at most 6 decimals)')
      .option('--micro-usd <n>', 'an integer amount in micro-USD (1 USD = 1000000)'),
  );

/** Failures after which the request may or may not have been applied: retrying with the same key is safe. */
const RETRYABLE_CODES = new Set(['unreachable', 'timeout', 'bad_response', 'internal', 'busy', 'shutting_down']);

/**
 * Runs a POST with `key` (a fresh one when not given); when its outcome is unknown the error names the key to
 * retry with. A definite refusal (4xx) does not: nothing happened, so there is nothing to retry safely.
 */
export async function idempotentPost<T>(key: string | undefined, run: (key: string) => Promise<T>): Promise<T> {
  const k = key ?? randomUUID();
  try {
    return await run(k);
  } catch (err) {
    if (err instanceof CliError && RETRYABLE_CODES.has(err.code ?? ''))
      throw new CliError(
        `${err.message}\n(to retry safely, repeat the command with --idempotency-key ${k})`,
        1,
        err.code,
      );
    throw err;
  }
}

/** Routes open to an account and to the admin on its behalf: the API key when one is set, else the admin token. */
export function keyOrAdmin(o: GlobalOptions): 'api-key' | 'admin' {
  return resolveConnection(o).api_key !== undefined ? 'api-key' : 'admin';
}
