// `ee accounts create`: a user or provider account and its API key (admin). The key is printed once, here:
// the control plane stores only its hash. `ee accounts keys rotate`: a new key for an account (its own key or
// the admin token), printed once; the older keys keep working for --grace.
import { randomUUID } from 'node:crypto';
import { IDENTITY_ID_PATTERN } from '@easyenclave/control-plane';
import type { Command } from 'commander';
import { apiRequest, type GlobalOptions } from '../client.js';
import { usageError } from '../errors.js';
import { AccountPageSchema, AccountSchema, RotatedKeySchema } from '@easyenclave/sdk';
import { durationArg } from '../market-args.js';
import { addIdempotencyOption, idempotentPost, keyOrAdmin } from '../mutations.js';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { formatFields, formatTable, printResult } from '../output.js';
import { addPageOptions, fetchPages, moreLine, type PageOptions } from '../pages.js';

type CreateOptions = GlobalOptions & { kind: string; name: string; idempotencyKey?: string; json?: boolean };

export function registerAccounts(program: Command): void {
  const accounts = program
    .command('accounts')
    .description('user and provider accounts (admin); API key rotation (the account itself, or admin)');
  const create = accounts
    .command('create')
    .description('create an account; prints its API key once')
    .requiredOption('--kind <kind>', 'user or provider')
    .requiredOption('--name <name>', 'a display name (1-128 characters)')
    .option('--idempotency-key <key>', 'reuse to retry safely after an error (default: a fresh one)');
  addJsonOption(addConnectionOptions(create));
  addExamples(create, [
    'ee accounts create --kind user --name "Alice"',
    'ee accounts create --kind provider --name "Acme GPUs" --json',
  ]);
  create.addHelpText(
    'after',
    '\nThe API key is shown only in this output. Store it now (e.g. as EE_API_KEY for that account).',
  );
  create.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<CreateOptions>(cmd);
    if (o.kind !== 'user' && o.kind !== 'provider') throw usageError('--kind must be user or provider');
    if (o.name.length < 1 || o.name.length > 128) throw usageError('--name must be 1 to 128 characters');
    const key = o.idempotencyKey ?? randomUUID();
    const created = await apiRequest(
      {
        method: 'POST',
        path: '/v1/accounts',
        auth: 'admin',
        body: { kind: o.kind, name: o.name },
        idempotencyKey: key,
        schema: AccountSchema,
      },
      o,
    );
    printResult(created, {
      json: o.json,
      table: (d) =>
        formatFields([
          ['Account', d.account_id],
          ['Kind', d.kind],
          ['Name', d.name],
          ['Ledger accounts', (d.ledger_accounts ?? []).join(', ')],
          ['API key', d.api_key ?? '(already shown when this request first ran; not stored)'],
        ]) + (d.api_key ? '\nStore the API key now: it is not shown again.' : ''),
    });
  });

  const list = addPageOptions(
    accounts
      .command('list')
      .description('user and provider accounts, newest first (admin); never their keys')
      .option('--kind <kind>', 'only user or provider accounts'),
  );
  addExamples(list, ['ee accounts list', 'ee accounts list --kind provider --all --json']);
  list.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<PageOptions & { kind?: string }>(cmd);
    if (o.kind !== undefined && o.kind !== 'user' && o.kind !== 'provider')
      throw usageError('--kind must be user or provider');
    const r = await fetchPages(
      o,
      { path: '/v1/accounts', auth: 'admin', schema: AccountPageSchema, query: { kind: o.kind } },
      (p) => p.accounts,
    );
    printResult(
      { accounts: r.rows, next_cursor: r.next_cursor },
      {
        json: o.json,
        table: (d) =>
          formatTable(
            d.accounts,
            [
              { header: 'account', value: (a) => a.account_id },
              { header: 'kind', value: (a) => a.kind },
              { header: 'name', value: (a) => a.name },
              { header: 'created', value: (a) => a.created_at },
            ],
            '(no accounts)',
          ) + moreLine(d.next_cursor),
      },
    );
  });

  registerKeys(accounts);
}

/** The longest --grace the control plane accepts (7 days; MAX_KEY_GRACE_MS there). */
const MAX_GRACE_MS = 7 * 24 * 3600 * 1000;

function registerKeys(accounts: Command): void {
  const keys = accounts.command('keys').description("an account's API keys");
  const rotate = addIdempotencyOption(
    keys
      .command('rotate')
      .description('issue a new API key for an account and print it once; the older keys end after --grace')
      .argument('<account>', 'the account id (user:… or provider:…)')
      .option('--grace <duration>', 'how long the older keys keep working: 0s (now) to 7d', '24h'),
  );
  addJsonOption(addConnectionOptions(rotate));
  addExamples(rotate, [
    'EE_API_KEY=ee_user_… ee accounts keys rotate user:0123456789abcdef0123 --grace 1h',
    'ee accounts keys rotate provider:0123456789abcdef0123 --grace 0s --json',
  ]);
  rotate.addHelpText(
    'after',
    "\nUses EE_API_KEY (the account's own key) when set, else the admin token. The new key is shown only here.",
  );
  rotate.action(async (account: string, _o: unknown, cmd: Command) => {
    const o = optsOf<GlobalOptions & { grace: string; idempotencyKey?: string; json?: boolean }>(cmd);
    if (!IDENTITY_ID_PATTERN.test(account))
      throw usageError(`${JSON.stringify(account.slice(0, 80))} is not an account id (like user:0123456789abcdef0123)`);
    const grace_ms = durationArg(o.grace, '--grace', MAX_GRACE_MS);
    const rotated = await idempotentPost(o.idempotencyKey, (key) =>
      apiRequest(
        {
          method: 'POST',
          path: `/v1/accounts/${encodeURIComponent(account)}/keys`,
          auth: keyOrAdmin(o),
          body: { grace_ms },
          idempotencyKey: key,
          schema: RotatedKeySchema,
        },
        o,
      ),
    );
    printResult(rotated, {
      json: o.json,
      table: (d) =>
        formatFields([
          ['Account', d.account_id],
          ['API key', d.api_key ?? '(already shown when this request first ran; not stored)'],
          ['Older keys end', d.previous_keys_expire_at],
        ]) + (d.api_key ? '\nStore the API key now: it is not shown again.' : ''),
    });
  });
}
