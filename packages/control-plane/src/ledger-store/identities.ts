// API identities (users and providers) and their keys. A key is `ee_{kind}_{20 hex id}_{43 base64url secret}`:
// the id part finds the row, and sha256(secret) is compared in constant time with the stored hash. The
// secret has 256 bits of entropy, so a plain hash is enough (no password-style stretching needed), and the
// key itself is returned once, at creation, and never stored or logged.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { Db } from '../store/database.js';
import { keysetPage, type PageAfter } from '../store/paging.js';
import { createAccounts } from '../ledger/engine.js';
import { identityAccountInputs, ownedAccounts, type IdentityKind } from '../ledger/chart.js';
import type { ApplyContext, LedgerOp } from './batch.js';
import type { EeAccountsTable } from './schema.js';

export type Identity = Selectable<EeAccountsTable>;

const KEY_PATTERN = /^ee_(user|provider)_([0-9a-f]{20})_([A-Za-z0-9_-]{43})$/;
export const MAX_NAME_LENGTH = 128;

const sha256hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

export interface NewIdentity {
  identity: Identity;
  /** Shown to the caller once. */
  api_key: string;
}

/** Generates the id and key outside the transaction, so a retried batch creates the same identity. */
export function newIdentity(kind: IdentityKind, name: string, now_ms: number): NewIdentity {
  const suffix = randomBytes(10).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return {
    identity: { id: `${kind}:${suffix}`, kind, name, key_hash: sha256hex(secret), created_ms: now_ms },
    api_key: `ee_${kind}_${suffix}_${secret}`,
  };
}

/** Creates the identity row and its ledger accounts in one batch; `then` builds the caller's result. */
export function createIdentityOp<T>(n: NewIdentity, then: (ctx: ApplyContext) => T): LedgerOp<T> {
  return {
    accounts: ownedAccounts(n.identity.id),
    transfers: [],
    apply: (ctx) => {
      const results = createAccounts(ctx.state, identityAccountInputs(n.identity.id));
      // 128 bits of randomness per id: a collision is a bug, not a condition to handle.
      if (results.some((r) => r !== 'ok'))
        throw new Error(`ledger: accounts of new identity ${n.identity.id} already exist`);
      ctx.writes.identities.push(n.identity);
      return then(ctx);
    },
  };
}

/**
 * Identities never change and are never deleted, so rows found are cached per database (bounded LRU; never a
 * negative entry, so one created by another replica is found on its first use). This takes the per-request
 * lookups (the caller's key, the accounts named in the body) off the database.
 */
export const IDENTITY_CACHE_SIZE = 10_000;
const caches = new WeakMap<object, Map<string, Identity>>();

function cacheOf(db: Db): Map<string, Identity> {
  let cache = caches.get(db);
  if (!cache) {
    cache = new Map();
    caches.set(db, cache);
  }
  return cache;
}

export async function getIdentity(db: Db, id: string): Promise<Identity | undefined> {
  const cache = cacheOf(db);
  const hit = cache.get(id);
  if (hit) {
    cache.delete(id);
    cache.set(id, hit);
    return hit;
  }
  const row = await db.selectFrom('ee_accounts').selectAll().where('id', '=', id).executeTakeFirst();
  if (row) {
    cache.set(id, row);
    if (cache.size > IDENTITY_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  }
  return row;
}

/** The identity an API key belongs to, or undefined. Constant-time in the secret. */
export async function authenticate(db: Db, key: string): Promise<Identity | undefined> {
  const m = KEY_PATTERN.exec(key);
  if (!m) return undefined;
  const row = await getIdentity(db, `${m[1]}:${m[2]}`);
  if (!row) return undefined;
  const presented = Buffer.from(sha256hex(m[3]!), 'hex');
  const stored = Buffer.from(row.key_hash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored) ? row : undefined;
}

/** Identities listed per page at most (GET /v1/accounts). */
export const MAX_IDENTITIES_PAGE = 200;

/**
 * Identities, newest first, keyset-paged on (created_ms, id) (store/paging.ts): at most `limit`, strictly after `after`; `next`
 * is the last row's key when there may be more. Key hashes are never part of what this returns.
 */
export async function identitiesPage(
  db: Db,
  limit: number,
  after: PageAfter | undefined,
  kind?: IdentityKind,
): Promise<{ rows: Array<Omit<Identity, 'key_hash'>>; next: PageAfter | null }> {
  let q = db.selectFrom('ee_accounts').select(['id', 'kind', 'name', 'created_ms']);
  if (kind !== undefined) q = q.where('kind', '=', kind);
  const key = (r: { created_ms: number; id: string }) => ({ ms: r.created_ms, id: r.id });
  return keysetPage(q, { time: 'created_ms', id: 'id' }, limit, after, key, MAX_IDENTITIES_PAGE);
}
