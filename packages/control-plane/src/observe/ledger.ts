// Ledger observation: a log line and counters per committed movement (money.ts), commit latency and size from
// the writer, and, read at scrape time from the database (so every replica reports the network's totals), the
// stake held by providers and what the slash pool has received.
import type { Logger } from 'pino';
import { PLATFORM_SLASH_POOL } from '../ledger/chart.js';
import type { LedgerStore } from '../ledger-store/ledger-store.js';
import type { ControlPlaneMetrics } from '../metrics.js';
import { moneyObserver } from './money.js';

export function observeLedger(ledger: LedgerStore, log: Logger, metrics: ControlPlaneMetrics): void {
  ledger.onCommitted(moneyObserver(log, metrics));
  ledger.writer.onCommit = (ops, duration_ms) => {
    metrics.ledger_operations.inc(ops);
    metrics.ledger_commit_duration.observe(duration_ms / 1000);
  };
  metrics.gauge('ee_ledger_queue_depth', 'Ledger operations waiting for the writer', function () {
    this.set(ledger.writer.queued);
  });
  metrics.gauge(
    'ee_stake_held_micro_usd',
    'Stake held by all providers (sum of provider stake accounts), micro-USD',
    async function () {
      const row = await ledger.db
        .selectFrom('ledger_accounts')
        .select((eb) =>
          eb.fn.sum<number | string | null>(eb('credits_posted', '-', eb.ref('debits_posted'))).as('held'),
        )
        .where('id', 'like', 'provider:%:stake')
        .executeTakeFirst();
      this.set(Number(row?.held ?? 0));
    },
  );
  metrics.gauge(
    'ee_slashed_micro_usd',
    'Stake slashed so far (everything the slash pool has received), micro-USD',
    async function () {
      const a = await ledger.account(PLATFORM_SLASH_POOL);
      this.set(Number(a?.credits_posted ?? 0n));
    },
  );
}
