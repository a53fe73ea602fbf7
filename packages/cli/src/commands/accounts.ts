// `ee accounts create`: a user or provider account and its API key (admin). The key is printed once, here:
// the control plane stores only its hash.
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { apiRequest, type GlobalOptions } from '../client.js';
import { usageError } from '../errors.js';
import { AccountPageSchema, AccountSchema } from '@easyenclave/sdk';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { formatFields, formatTable, printResult } from '../output.js';
import { addPageOptions, fetchPages, moreLine, type PageOptions } from '../pages.js';

type CreateOptions = GlobalOptions & { kind: string; name: string; idempotencyKey?: string; json?: boolean };

export function registerAccounts(program: Command): void {
  const accounts = program.command('accounts').description('user and provider accounts (admin)');
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
}
