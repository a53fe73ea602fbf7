// `ee credits purchase | transfer | balance | history`: the USD-credit ledger from the command line.
// Amounts: --amount takes dollars as people type them ("$200", "12.50"); --micro-usd an integer. Both are
// checked with the control plane's own exact parser, so a typo is a usage error (exit 2) before any request.
// Every POST carries an Idempotency-Key (named on failure when the outcome is unknown); see mutations.ts.
import type { Command } from 'commander';
import { apiRequest, resolveConnection, type GlobalOptions } from '../client.js';
import { usageError } from '../errors.js';
import { AMOUNT, amountBody, amountOptions, idempotentPost, keyOrAdmin } from '../mutations.js';
import { BalanceSchema, HistoryPageSchema, PurchaseSchema, TransferSchema, type HistoryPage } from '@easyenclave/sdk';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { formatFields, formatTable, printResult } from '../output.js';

type AmountOptions = { amount?: string; microUsd?: string };
type PostOptions = GlobalOptions & AmountOptions & { idempotencyKey?: string; json?: boolean };

const amountField = (o: AmountOptions) => amountBody(o.amount, o.microUsd, AMOUNT);

/** The account an API key belongs to (the key names it: ee_{kind}_{id}_{secret}). */
function accountOfKey(key: string | undefined): string | undefined {
  const m = /^ee_(user|provider)_([0-9a-f]{20})_/.exec(key ?? '');
  return m ? `${m[1]}:${m[2]}` : undefined;
}

const ACCOUNT_RE = /^[A-Za-z0-9:_-]{1,160}$/;
function accountArg(value: string | undefined, o: GlobalOptions, what: string): string {
  const account = value ?? accountOfKey(resolveConnection(o).api_key);
  if (account === undefined)
    throw usageError(`name the ${what} account, or set EE_API_KEY / --api-key so it defaults to that key's account`);
  if (!ACCOUNT_RE.test(account))
    throw usageError(`"${account.slice(0, 80)}" is not an account id (like user:0123456789abcdef0123)`);
  return account;
}

export function registerCredits(program: Command): void {
  const credits = program.command('credits').description('USD credits: purchase (admin), transfer, balance, history');

  const purchase = amountOptions(
    credits
      .command('purchase')
      .description('mint credits to an account after a payment (admin)')
      .requiredOption('--account <account>', 'the account to credit (user:… or provider:…)')
      .requiredOption('--payment-ref <ref>', 'the external payment id; one payment mints at most once'),
  );
  addJsonOption(addConnectionOptions(purchase));
  addExamples(purchase, [
    "ee credits purchase --account user:0123456789abcdef0123 --amount '$200' --payment-ref stripe_pi_123",
  ]);
  purchase.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<PostOptions & { account: string; paymentRef: string }>(cmd);
    const body = { account: accountArg(o.account, o, 'purchase'), payment_ref: o.paymentRef, ...amountField(o) };
    const r = await idempotentPost(o.idempotencyKey, (key) =>
      apiRequest(
        {
          method: 'POST',
          path: '/v1/credits/purchase',
          auth: 'admin',
          body,
          idempotencyKey: key,
          schema: PurchaseSchema,
        },
        o,
      ),
    );
    printResult(r, {
      json: o.json,
      table: (d) =>
        formatFields([
          // The same payment_ref mints once: a repeat is answered with the first purchase, nothing new minted.
          d.replayed === true
            ? ['Not minted', `${d.amount_usd} — a replay: payment ${d.payment_ref} had already minted it`]
            : ['Minted', d.amount_usd],
          ['Account', d.account],
          ['Payment', d.payment_ref],
          ['Transfer', d.transfer_id],
          ['Available', d.balance.available_usd],
        ]),
    });
  });

  const transfer = amountOptions(
    credits
      .command('transfer')
      .description("move credits to another account (from your API key's account)")
      .requiredOption('--to <account>', 'the receiving account')
      .option('--from <account>', "the paying account (default: the API key's; required with the admin token)")
      .option('--memo <text>', 'a note kept with the transfer (at most 256 characters)'),
  );
  addJsonOption(addConnectionOptions(transfer));
  addExamples(transfer, [
    "EE_API_KEY=ee_user_… ee credits transfer --to user:0123456789abcdef0123 --amount '$12.50' --memo lunch",
  ]);
  transfer.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<PostOptions & { to: string; from?: string; memo?: string }>(cmd);
    const body = {
      to: accountArg(o.to, o, 'receiving'),
      ...(o.from !== undefined ? { from: accountArg(o.from, o, 'paying') } : {}),
      ...(o.memo !== undefined ? { memo: o.memo } : {}),
      ...amountField(o),
    };
    const r = await idempotentPost(o.idempotencyKey, (key) =>
      apiRequest(
        {
          method: 'POST',
          path: '/v1/credits/transfer',
          auth: keyOrAdmin(o),
          body,
          idempotencyKey: key,
          schema: TransferSchema,
        },
        o,
      ),
    );
    printResult(r, {
      json: o.json,
      table: (d) =>
        formatFields([
          d.replayed === true
            ? ['Not sent', `${d.amount_usd} — a replay: this transfer was applied before`]
            : ['Sent', d.amount_usd],
          ['From', d.from],
          ['To', d.to],
          ['Memo', d.memo],
          ['Transfer', d.transfer_id],
          ['Available', d.balance?.available_usd],
        ]),
    });
  });

  const balance = credits
    .command('balance')
    .description('available, locked and total credits of an account')
    .argument('[account]', "default: the API key's account");
  addJsonOption(addConnectionOptions(balance));
  addExamples(balance, [
    'EE_API_KEY=ee_user_… ee credits balance',
    'ee credits balance user:0123456789abcdef0123 --json',
  ]);
  balance.action(async (account: string | undefined, _o: unknown, cmd: Command) => {
    const o = optsOf<GlobalOptions & { json?: boolean }>(cmd);
    const id = accountArg(account, o, 'balance');
    const b = await apiRequest(
      { path: `/v1/balances/${encodeURIComponent(id)}`, auth: keyOrAdmin(o), schema: BalanceSchema },
      o,
    );
    printResult(b, {
      json: o.json,
      table: (d) =>
        formatFields([
          ['Account', d.account],
          ['Available', d.available_usd],
          ['Locked', d.locked_usd],
          ['Total', d.total_usd],
        ]),
    });
  });

  const history = credits
    .command('history')
    .description('transfers in and out of an account, newest first')
    .argument('[account]', "default: the API key's account")
    .option('--limit <n>', 'entries per page (1-500)', '50')
    .option('--cursor <cursor>', "continue from a previous page's next_cursor")
    .option('--all', 'follow every page (careful with long histories)');
  addJsonOption(addConnectionOptions(history));
  addExamples(history, ['ee credits history --limit 20', 'ee credits history user:0123456789abcdef0123 --all --json']);
  history.action(async (account: string | undefined, _o: unknown, cmd: Command) => {
    const o = optsOf<GlobalOptions & { json?: boolean; limit: string; cursor?: string; all?: boolean }>(cmd);
    const id = accountArg(account, o, 'history');
    if (!/^\d{1,3}$/.test(o.limit) || Number(o.limit) < 1 || Number(o.limit) > 500)
      throw usageError('--limit must be an integer from 1 to 500');
    const auth = keyOrAdmin(o);
    const pages: HistoryPage[] = [];
    let cursor = o.cursor;
    do {
      const page = await apiRequest(
        {
          path: `/v1/accounts/${encodeURIComponent(id)}/transfers`,
          query: { limit: o.limit, cursor },
          auth,
          schema: HistoryPageSchema,
        },
        o,
      );
      pages.push(page);
      cursor = page.next_cursor ?? undefined;
    } while (o.all && cursor !== undefined);
    const merged: HistoryPage = {
      account: id,
      transfers: pages.flatMap((p) => p.transfers),
      next_cursor: pages[pages.length - 1]!.next_cursor,
    };
    printResult(merged, {
      json: o.json,
      table: (d) =>
        formatTable(
          d.transfers,
          [
            { header: 'when', value: (t) => t.timestamp },
            { header: 'type', value: (t) => t.type },
            { header: 'dir', value: (t) => t.direction },
            { header: 'amount', value: (t) => t.amount_usd, align: 'right' },
            { header: 'counterparty', value: (t) => (t.direction === 'out' ? t.to : t.from) },
            { header: 'memo / ref', value: (t) => t.memo ?? t.reference },
            { header: 'id', value: (t) => t.transfer_id },
          ],
          '(no transfers)',
        ) + (d.next_cursor ? `\nmore: --cursor ${d.next_cursor}` : ''),
    });
  });
}
