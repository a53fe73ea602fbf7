// Claiming usage receipts from a reservation's escrow (docs/confidential.md, Money flow): one ledger operation per
// reservation and batch. The batch's accepted receipts post exactly the sum of their amounts from the current
// lock and lock the rest again (one linked chain), and their rows are stored in the same transaction; the
// shared pieces (the reservation row and its lock) are in ops-reservation.ts.
import type { UsageReceipt } from '@easyenclave/protocol/receipt';
import { providerEarnings } from '../ledger/chart.js';
import { createTransfers } from '../ledger/engine.js';
import type { TransferInput } from '../ledger/types.js';
import type { LedgerOp } from '../ledger-store/batch.js';
import type { MarketTiming } from './ops.js';
import { close, lockHeld, lockReservation, ok, pendingLock, stateOf, type ReservationRow } from './ops-reservation.js';
import { periodIndex } from './period.js';
import {
  judgeReceipt,
  remaining,
  reservationClaimId,
  reservationLockId,
  reservationRefundId,
  zeroToleranceReason,
  type AttestedKey,
  type NodeIncidents,
  type ReceiptRefusal,
} from './reservation.js';
import type { MarketReceiptsTable } from './store/reservation-schema.js';
import { nodeIncidents } from './store/reservations.js';

export interface VerifiedReceipt {
  receipt: UsageReceipt;
  /** The canonical JSON of the signed receipt, stored as received. */
  signed: string;
}

export type ReceiptOutcome = { ok: true; amount: number } | { ok: false; code: ReceiptRefusal };

/**
 * Claims receipts of ONE reservation (their signatures already checked): the accepted ones post exactly the
 * sum of their amounts from the lock and lock the rest again, and their rows are stored with the transfer,
 * atomically.
 * The caller runs at most one such operation per reservation at a time (the reservation row is the unit of
 * serialisation; on PostgreSQL it is also locked FOR UPDATE).
 */
export function claimReceiptsOp(
  id: string,
  receipts: readonly VerifiedReceipt[],
  t: MarketTiming,
): LedgerOp<ReceiptOutcome[]> {
  let row: ReservationRow | undefined;
  const keys = new Map<string, AttestedKey>();
  const seen = new Set<string>();
  let incidents: NodeIncidents | undefined;
  return {
    accounts: [],
    transfers: [],
    async prepare(anyTx, d) {
      const tx = anyTx;
      row = await lockReservation(tx, d, id);
      keys.clear();
      seen.clear();
      incidents = undefined;
      if (!row) return;
      const s = stateOf(row);
      const keyIds = [...new Set(receipts.map((r) => r.receipt.key))];
      if (keyIds.length > 0) {
        const rows = await tx.selectFrom('market_agent_keys').selectAll().where('receipt_key', 'in', keyIds).execute();
        for (const k of rows)
          keys.set(k.receipt_key, {
            key: k.receipt_key,
            agent_id: k.agent_id,
            node_id: k.node_id,
            first_attested_ms: Number(k.first_attested_ms),
          });
        const used = await tx
          .selectFrom('market_receipts')
          .select(['receipt_key', 'seq'])
          .where('receipt_key', 'in', keyIds)
          .where(
            'seq',
            'in',
            receipts.map((r) => r.receipt.seq),
          )
          .execute();
        for (const u of used) seen.add(`${u.receipt_key}:${Number(u.seq)}`);
      }
      if (s.status === 'open')
        incidents = await nodeIncidents(tx, s.node_id, s.created_ms, periodIndex(s.created_ms, t.period_ms));
      const transfers = [reservationRefundId(id, s.lock_seq)];
      for (let k = 0; k <= receipts.length; k++) {
        transfers.push(reservationLockId(id, s.lock_seq + k));
        transfers.push(reservationClaimId(id, s.lock_seq + k));
        transfers.push(reservationRefundId(id, s.lock_seq + k));
      }
      return { accounts: [s.user_id, providerEarnings(s.provider)], transfers };
    },
    apply(ctx) {
      const s = row ? stateOf(row) : undefined;
      const out: ReceiptOutcome[] = [];
      if (s && s.status === 'open' && incidents) {
        const reason = zeroToleranceReason(incidents);
        if (reason !== null) close(ctx, s, reason);
        else if (remaining(s) > 0 && !lockHeld(ctx, s)) close(ctx, s, 'lock_expired');
      }
      const stored: MarketReceiptsTable[] = [];
      const startSeq = s?.lock_seq ?? 0;
      // The batch's accepted amounts are judged one by one against what is left, then posted from the lock
      // as ONE claim (their exact sum) that locks the rest again: the journal grows by two transfers per
      // batch, not per receipt. A refused receipt adds nothing to the sum.
      let batch_amount = 0;
      let exhausted = false;
      for (const v of receipts) {
        const r = v.receipt;
        const tag = `${r.key}:${r.seq}`;
        const j = judgeReceipt(r, s, keys.get(r.key), seen.has(tag), ctx.now_ms);
        if (!j.ok) {
          out.push(j);
          continue;
        }
        const st = s!;
        st.claimed += j.amount;
        batch_amount += j.amount;
        seen.add(tag);
        stored.push({
          receipt_key: r.key,
          seq: r.seq,
          reservation_id: id,
          request_id: r.request_id,
          amount: j.amount,
          time_ms: r.time_ms,
          accepted_ms: ctx.now_ms,
          transfer_id: j.amount > 0 ? reservationClaimId(id, startSeq) : null,
          signed: v.signed,
        });
        out.push({ ok: true, amount: j.amount });
        if (remaining(st) === 0) {
          st.status = 'closed'; // exhausted: the receipts after this one are refused (reservation_closed)
          exhausted = true;
        }
      }
      if (s && batch_amount > 0) {
        const rest = remaining(s);
        const chain: TransferInput[] = [
          {
            id: reservationClaimId(id, startSeq),
            debit_account: s.user_id,
            credit_account: providerEarnings(s.provider),
            pending_id: reservationLockId(id, startSeq),
            amount: BigInt(batch_amount),
            flags: rest > 0 ? { post_pending: true, linked: true } : { post_pending: true },
            reference: `receipts:${stored.length}`,
          },
        ];
        if (rest > 0) chain.push(pendingLock(s, startSeq + 1, rest, ctx.now_ms, t));
        const results = createTransfers(ctx.state, chain, ctx.now_ms);
        // The lock is held (checked above) and covers the sum (each amount was judged against what was left).
        if (!results.every(ok)) throw new Error(`reservation ${id}: claim on lock ${startSeq} failed: ${results}`);
        s.lock_seq += rest > 0 ? 1 : 0;
      }
      if (exhausted) {
        const at = ctx.now_ms;
        ctx.writes.after.push(async (tx) => {
          await tx
            .updateTable('market_reservations')
            .set({ status: 'closed', end_reason: 'exhausted', closed_ms: at })
            .where('id', '=', id)
            .execute();
        });
      }
      if (s && stored.length > 0) {
        const claimed = s.claimed;
        const lock_seq = s.lock_seq;
        const n = stored.length;
        if (s.lock_seq < startSeq) throw new Error('reservation: lock sequence went backwards');
        if (claimed > s.quota) throw new Error(`reservation ${id}: claimed ${claimed} exceeds quota ${s.quota}`);
        ctx.writes.after.push(async (tx) => {
          await tx.insertInto('market_receipts').values(stored).execute();
          await tx
            .updateTable('market_reservations')
            .set((eb) => ({ claimed, lock_seq, receipts: eb('receipts', '+', n) }))
            .where('id', '=', id)
            .execute();
        });
      }
      return out;
    },
  };
}
