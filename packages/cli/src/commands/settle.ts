// `ee settlements finalize <period>` (`ee settle <period>` for short) and `ee settlements show <period>`
// (admin): settle every locked lease-period of an ended period now instead of waiting for the scheduler
// (EE_SETTLEMENT_DELAY after the period ends), and see the outcome. Finalizing twice changes nothing: the second
// run reports each lease-period as already finalized.
import type { Command } from 'commander';
import { apiRequest, type GlobalOptions } from '../client.js';
import { periodArg } from '../market-args.js';
import { FinalizeSchema, SettlementSchema, type Finalized, type Settlement } from '@easyenclave/sdk';
import { addIdempotencyOption, idempotentPost } from '../mutations.js';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { formatFields, formatTable, printResult, section } from '../output.js';
import { PERIOD_COLUMNS } from './leases.js';

type ReadOptions = GlobalOptions & { json?: boolean };
type PostOptions = ReadOptions & { idempotencyKey?: string };

const PERIOD_HELP = "the period's start in ISO-8601 (2026-11-22T03:00:00.000Z) or its index";

const finalizeTable = (d: Finalized): string =>
  formatFields([
    ['Period', d.period],
    ['Lease-periods', d.lease_periods],
    ['Posted', d.posted],
    ['Voided', d.voided],
    ['Expired', d.expired],
    ['Already finalized', d.already_finalized],
  ]) +
  (d.results.length === 0
    ? ''
    : section(
        'Results',
        formatTable(d.results, [
          { header: 'lease', value: (r) => r.lease_id },
          { header: 'status', value: (r) => r.status },
          { header: 'already', value: (r) => r.already },
          { header: 'reasons', value: (r) => r.reasons.join(', ') },
        ]),
      ));

const settlementTable = (d: Settlement): string =>
  `Period ${d.period} (index ${d.period_index})\n` +
  formatTable(
    d.lease_periods,
    [
      { header: 'lease', value: (p) => p.lease_id },
      { header: 'node', value: (p) => p.node_id },
      { header: 'user', value: (p) => p.user },
      ...PERIOD_COLUMNS.filter((c) => c.header !== 'period'),
    ],
    '(no lease-periods)',
  );

/** The finalize command, under `settlements` and as the top-level `settle`: one definition, two names. */
function finalizeCommand(cmd: Command, name: string): void {
  cmd
    .description('finalize an ended period now: post or refund every locked lease-period (admin)')
    .argument('<period>', PERIOD_HELP);
  addJsonOption(addConnectionOptions(addIdempotencyOption(cmd)));
  addExamples(cmd, [
    `EE_ADMIN_TOKEN=$(cat .easyenclave/admin-token) ee ${name} 2026-11-22T03:00:00.000Z`,
    `ee ${name} 2026-11-22T03:00:00Z --json`,
  ]);
  cmd.action(async (period: string, _o: unknown, c: Command) => {
    const o = optsOf<PostOptions>(c);
    const path = `/v1/settlements/${encodeURIComponent(periodArg(period))}/finalize`;
    const r = await idempotentPost(o.idempotencyKey, (key) =>
      apiRequest({ method: 'POST', path, auth: 'admin', idempotencyKey: key, schema: FinalizeSchema }, o),
    );
    printResult(r, { json: o.json, table: finalizeTable });
  });
}

export function registerSettle(program: Command): void {
  const settlements = program.command('settlements').description('settlement of lease-periods: finalize, show (admin)');
  finalizeCommand(settlements.command('finalize'), 'settlements finalize');

  const show = settlements
    .command('show')
    .description('every lease-period of a period: amount, outcome and the reasons a period failed (admin)')
    .argument('<period>', PERIOD_HELP);
  addJsonOption(addConnectionOptions(show));
  addExamples(show, [
    'ee settlements show 2026-11-22T03:00:00.000Z',
    'ee settlements show 2026-11-22T03:00:00Z --json',
  ]);
  show.action(async (period: string, _o: unknown, c: Command) => {
    const o = optsOf<ReadOptions>(c);
    const r = await apiRequest(
      { path: `/v1/settlements/${encodeURIComponent(periodArg(period))}`, auth: 'admin', schema: SettlementSchema },
      o,
    );
    printResult(r, { json: o.json, table: settlementTable });
  });

  finalizeCommand(program.command('settle'), 'settle');
}
