// Reservations as ledger operations (like ops.ts for leases; receipts in ops-receipts.ts): `prepare` reads and locks the reservation row
// (and the node rows at creation) inside the ledger's transaction, `apply` runs the pure core
// (reservation.ts) and the engine, and the rows are written by `writes.after` in the same transaction, so
// money, receipts and reservation state commit together or not at all. Transfer ids are deterministic
// (reservation id and lock sequence), so a retried operation finds its own transfers.
//
//   create   PENDING user → provider:P:earnings, quota                       rsv:{id}:0
//   receipt  post rsv:{id}:k for exactly the receipt's amount (the rest is released) ─┐ one linked chain
//            PENDING user → provider:P:earnings, the rest                   rsv:{id}:k+1 ┘
//   roll     void rsv:{id}:k ─┐ at a period boundary: the remainder goes back to the user and,
//            PENDING the rest ┘ while the reservation lasts, is locked again for the new period
//   close    void rsv:{id}:k (cancel, end of lifetime, zero tolerance)       rsvrefund:{id}:k
import type { UnitPrices } from '@easyenclave/protocol/receipt';
import { providerEarnings, providerStake } from '../ledger/chart.js';
import { createTransfers } from '../ledger/engine.js';
import { transferRefusal } from '../ledger/refusal.js';
import type { TransferInput, TransferResult } from '../ledger/types.js';
import type { ApplyContext, LedgerOp } from '../ledger-store/batch.js';
import type { StoreDialect } from '../store/migrations.js';
import { providerRequirements, stakeHeld, type MarketRefusal, type MarketTiming, type NodeRow } from './ops.js';
import { periodIndex } from './period.js';
import {
  lockDeadline,
  remaining,
  reservationLockId,
  reservationRefundId,
  type ReservationState,
} from './reservation.js';
import type { Tx } from '../store/database.js';
import type { MarketReservationsTable } from './store/reservation-schema.js';

export type ReservationRow = MarketReservationsTable;

const forUpdate = <Q extends { forUpdate(): Q }>(q: Q, d: StoreDialect): Q => (d === 'postgres' ? q.forUpdate() : q);

export function stateOf(r: ReservationRow): ReservationState {
  return {
    id: r.id,
    user_id: r.user_id,
    node_id: r.node_id,
    provider: r.provider,
    quota: Number(r.quota),
    claimed: Number(r.claimed),
    lock_seq: Number(r.lock_seq),
    lock_period: Number(r.lock_period),
    status: r.status,
    created_ms: Number(r.created_ms),
    expires_ms: Number(r.expires_ms),
    unit_prices: JSON.parse(r.unit_prices) as UnitPrices,
    token_sha256: r.token_sha256,
  };
}

export async function lockReservation(tx: Tx, d: StoreDialect, id: string): Promise<ReservationRow | undefined> {
  return forUpdate(tx.selectFrom('market_reservations').selectAll().where('id', '=', id), d).executeTakeFirst();
}

export function pendingLock(
  r: ReservationState,
  seq: number,
  amount: number,
  now_ms: number,
  t: MarketTiming,
): TransferInput {
  return {
    id: reservationLockId(r.id, seq),
    debit_account: r.user_id,
    credit_account: providerEarnings(r.provider),
    amount: BigInt(amount),
    flags: { pending: true },
    timeout_ms: Math.max(1, lockDeadline(r.expires_ms, now_ms, t.period_ms) - now_ms),
    reference: `reservation:${r.id}`,
  };
}

export const ok = (r: TransferResult | undefined) => r === 'ok' || r === 'exists';

/** Whether the reservation's current lock is still held (the ledger voids it by itself at its deadline). */
export const lockHeld = (ctx: ApplyContext, r: ReservationState): boolean =>
  ctx.state.pending.get(reservationLockId(r.id, r.lock_seq)) === 'pending';

/** Voids the current lock and marks the reservation closed (a lock the ledger already expired is as good). */
export function close(ctx: ApplyContext, r: ReservationState, reason: string): void {
  if (lockHeld(ctx, r)) voidLock(ctx, r);
  r.status = 'closed';
  const id = r.id;
  ctx.writes.after.push(async (tx) => {
    await tx
      .updateTable('market_reservations')
      .set({ status: 'closed', end_reason: reason, closed_ms: ctx.now_ms })
      .where('id', '=', id)
      .where('status', '=', 'open')
      .execute();
  });
}

function voidLock(ctx: ApplyContext, r: ReservationState): void {
  const [res] = createTransfers(
    ctx.state,
    [
      {
        id: reservationRefundId(r.id, r.lock_seq),
        debit_account: r.user_id,
        credit_account: providerEarnings(r.provider),
        pending_id: reservationLockId(r.id, r.lock_seq),
        flags: { void_pending: true },
      },
    ],
    ctx.now_ms,
  );
  // The lock was checked to be held just before, in the same working set: a void cannot fail.
  if (!ok(res)) throw new Error(`reservation ${r.id}: void of lock ${r.lock_seq} failed: ${res}`);
}

// ---------- Create ----------

export interface NewReservation {
  id: string;
  user_id: string;
  app_name: string;
  quota: number;
  expires_ms: number;
  /** SHA-256 (hex) of the bearer token handed to the user once. */
  token_sha256: string;
  /** Candidate nodes, best first, each with the agent the answer will name and the node's unit prices. */
  candidates: readonly { id: string; provider: string; agent_id: string; unit_prices: UnitPrices }[];
}

export type CreateReservationResult = { ok: true; row: ReservationRow } | MarketRefusal;

export function createReservationOp<T>(
  n: NewReservation,
  t: MarketTiming,
  liveEligible: (node_id: string) => boolean,
  then: (r: CreateReservationResult, ctx: ApplyContext) => T,
): LedgerOp<T> {
  let nodes = new Map<string, NodeRow>();
  let required = new Map<string, bigint>();
  let existing: ReservationRow | undefined;
  return {
    accounts: [n.user_id, ...n.candidates.flatMap((c) => [providerEarnings(c.provider), providerStake(c.provider)])],
    transfers: [reservationLockId(n.id, 0)],
    async prepare(anyTx, d) {
      const tx = anyTx;
      existing = await tx.selectFrom('market_reservations').selectAll().where('id', '=', n.id).executeTakeFirst();
      if (existing || n.candidates.length === 0) return;
      const ids = n.candidates.map((c) => c.id);
      const rows: NodeRow[] = await forUpdate(
        tx.selectFrom('market_nodes').selectAll().where('id', 'in', ids).orderBy('id'),
        d,
      ).execute();
      nodes = new Map(rows.map((r) => [r.id, r]));
      required = await providerRequirements(tx, [...new Set(rows.map((r) => r.provider))]);
    },
    apply(ctx) {
      if (existing) {
        const same = existing.user_id === n.user_id && existing.app_name === n.app_name && existing.quota === n.quota;
        return then(same ? { ok: true, row: existing } : { ok: false, code: 'reservation_conflict' }, ctx);
      }
      let last: CreateReservationResult = {
        ok: false,
        code: 'no_eligible_node',
        message: `no eligible node with unit prices serves "${n.app_name}"`,
      };
      for (const c of n.candidates) {
        const node = nodes.get(c.id);
        if (!node || node.status !== 'active' || !liveEligible(node.id)) continue;
        if (stakeHeld(ctx.state, node.provider) < (required.get(node.provider) ?? 0n)) continue;
        const row: ReservationRow = {
          id: n.id,
          user_id: n.user_id,
          app_name: n.app_name,
          node_id: node.id,
          provider: node.provider,
          agent_id: c.agent_id,
          token_sha256: n.token_sha256,
          unit_prices: JSON.stringify(c.unit_prices),
          quota: n.quota,
          claimed: 0,
          receipts: 0,
          lock_seq: 0,
          lock_period: periodIndex(ctx.now_ms, t.period_ms),
          status: 'open',
          end_reason: null,
          created_ms: ctx.now_ms,
          expires_ms: n.expires_ms,
          closed_ms: null,
        };
        const [r] = createTransfers(ctx.state, [pendingLock(stateOf(row), 0, n.quota, ctx.now_ms, t)], ctx.now_ms);
        if (r !== 'ok') {
          last = transferRefusal(r!);
          if (r === 'exceeds_credits') return then(last, ctx);
          continue;
        }
        ctx.writes.after.push(async (tx) => {
          await tx.insertInto('market_reservations').values(row).execute();
        });
        return then({ ok: true, row }, ctx);
      }
      return then(last, ctx);
    },
  };
}

// ---------- Close, roll ----------

/** What closing (or rolling, which also locks the next link) a locked reservation row touches in the ledger. */
function reservationNeeds(row: ReservationRow, rolls: boolean): { accounts: string[]; transfers: string[] } {
  const s = stateOf(row);
  const transfers = [reservationLockId(row.id, s.lock_seq), reservationRefundId(row.id, s.lock_seq)];
  if (rolls) transfers.push(reservationLockId(row.id, s.lock_seq + 1));
  return { accounts: [s.user_id, providerEarnings(s.provider)], transfers };
}

/** An operation on one reservation: prepare locks its row and declares what it touches (with the next lock when
 *  it `rolls`); `apply` gets the row (undefined when there is none). */
function reservationOp<T>(
  id: string,
  rolls: boolean,
  apply: (row: ReservationRow | undefined, ctx: ApplyContext) => T,
): LedgerOp<T> {
  let row: ReservationRow | undefined;
  return {
    accounts: [],
    transfers: [],
    async prepare(anyTx, d) {
      row = await lockReservation(anyTx, d, id);
      return row && reservationNeeds(row, rolls);
    },
    apply: (ctx) => apply(row, ctx),
  };
}

export type CloseResult = { outcome: 'closed' | 'already_closed' | 'unknown'; row?: ReservationRow };

/** Ends an open reservation and voids what is not claimed (cancel, end of lifetime, zero tolerance). */
export function closeReservationOp(id: string, reason: string): LedgerOp<CloseResult> {
  return reservationOp(id, false, (row, ctx): CloseResult => {
    if (!row) return { outcome: 'unknown' };
    if (row.status !== 'open') return { outcome: 'already_closed', row };
    close(ctx, stateOf(row), reason);
    return { outcome: 'closed', row };
  });
}

/**
 * At a period boundary: the current lock is voided (the remainder goes back to the user) and, while the
 * reservation lasts, the same remainder is locked again until the new period's end — one linked chain, so
 * nothing is claimable in between and no lock outlives its period plus the receipt grace.
 */
export function rollReservationOp(id: string, t: MarketTiming): LedgerOp<'rolled' | 'closed' | 'noop'> {
  return reservationOp(id, true, (row, ctx): 'rolled' | 'closed' | 'noop' => {
    if (!row || row.status !== 'open') return 'noop';
    const s = stateOf(row);
    const index = periodIndex(ctx.now_ms, t.period_ms);
    if (index <= s.lock_period) return 'noop';
    if (ctx.now_ms >= s.expires_ms || remaining(s) === 0) {
      close(ctx, s, ctx.now_ms >= s.expires_ms ? 'expired' : 'exhausted');
      return 'closed';
    }
    if (!lockHeld(ctx, s)) {
      // The ledger expired the lock at its deadline (no control plane rolled it in time): the rest is back.
      close(ctx, s, 'lock_expired');
      return 'closed';
    }
    const results = createTransfers(
      ctx.state,
      [
        {
          id: reservationRefundId(id, s.lock_seq),
          debit_account: s.user_id,
          credit_account: providerEarnings(s.provider),
          pending_id: reservationLockId(id, s.lock_seq),
          flags: { void_pending: true, linked: true },
        },
        pendingLock(s, s.lock_seq + 1, remaining(s), ctx.now_ms, t),
      ],
      ctx.now_ms,
    );
    if (!results.every(ok)) throw new Error(`reservation ${id}: roll of lock ${s.lock_seq} failed: ${results}`);
    const seq = s.lock_seq + 1;
    ctx.writes.after.push(async (tx) => {
      await tx
        .updateTable('market_reservations')
        .set({ lock_seq: seq, lock_period: index })
        .where('id', '=', id)
        .execute();
    });
    return 'rolled';
  });
}
