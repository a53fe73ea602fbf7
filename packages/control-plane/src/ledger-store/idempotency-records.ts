// The stored responses of requests made with an Idempotency-Key (http/idempotency.ts has the semantics). A
// record is written in the same transaction as the request's effect (ExtraWrites.idempotency, batch.ts);
// these are the reads and the pruning.
import type { Db } from '../store/database.js';
import type { EeIdempotencyTable } from './schema.js';

export type IdempotencyRecord = Pick<EeIdempotencyTable, 'request_hash' | 'status_code' | 'response'>;

export const findIdempotencyRecord = (db: Db, principal: string, key: string): Promise<IdempotencyRecord | undefined> =>
  db
    .selectFrom('ee_idempotency')
    .select(['request_hash', 'status_code', 'response'])
    .where('principal', '=', principal)
    .where('key', '=', key)
    .executeTakeFirst();

/** Deletes the records created before `before_ms`; returns how many. */
export async function pruneIdempotencyRecords(db: Db, before_ms: number): Promise<number> {
  const r = await db.deleteFrom('ee_idempotency').where('created_ms', '<', before_ms).executeTakeFirst();
  return Number(r.numDeletedRows);
}
