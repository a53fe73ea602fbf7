// `ee payouts list | show <payout>`: a provider's payouts (its API key) or every provider's (the admin token).
// `ee payouts create | confirm <payout> | cancel <payout>` (admin): a payout holds earnings pending until the
// operator confirms it (the money left) or cancels it (back to earnings). Each POST carries an Idempotency-Key.
import type { Command } from 'commander';
import { IDENTITY_ID_PATTERN } from '@easyenclave/control-plane';
import { PayoutPageSchema, PayoutSchema, type Payout } from '@easyenclave/sdk';
import { apiRequest, type GlobalOptions } from '../client.js';
import { usageError } from '../errors.js';
import { idArg, textArg } from '../market-args.js';
import { addIdempotencyOption, AMOUNT, amountBody, amountOptions, idempotentPost, keyOrAdmin } from '../mutations.js';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { formatFields, formatTable, printResult } from '../output.js';
import { addPageOptions, fetchPages, moreLine, type PageOptions } from '../pages.js';

type PostOptions = GlobalOptions & { idempotencyKey?: string; json?: boolean };
const payoutId = (id: string) => idArg(id, 'payout', 'po_0123456789abcdef');
/** The control plane's longest payout reference (MAX_REFERENCE_CHARS there). */
const MAX_REFERENCE_CHARS = 128;

const payoutFields = (p: Payout) =>
  formatFields([
    ['Payout', p.payout_id],
    ['Provider', p.provider],
    ['Amount', p.amount_usd],
    ['Status', p.status],
    ['Reference', p.reference],
    ['Created', p.created_at],
    ['Resolved', p.resolved_at],
  ]);

export function registerPayouts(program: Command): void {
  const payouts = program
    .command('payouts')
    .description("provider payouts: a provider's own (EE_API_KEY) or everyone's (admin)");

  const list = addPageOptions(payouts.command('list').description('payouts, newest first'));
  addExamples(list, ['EE_API_KEY=ee_provider_… ee payouts list', 'ee payouts list --all --json']);
  list.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<PageOptions>(cmd);
    const r = await fetchPages(
      o,
      { path: '/v1/payouts', auth: keyOrAdmin(o), schema: PayoutPageSchema },
      (p) => p.payouts,
    );
    printResult(
      { payouts: r.rows, next_cursor: r.next_cursor },
      {
        json: o.json,
        table: (d) =>
          formatTable(
            d.payouts,
            [
              { header: 'payout', value: (p) => p.payout_id },
              { header: 'provider', value: (p) => p.provider },
              { header: 'amount', value: (p) => p.amount_usd, align: 'right' },
              { header: 'status', value: (p) => p.status },
              { header: 'reference', value: (p) => p.reference },
              { header: 'created', value: (p) => p.created_at },
            ],
            '(no payouts)',
          ) + moreLine(d.next_cursor),
      },
    );
  });

  const show = payouts.command('show').description('one payout').argument('<payout>', 'the payout id (po_…)');
  addJsonOption(addConnectionOptions(show));
  addExamples(show, ['EE_API_KEY=ee_provider_… ee payouts show po_0123456789abcdef']);
  show.action(async (id: string, _o: unknown, cmd: Command) => {
    const o = optsOf<GlobalOptions & { json?: boolean }>(cmd);
    const path = `/v1/payouts/${payoutId(id)}`;
    printResult(await apiRequest({ path, auth: keyOrAdmin(o), schema: PayoutSchema }, o), {
      json: o.json,
      table: payoutFields,
    });
  });

  registerPayoutChanges(payouts);
}

function registerPayoutChanges(payouts: Command): void {
  const create = amountOptions(
    payouts
      .command('create')
      .description("start a payout of a provider's earnings (admin); they stay locked until confirm or cancel")
      .requiredOption('--provider <account>', 'the provider account (provider:…)')
      .option('--reference <ref>', "your payment system's id for the transfer (A-Z a-z 0-9 : _ . @ / -)"),
  );
  addJsonOption(addConnectionOptions(create));
  addExamples(create, [
    "ee payouts create --provider provider:0123456789abcdef0123 --amount '$120' --reference wire-2026-11",
  ]);
  create.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<PostOptions & { provider: string; amount?: string; microUsd?: string; reference?: string }>(cmd);
    if (!IDENTITY_ID_PATTERN.test(o.provider) || !o.provider.startsWith('provider:'))
      throw usageError('--provider must be a provider account id (like provider:0123456789abcdef0123)');
    if (o.reference !== undefined && !/^[A-Za-z0-9:_.@/-]+$/.test(o.reference))
      throw usageError('--reference may hold only A-Z a-z 0-9 : _ . @ / -');
    const body = {
      provider: o.provider,
      ...amountBody(o.amount, o.microUsd, AMOUNT),
      ...(o.reference !== undefined ? { reference: textArg(o.reference, '--reference', MAX_REFERENCE_CHARS) } : {}),
    };
    const r = await idempotentPost(o.idempotencyKey, (key) =>
      apiRequest(
        { method: 'POST', path: '/v1/payouts', auth: 'admin', body, idempotencyKey: key, schema: PayoutSchema },
        o,
      ),
    );
    printResult(r, { json: o.json, table: payoutFields });
  });

  for (const [verb, what] of [
    ['confirm', 'confirm a pending payout: the money left (admin)'],
    ['cancel', "cancel a pending payout: the amount goes back to the provider's earnings (admin)"],
  ] as const) {
    const resolve = addIdempotencyOption(
      payouts.command(verb).description(what).argument('<payout>', 'the payout id (po_…)'),
    );
    addJsonOption(addConnectionOptions(resolve));
    addExamples(resolve, [`ee payouts ${verb} po_0123456789abcdef`]);
    resolve.action(async (id: string, _o: unknown, cmd: Command) => {
      const o = optsOf<PostOptions>(cmd);
      const path = `/v1/payouts/${payoutId(id)}/${verb}`;
      const r = await idempotentPost(o.idempotencyKey, (key) =>
        apiRequest({ method: 'POST', path, auth: 'admin', idempotencyKey: key, schema: PayoutSchema }, o),
      );
      printResult(r, { json: o.json, table: payoutFields });
    });
  }
}
