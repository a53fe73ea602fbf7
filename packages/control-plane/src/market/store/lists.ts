// Cursor-paged lists of the market's rows (GET /v1/leases, /v1/payouts, /v1/abuse/reports, /v1/nodes), newest
// first, keyset paged on (time, id) (store/paging.ts).
import type { Db as MarketDb } from '../../store/database.js';
import { keysetPage, type Page, type PageAfter } from '../../store/paging.js';
import type { MarketAbuseReportsTable, MarketLeasesTable, MarketNodesTable, MarketPayoutsTable } from './schema.js';

export { MAX_PAGE_ROWS, type Page, type PageAfter } from '../../store/paging.js';

/** Leases, newest first: a user's, the leases on a provider's nodes, or all (admin). */
export async function leasesPage(
  db: MarketDb,
  who: { user?: string; provider?: string },
  limit: number,
  after: PageAfter | undefined,
): Promise<Page<MarketLeasesTable>> {
  let q = db.selectFrom('market_leases').selectAll('market_leases');
  if (who.user !== undefined) q = q.where('market_leases.user_id', '=', who.user);
  if (who.provider !== undefined)
    q = q.where('market_leases.node_id', 'in', (eb) =>
      eb.selectFrom('market_nodes').select('market_nodes.id').where('market_nodes.provider', '=', who.provider!),
    );
  const columns = { time: 'market_leases.created_ms', id: 'market_leases.id' };
  return keysetPage(q, columns, limit, after, (r) => ({ ms: r.created_ms, id: r.id }));
}

/** Rows of a table keyed by (created_ms, id) with a `provider` column, newest first: a provider's, or all. */
async function providerRowsPage<R extends { created_ms: number; id: string }>(
  db: MarketDb,
  table: 'market_payouts' | 'market_nodes',
  provider: string | undefined,
  limit: number,
  after: PageAfter | undefined,
): Promise<Page<R>> {
  // Both tables have the columns used here; the row type is the caller's.
  let q = db.selectFrom(table as 'market_payouts').selectAll();
  if (provider !== undefined) q = q.where('provider', '=', provider);
  const key = (r: { created_ms: number; id: string }) => ({ ms: r.created_ms, id: r.id });
  return (await keysetPage(q, { time: 'created_ms', id: 'id' }, limit, after, key)) as unknown as Page<R>;
}

/** Payouts, newest first: a provider's, or all (admin). */
export const payoutsPage = (db: MarketDb, provider: string | undefined, limit: number, after: PageAfter | undefined) =>
  providerRowsPage<MarketPayoutsTable>(db, 'market_payouts', provider, limit, after);

/** Nodes, newest first: a provider's, or all (admin). */
export const nodesPage = (db: MarketDb, provider: string | undefined, limit: number, after: PageAfter | undefined) =>
  providerRowsPage<MarketNodesTable>(db, 'market_nodes', provider, limit, after);

/** Abuse reports, newest first (admin), optionally of one node. */
export async function abuseReportsPage(
  db: MarketDb,
  node_id: string | undefined,
  limit: number,
  after: PageAfter | undefined,
): Promise<Page<MarketAbuseReportsTable>> {
  let q = db.selectFrom('market_abuse_reports').selectAll();
  if (node_id !== undefined) q = q.where('node_id', '=', node_id);
  return keysetPage(q, { time: 'filed_ms', id: 'id' }, limit, after, (r) => ({ ms: r.filed_ms, id: r.id }));
}
