// Cursor-paged lists of the market's rows (GET /v1/leases, /v1/payouts, /v1/abuse/reports, /v1/nodes), newest
// first.
// Keyset paging on (time, id): a page starts strictly after the last row of the previous one, so rows added
// meanwhile never shift a page and the cost of a page does not grow with its depth.
import type { Db as MarketDb } from '../../store/database.js';
import type { MarketAbuseReportsTable, MarketLeasesTable, MarketNodesTable, MarketPayoutsTable } from './schema.js';

/** Rows per page at most (the routes' `limit` is bounded by it). */
export const MAX_PAGE_ROWS = 200;

/** Where a page starts: strictly after the row with this time and id (newest-first order). */
export interface PageAfter {
  ms: number;
  id: string;
}

export interface Page<T> {
  rows: T[];
  /** The last row's key when there may be more (the route encodes it as `next_cursor`). */
  next: PageAfter | null;
}

function page<T>(rows: T[], limit: number, key: (r: T) => PageAfter): Page<T> {
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  return { rows: shown, next: more ? key(shown[shown.length - 1]!) : null };
}

const checkLimit = (limit: number) => {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_ROWS)
    throw new RangeError(`page limit ${limit} outside 1..${MAX_PAGE_ROWS}`);
};

/** Leases, newest first: a user's, the leases on a provider's nodes, or all (admin). */
export async function leasesPage(
  db: MarketDb,
  who: { user?: string; provider?: string },
  limit: number,
  after: PageAfter | undefined,
): Promise<Page<MarketLeasesTable>> {
  checkLimit(limit);
  let q = db.selectFrom('market_leases').selectAll('market_leases');
  if (who.user !== undefined) q = q.where('market_leases.user_id', '=', who.user);
  if (who.provider !== undefined)
    q = q.where('market_leases.node_id', 'in', (eb) =>
      eb.selectFrom('market_nodes').select('market_nodes.id').where('market_nodes.provider', '=', who.provider!),
    );
  if (after !== undefined)
    q = q.where((eb) =>
      eb.or([
        eb('market_leases.created_ms', '<', after.ms),
        eb.and([eb('market_leases.created_ms', '=', after.ms), eb('market_leases.id', '<', after.id)]),
      ]),
    );
  const rows = await q
    .orderBy('market_leases.created_ms', 'desc')
    .orderBy('market_leases.id', 'desc')
    .limit(limit + 1)
    .execute();
  return page(rows, limit, (r) => ({ ms: r.created_ms, id: r.id }));
}

/** Rows of a table keyed by (created_ms, id) with a `provider` column, newest first: a provider's, or all. */
async function providerRowsPage<R extends { created_ms: number; id: string }>(
  db: MarketDb,
  table: 'market_payouts' | 'market_nodes',
  provider: string | undefined,
  limit: number,
  after: PageAfter | undefined,
): Promise<Page<R>> {
  checkLimit(limit);
  // Both tables have the columns used here; the row type is the caller's.
  let q = db.selectFrom(table as 'market_payouts').selectAll();
  if (provider !== undefined) q = q.where('provider', '=', provider);
  if (after !== undefined)
    q = q.where((eb) =>
      eb.or([eb('created_ms', '<', after.ms), eb.and([eb('created_ms', '=', after.ms), eb('id', '<', after.id)])]),
    );
  const rows = (await q
    .orderBy('created_ms', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute()) as unknown as R[];
  return page(rows, limit, (r) => ({ ms: r.created_ms, id: r.id }));
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
  checkLimit(limit);
  let q = db.selectFrom('market_abuse_reports').selectAll();
  if (node_id !== undefined) q = q.where('node_id', '=', node_id);
  if (after !== undefined)
    q = q.where((eb) =>
      eb.or([eb('filed_ms', '<', after.ms), eb.and([eb('filed_ms', '=', after.ms), eb('id', '<', after.id)])]),
    );
  const rows = await q
    .orderBy('filed_ms', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute();
  return page(rows, limit, (r) => ({ ms: r.filed_ms, id: r.id }));
}
