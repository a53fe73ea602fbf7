// `ee payouts list | show <payout>`: a provider's payouts (its API key) or every provider's (the admin token).
// A payout holds earnings pending until the operator confirms it (paid out) or cancels it (back to earnings).
import type { Command } from 'commander';
import { PayoutPageSchema, PayoutSchema, type Payout } from '@easyenclave/sdk';
import { apiRequest, type GlobalOptions } from '../client.js';
import { idArg } from '../market-args.js';
import { keyOrAdmin } from '../mutations.js';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { formatFields, formatTable, printResult } from '../output.js';
import { addPageOptions, fetchPages, moreLine, type PageOptions } from '../pages.js';

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

  const show = payouts.command('show').description('one payout').argument('<payout>', 'the payout id (payout_…)');
  addJsonOption(addConnectionOptions(show));
  addExamples(show, ['EE_API_KEY=ee_provider_… ee payouts show payout_0123456789abcdef']);
  show.action(async (id: string, _o: unknown, cmd: Command) => {
    const o = optsOf<GlobalOptions & { json?: boolean }>(cmd);
    const path = `/v1/payouts/${idArg(id, 'payout', 'payout_0123456789abcdef')}`;
    printResult(await apiRequest({ path, auth: keyOrAdmin(o), schema: PayoutSchema }, o), {
      json: o.json,
      table: payoutFields,
    });
  });
}
