// Keyset paging, newest first, on (time, id): a page starts strictly after the last row of the previous one, so
// rows added meanwhile never shift a page and the cost of a page does not grow with its depth. One helper for
// every cursor-paged list (accounts, leases, payouts, abuse reports): the caller builds the filtered query.
import { sql, type SelectQueryBuilder } from 'kysely';

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

/**
 * One page of `q`, ordered by the columns `time` and `id` (both descending), at most `limit` rows strictly after
 * `after`; `key` reads a row's (time, id). A limit outside 1..max is a RangeError.
 */
export async function keysetPage<DB, TB extends keyof DB, O>(
  q: SelectQueryBuilder<DB, TB, O>,
  columns: { time: string; id: string },
  limit: number,
  after: PageAfter | undefined,
  key: (row: O) => PageAfter,
  max = MAX_PAGE_ROWS,
): Promise<Page<O>> {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > max)
    throw new RangeError(`page limit ${limit} outside 1..${max}`);
  const time = sql.ref<number>(columns.time);
  const id = sql.ref<string>(columns.id);
  if (after !== undefined)
    q = q.where((eb) => eb.or([eb(time, '<', after.ms), eb.and([eb(time, '=', after.ms), eb(id, '<', after.id)])]));
  const rows = await q
    .orderBy(sql`${time} desc`)
    .orderBy(sql`${id} desc`)
    .limit(limit + 1)
    .execute();
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  return { rows: shown, next: more ? key(shown[shown.length - 1]!) : null };
}
