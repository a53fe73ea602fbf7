// `ee leases create | show <lease> | cancel <lease>`: a user's leases (docs/market.md). `create` is routed by
// the control plane to the cheapest eligible node serving the app and locks the first (prorated) period;
// `cancel` stops renewals, the period already locked still settles.
import type { Command } from 'commander';
import { APP_NAME_RE } from '@easyenclave/protocol';
import { IDENTITY_ID_PATTERN } from '@easyenclave/control-plane';
import { apiRequest, type GlobalOptions } from '../client.js';
import { usageError } from '../errors.js';
import { intArg, leaseId } from '../market-args.js';
import {
  CreatedLeaseSchema,
  LeasePageSchema,
  LeaseSchema,
  type CreatedLease,
  type Lease,
  type LeasePeriod,
} from '@easyenclave/sdk';
import { addIdempotencyOption, idempotentPost, keyOrAdmin } from '../mutations.js';
import { addPageOptions, fetchPages, moreLine, type PageOptions } from '../pages.js';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { formatFields, formatTable, printResult, section, type Cell, type Column } from '../output.js';

type ReadOptions = GlobalOptions & { json?: boolean };
type CreateOptions = ReadOptions & {
  app: string;
  vcpus: string;
  periods?: string;
  user?: string;
  idempotencyKey?: string;
};

/** Lease-period rows, shared with `ee settlements show`. */
export const PERIOD_COLUMNS: readonly Column<LeasePeriod>[] = [
  { header: 'period', value: (p) => p.period },
  { header: 'from', value: (p) => p.from },
  { header: 'to', value: (p) => p.to },
  { header: 'amount', value: (p) => p.amount_usd, align: 'right' },
  { header: 'status', value: (p) => p.status },
  { header: 'reasons', value: (p) => p.reasons.join(', ') },
];

/** The fields a new lease and a lease's detail both show. */
const leaseFields = (d: CreatedLease | Lease): [string, Cell][] => [
  ['Lease', d.lease_id],
  ['User', d.user],
  ['App', d.app],
  ['Node', d.node_id],
  ['vCPUs', d.vcpus],
  ['Price', `${d.price_per_vcpu_hour_usd} per vCPU-hour`],
];

const createdTable = (d: CreatedLease): string =>
  formatFields([
    ...leaseFields(d),
    ['Periods', d.periods ?? 'until cancelled or unfunded'],
    ['Status', d.status],
    ['Locked', `${d.lock.amount_usd} for ${d.lock.from} to ${d.lock.to}`],
  ]);

const leaseTable = (d: Lease): string =>
  formatFields([
    ...leaseFields(d),
    ['Periods', `${d.periods_locked} locked of ${d.periods ?? 'unlimited'}`],
    ['Status', d.end_reason ? `${d.status} (${d.end_reason})` : d.status],
    ['Created', d.created_at],
    ['Ended', d.ended_at],
    ['Locked', d.locked_usd],
    ['Paid', d.paid_usd],
    ['Refunded', d.refunded_usd],
  ]) + section('Periods', formatTable(d.lease_periods, PERIOD_COLUMNS, '(none)'));

export function registerLeases(program: Command): void {
  const leases = program.command('leases').description('leases: create, show, cancel (user key, or admin)');

  const create = leases
    .command('create')
    .description('lease vCPUs for an app on the cheapest eligible node; locks the first period')
    .requiredOption('--app <app>', "the app the lease pays for (its traffic goes to the lease's node)")
    .requiredOption('--vcpus <n>', 'vCPUs (1-4096)')
    .option('--periods <n>', 'periods to run, the prorated first one included (default: until cancelled or unfunded)')
    .option('--user <account>', 'with the admin token: the user account that pays');
  addJsonOption(addConnectionOptions(addIdempotencyOption(create)));
  addExamples(create, [
    'EE_API_KEY=ee_user_… ee leases create --app demo --vcpus 2',
    'EE_API_KEY=ee_user_… ee leases create --app demo --vcpus 2 --periods 24 --json',
  ]);
  create.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<CreateOptions>(cmd);
    if (!APP_NAME_RE.test(o.app))
      throw usageError('--app must be an app name (a DNS label: a-z, 0-9, inner hyphens, at most 63 characters)');
    if (o.user !== undefined && !(IDENTITY_ID_PATTERN.test(o.user) && o.user.startsWith('user:')))
      throw usageError('--user must be a user account id (like user:0123456789abcdef0123)');
    const body = {
      app: o.app,
      vcpus: intArg(o.vcpus, '--vcpus', 1, 4096),
      ...(o.periods !== undefined ? { periods: intArg(o.periods, '--periods', 1, 100_000) } : {}),
      ...(o.user !== undefined ? { user: o.user } : {}),
    };
    const r = await idempotentPost(o.idempotencyKey, (key) =>
      apiRequest(
        {
          method: 'POST',
          path: '/v1/leases',
          auth: keyOrAdmin(o),
          body,
          idempotencyKey: key,
          schema: CreatedLeaseSchema,
        },
        o,
      ),
    );
    printResult(r, { json: o.json, table: createdTable });
  });

  const show = leases
    .command('show')
    .description('one lease with every period: amount, status and the reasons a period failed')
    .argument('<lease>', 'the lease id (lease_…)');
  addJsonOption(addConnectionOptions(show));
  addExamples(show, [
    'EE_API_KEY=ee_user_… ee leases show lease_0123456789abcdef',
    'ee leases show lease_0123456789abcdef --json',
  ]);
  show.action(async (lease: string, _o: unknown, cmd: Command) => {
    const o = optsOf<ReadOptions>(cmd);
    printResult(
      await apiRequest({ path: `/v1/leases/${leaseId(lease)}`, auth: keyOrAdmin(o), schema: LeaseSchema }, o),
      { json: o.json, table: leaseTable },
    );
  });

  const list = addPageOptions(
    leases
      .command('list')
      .description('leases, newest first: your own (a provider: those on its nodes), or all (admin)'),
  );
  addExamples(list, ['EE_API_KEY=ee_user_… ee leases list', 'ee leases list --all --json']);
  list.action(async (_o: unknown, cmd: Command) => {
    const o = optsOf<PageOptions>(cmd);
    const r = await fetchPages(
      o,
      { path: '/v1/leases', auth: keyOrAdmin(o), schema: LeasePageSchema },
      (p) => p.leases,
    );
    printResult(
      { leases: r.rows, next_cursor: r.next_cursor },
      {
        json: o.json,
        table: (d) =>
          formatTable(
            d.leases,
            [
              { header: 'lease', value: (l) => l.lease_id },
              { header: 'status', value: (l) => l.status },
              { header: 'app', value: (l) => l.app },
              { header: 'node', value: (l) => l.node_id },
              { header: 'vcpus', value: (l) => l.vcpus, align: 'right' },
              { header: 'price/vcpu-h', value: (l) => l.price_per_vcpu_hour_usd, align: 'right' },
              { header: 'periods', value: (l) => `${l.periods_locked}/${l.periods ?? '∞'}` },
              { header: 'created', value: (l) => l.created_at },
            ],
            '(no leases)',
          ) + moreLine(d.next_cursor),
      },
    );
  });

  // DELETE is idempotent by itself (an ended lease stays ended), so no Idempotency-Key is needed.
  const cancel = leases
    .command('cancel')
    .description('stop renewals; the period already locked settles as usual')
    .argument('<lease>', 'the lease id (lease_…)');
  addJsonOption(addConnectionOptions(cancel));
  addExamples(cancel, ['EE_API_KEY=ee_user_… ee leases cancel lease_0123456789abcdef']);
  cancel.action(async (lease: string, _o: unknown, cmd: Command) => {
    const o = optsOf<ReadOptions>(cmd);
    printResult(
      await apiRequest(
        { method: 'DELETE', path: `/v1/leases/${leaseId(lease)}`, auth: keyOrAdmin(o), schema: LeaseSchema },
        o,
      ),
      { json: o.json, table: leaseTable },
    );
  });
}
