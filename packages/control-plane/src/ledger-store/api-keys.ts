// API key checks and rotation (docs/security.md). An account's creation key hash is in its (immutable,
// audited) ee_accounts row; every later key is a row of ee_api_keys, and so is the creation key once a rotation
// has given it an expiry. A rotation adds a key and caps every older key's expiry at `now + grace`; expiries
// only ever move earlier, so a key once refused stays refused.
//
// Replicas share the database, so what this process caches of an account's keys is re-read after
// API_KEY_CACHE_MS at most: a key revoked on another replica stops working here within that time. A key this
// cache does not know (one just issued elsewhere) makes it re-read at once, so a new key works everywhere now.
import { timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import type { Db, Tx } from '../store/database.js';
import type { StoreDialect } from '../store/migrations.js';
import type { ApplyContext, LedgerOp } from './batch.js';
import { getIdentity, parseApiKey, perDbLru, type Identity } from './identities.js';

/** How long this process trusts what it read of an account's keys: the bound on a revocation's delay elsewhere. */
export const API_KEY_CACHE_MS = 5_000;
/** The longest grace period an old key may keep after a rotation (7 days). */
export const MAX_KEY_GRACE_MS = 7 * 24 * 60 * 60 * 1000;
/** The old keys' grace period when the rotation names none (24 hours). */
export const DEFAULT_KEY_GRACE_MS = 24 * 60 * 60 * 1000;
/** Keys valid at once per account; a rotation beyond this ends the oldest ones at once. */
export const MAX_LIVE_API_KEYS = 5;
/** Accounts whose keys this process caches (LRU). */
const KEY_CACHE_ACCOUNTS = 10_000;

interface StoredKey {
  hash: Buffer;
  expires_ms: number | null;
}
interface KeySet {
  read_at_ms: number;
  keys: StoredKey[];
}

const cache = perDbLru<KeySet>(KEY_CACHE_ACCOUNTS);

async function readKeys(db: Db, identity: Identity): Promise<KeySet> {
  const rows = await db
    .selectFrom('ee_api_keys')
    .select(['key_hash', 'expires_ms'])
    .where('account_id', '=', identity.id)
    .execute();
  const keys: StoredKey[] = rows.map((r) => ({
    hash: Buffer.from(r.key_hash, 'hex'),
    expires_ms: r.expires_ms === null ? null : Number(r.expires_ms),
  }));
  // The creation key is valid until a rotation gives it a row (and so an expiry).
  if (!rows.some((r) => r.key_hash === identity.key_hash))
    keys.push({ hash: Buffer.from(identity.key_hash, 'hex'), expires_ms: null });
  const set = { read_at_ms: Date.now(), keys };
  cache.set(db, identity.id, set);
  return set;
}

/** The stored key whose hash is `presented`; every key is compared, each in constant time. */
function match(set: KeySet, presented: Buffer): StoredKey | undefined {
  let found: StoredKey | undefined;
  for (const k of set.keys)
    if (k.hash.length === presented.length && timingSafeEqual(k.hash, presented) && found === undefined) found = k;
  return found;
}

/** The identity an API key belongs to, if the key is one of its keys and has not expired at `now_ms`. */
export async function authenticate(db: Db, key: string, now_ms: number): Promise<Identity | undefined> {
  const parsed = parseApiKey(key);
  if (!parsed) return undefined;
  const identity = await getIdentity(db, parsed.id);
  if (!identity) return undefined;
  const cached = cache.get(db, identity.id);
  const fresh = cached === undefined || Date.now() - cached.read_at_ms > API_KEY_CACHE_MS;
  let k = match(fresh ? await readKeys(db, identity) : cached, parsed.hash);
  // Unknown here but perhaps just issued by another replica.
  if (k === undefined && !fresh) k = match(await readKeys(db, identity), parsed.hash);
  return k !== undefined && (k.expires_ms === null || now_ms < k.expires_ms) ? identity : undefined;
}

/** This process forgets what it read of an account's keys (after it rotated them itself). */
export function forgetKeys(db: Db, account_id: string): void {
  cache.delete(db, account_id);
}

export interface Rotation {
  identity: Identity;
  /** The new key's hash (the key itself is made and shown by the caller, never stored). */
  key_hash: string;
  grace_ms: number;
}

/**
 * Adds the new key and caps the older ones' expiry at `now + grace_ms`, in one ledger batch (so it commits with
 * the request's idempotency record). On PostgreSQL the account row is locked first: rotations of one account on
 * several replicas run one after another. `then` gets the old keys' expiry.
 */
export function rotateKeyOp<T>(r: Rotation, then: (ctx: ApplyContext, old_expires_ms: number) => T): LedgerOp<T> {
  return {
    accounts: [],
    transfers: [],
    async prepare(tx: Tx, dialect: StoreDialect) {
      if (dialect === 'postgres')
        await sql`SELECT id FROM ee_accounts WHERE id = ${r.identity.id} FOR UPDATE`.execute(tx);
    },
    apply(ctx) {
      const now_ms = ctx.now_ms;
      const old_expires_ms = now_ms + r.grace_ms;
      ctx.writes.after.push((tx) => writeRotation(tx, r, now_ms, old_expires_ms));
      return then(ctx, old_expires_ms);
    },
  };
}

async function writeRotation(tx: Tx, r: Rotation, now_ms: number, old_expires_ms: number): Promise<void> {
  const id = r.identity.id;
  // Keys that ended are of no more use, except the creation key's row: without it that key would be valid again.
  await tx
    .deleteFrom('ee_api_keys')
    .where('account_id', '=', id)
    .where('expires_ms', '<=', now_ms)
    .where('key_hash', '!=', r.identity.key_hash)
    .execute();
  await tx
    .insertInto('ee_api_keys')
    .values({ account_id: id, key_hash: r.identity.key_hash, created_ms: r.identity.created_ms, expires_ms: null })
    .onConflict((oc) => oc.columns(['account_id', 'key_hash']).doNothing())
    .execute();
  await tx
    .updateTable('ee_api_keys')
    .set({ expires_ms: old_expires_ms })
    .where('account_id', '=', id)
    .where((eb) => eb.or([eb('expires_ms', 'is', null), eb('expires_ms', '>', old_expires_ms)]))
    .execute();
  // With the new key, at most MAX_LIVE_API_KEYS stay valid: the oldest of the others end now.
  const live = await tx
    .selectFrom('ee_api_keys')
    .select(['key_hash'])
    .where('account_id', '=', id)
    .where('expires_ms', '>', now_ms)
    .orderBy('created_ms', 'desc')
    .orderBy('key_hash', 'desc')
    .execute();
  const ended = live.slice(MAX_LIVE_API_KEYS - 1).map((k) => k.key_hash);
  if (ended.length > 0)
    await tx
      .updateTable('ee_api_keys')
      .set({ expires_ms: now_ms })
      .where('account_id', '=', id)
      .where('key_hash', 'in', ended)
      .execute();
  await tx
    .insertInto('ee_api_keys')
    .values({ account_id: id, key_hash: r.key_hash, created_ms: now_ms, expires_ms: null })
    .execute();
}
