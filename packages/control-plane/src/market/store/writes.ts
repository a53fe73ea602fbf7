// Writes of the market's API rows, each run inside a ledger transaction (a LedgerOp's `writes.after`), so
// the row commits together with the request's idempotency record — or, for cancel, on its own.
import type { Db as MarketDb, Tx } from '../../store/database.js';
import type { MarketAbuseReportsTable, MarketNodesTable, MarketUsageReportsTable } from './schema.js';

export async function insertNode(tx: Tx, row: MarketNodesTable): Promise<void> {
  await tx.insertInto('market_nodes').values(row).execute();
}

/** Idempotent by id (derived from the Idempotency-Key). */
export async function insertUsageReport(tx: Tx, row: MarketUsageReportsTable): Promise<void> {
  await tx
    .insertInto('market_usage_reports')
    .values(row)
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

/** Idempotent by id (derived from the Idempotency-Key). */
export async function insertAbuseReport(tx: Tx, row: MarketAbuseReportsTable): Promise<void> {
  await tx
    .insertInto('market_abuse_reports')
    .values(row)
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

/** Authorises a filed report; an authorised one keeps its first authorisation time. */
export async function authorizeAbuseReport(tx: Tx, id: string, authorized_ms: number): Promise<void> {
  await tx
    .updateTable('market_abuse_reports')
    .set({ status: 'authorized', authorized_ms })
    .where('id', '=', id)
    .where('status', '=', 'filed')
    .execute();
}

/** Stops an active lease's renewals (`DELETE /v1/leases/{id}`); an ended lease is left as it is. */
export async function cancelLease(db: MarketDb, id: string, now_ms: number): Promise<void> {
  await db
    .updateTable('market_leases')
    .set({ status: 'ended', end_reason: 'cancelled', ended_ms: now_ms })
    .where('id', '=', id)
    .where('status', '=', 'active')
    .execute();
}
