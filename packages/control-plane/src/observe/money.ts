// One structured log line and the matching metrics for every money movement: each journal entry the ledger
// commits (mint, transfer, lock, settle, refund, expire, stake, unstake, slash, payout_lock, payout,
// payout_cancel), with its ids and amount and the id of the request that caused it — never a key or a token
// (a journal entry holds none). Written after COMMIT, so a line means the money moved.
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { PLATFORM_ISSUANCE, PLATFORM_PAYOUTS, PLATFORM_SLASH_POOL } from '../ledger/chart.js';
import type { JournalEntry } from '../ledger/types.js';
import type { CommittedMovement } from '../ledger-store/ledger-store.js';
import type { ControlPlaneMetrics } from '../metrics.js';

type CounterSeries = ReturnType<Counter['labels']>;

export type MovementKind =
  | 'mint'
  | 'transfer'
  | 'lock'
  | 'settle'
  | 'refund'
  | 'expire'
  | 'stake'
  | 'unstake'
  | 'slash'
  | 'payout_lock'
  | 'payout'
  | 'payout_cancel';

const isStake = (account: string) => account.startsWith('provider:') && account.endsWith(':stake');
const isEarnings = (account: string) => account.startsWith('provider:') && account.endsWith(':earnings');

/** What a journal entry is, from its accounts (the chart of accounts) and its flags. */
export function movementKind(e: JournalEntry): MovementKind {
  if (e.kind === 'expiry') return 'expire';
  const t = e.transfer;
  const payout = t.credit_account === PLATFORM_PAYOUTS;
  if (t.flags.pending) return payout ? 'payout_lock' : 'lock';
  if (t.flags.post_pending) return payout ? 'payout' : 'settle';
  if (t.flags.void_pending) return payout ? 'payout_cancel' : 'refund';
  if (t.debit_account === PLATFORM_ISSUANCE) return 'mint';
  if (t.credit_account === PLATFORM_SLASH_POOL) return 'slash';
  if (isEarnings(t.debit_account) && isStake(t.credit_account)) return 'stake';
  if (isStake(t.debit_account) && isEarnings(t.credit_account)) return 'unstake';
  return 'transfer';
}

/** Settlement outcome of a resolved lease-period lock (`lock:{lease}:{period}`), if the entry is one. */
function settlementOutcome(e: JournalEntry, kind: MovementKind): 'posted' | 'voided' | 'expired' | undefined {
  const lock = e.kind === 'expiry' ? e.pending_id : e.transfer.pending_id;
  if (lock === undefined || !lock.startsWith('lock:')) return undefined;
  return kind === 'settle' ? 'posted' : kind === 'refund' ? 'voided' : kind === 'expire' ? 'expired' : undefined;
}

function fields(e: JournalEntry): Record<string, string | number | undefined> {
  if (e.kind === 'expiry')
    return {
      pending_id: e.pending_id,
      debit_account: e.debit_account,
      credit_account: e.credit_account,
      amount_micro_usd: Number(e.amount),
    };
  const t = e.transfer;
  return {
    transfer_id: t.id,
    pending_id: t.pending_id,
    debit_account: t.debit_account,
    credit_account: t.credit_account,
    amount_micro_usd: Number(t.amount),
    reference: t.reference,
    memo: t.memo,
  };
}

/** Logs and counts every committed movement (a LedgerStore.onCommitted observer). */
export function moneyObserver(
  log: Logger,
  metrics: ControlPlaneMetrics,
): (movements: readonly CommittedMovement[]) => void {
  // Each kind's two counter series, bound once (`labels()` builds and checks a label object on every call).
  const series = new Map<MovementKind, { movements: CounterSeries; moved: CounterSeries }>();
  const seriesOf = (kind: MovementKind) => {
    let s = series.get(kind);
    if (s === undefined)
      series.set(
        kind,
        (s = { movements: metrics.ledger_movements.labels(kind), moved: metrics.ledger_moved.labels(kind) }),
      );
    return s;
  };
  return (movements) => {
    // Checked once per commit: at warn level (benchmarks, quiet deployments) no line is even built.
    const logging = log.isLevelEnabled('info');
    for (const { entry, request_id } of movements) {
      const kind = movementKind(entry);
      const amount = entry.kind === 'expiry' ? entry.amount : entry.transfer.amount;
      if (logging) log.info({ event: 'money', kind, ...fields(entry), request_id }, `money: ${kind}`);
      const s = seriesOf(kind);
      s.movements.inc();
      s.moved.inc(Number(amount));
      const outcome = settlementOutcome(entry, kind);
      if (outcome !== undefined) metrics.settlements.labels(outcome).inc();
    }
  };
}
