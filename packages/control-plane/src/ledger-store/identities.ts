// API identities (users and providers) and their keys. A key is `ee_{kind}_{20 hex id}_{43 base64url secret}`:
// the id part finds the row, and sha256(secret) is compared in constant time with the stored hashes
// (api-keys.ts: the creation key here, rotated ones in ee_api_keys). The secret has 256 bits of entropy, so a
// plain hash is enough (no password-style stretching needed), and the key itself is returned once, when it is
// made, and never stored or logged.
import { createHash, randomBytes } from 'node:crypto';
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
  const key = newApiKey(`${kind}:${suffix}`);
  return { identity: { id: `${kind}:${suffix}`, kind, name, key_hash: key.key_hash, created_ms: now_ms }, ...key };
}

/** A fresh key for identity `id` (`kind:suffix`): the key, shown once, and the hash that is stored. */
export function newApiKey(id: string): { api_key: string; key_hash: string } {
  const [kind, suffix] = id.split(':');
  const secret = randomBytes(32).toString('base64url');
  return { api_key: `ee_${kind}_${suffix}_${secret}`, key_hash: sha256hex(secret) };
}

/** A presented key's identity id and the sha256 of its secret, or undefined when it is not a key at all. */
export function parseApiKey(key: string): { id: string; hash: Buffer } | undefined {
  const m = KEY_PATTERN.exec(key);
  return m ? { id: `${m[1]}:${m[2]}`, hash: Buffer.from(sha256hex(m[3]!), 'hex') } : undefined;
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
 * Identity rows never change and are never deleted (a rotated key lives in ee_api_keys, api-keys.ts), so rows
 * found are cached per database (bounded LRU; never a negative entry, so one created by another replica is
 * found on its first use). This takes the per-request lookups (the caller's key, the accounts named in the
 * body) off the database.
 */
export const IDENTITY_CACHE_SIZE = 10_000;

/** A bounded LRU map per database handle, forgotten with the handle. */
export function perDbLru<V>(max_entries: number) {
  const maps = new WeakMap<object, Map<string, V>>();
  const of = (db: Db): Map<string, V> => {
    let m = maps.get(db);
    if (!m) {
      m = new Map();
      maps.set(db, m);
    }
    return m;
  };
  return {
    get(db: Db, key: string): V | undefined {
      const m = of(db);
      const hit = m.get(key);
      if (hit !== undefined) {
        m.delete(key);
        m.set(key, hit);
      }
      return hit;
    },
    set(db: Db, key: string, value: V): void {
      const m = of(db);
      m.delete(key);
      m.set(key, value);
      if (m.size > max_entries) m.delete(m.keys().next().value!);
    },
    delete(db: Db, key: string): void {
      of(db).delete(key);
    },
  };
}

const identities = perDbLru<Identity>(IDENTITY_CACHE_SIZE);

export async function getIdentity(db: Db, id: string): Promise<Identity | undefined> {
  const hit = identities.get(db, id);
  if (hit) return hit;
  const row = await db.selectFrom('ee_accounts').selectAll().where('id', '=', id).executeTakeFirst();
  if (row) identities.set(db, id, row);
  return row;
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
