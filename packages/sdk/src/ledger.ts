// Ledger calls against the control plane's contract (issue 6):
//   POST /v1/accounts                       (admin)          {kind, name} → 201 {account_id, kind, name, api_key, ...}
//   POST /v1/credits/purchase               (admin)          {account, amount | amount_micro_usd, payment_ref}
//   POST /v1/credits/transfer               (source API key) {from?, to, amount | amount_micro_usd, memo?}
//   GET  /v1/balances/{account}
//   GET  /v1/accounts/{account}/transfers?limit=&cursor=  → {transfers, next_cursor}
//   POST /v1/accounts/{account}/keys        (its API key or admin) {grace_ms?} → 201 {api_key, previous_keys_expire_at}
// Every POST carries an Idempotency-Key made once per logical call (calls.ts).
import { z } from 'zod';
import {
  bearer,
  checkAccount,
  get,
  optionalPrincipal,
  paged,
  post,
  principal,
  type Auth,
  type IdempotentOptions,
  type Replayable,
} from './calls.js';
import { InvalidResponseError } from './errors.js';
import { MicroUsd } from './json.js';
import type { CallOptions, Transport } from './http.js';

/** "$200", "12.50" (USD, converted exactly by the server), or micro-USD as bigint or a safe integer. */
export type Amount = string | bigint | number;

export type { IdempotentOptions, Replayable } from './calls.js';
/** The ledger's credentials (kept for callers of the earlier name). */
export type LedgerAuth = Auth;

/** POST /v1/accounts: the API key is shown once (null when an idempotent retry replays the answer). */
export const AccountSchema = z.looseObject({
  account_id: z.string(),
  kind: z.enum(['user', 'provider']),
  name: z.string(),
  api_key: z.string().nullable(),
  ledger_accounts: z.array(z.string()).optional(),
});
/** GET /v1/balances/{account}. */
export const BalanceSchema = z.looseObject({
  account: z.string(),
  available_micro_usd: MicroUsd,
  locked_micro_usd: MicroUsd,
  total_micro_usd: MicroUsd,
  available_usd: z.string(),
  locked_usd: z.string(),
  total_usd: z.string(),
  /** A provider's stake, beside its earnings (provider accounts only). */
  stake_micro_usd: MicroUsd.optional(),
});
/** POST /v1/credits/transfer. `balance` is the paying account's after the transfer. */
export const TransferSchema = z.looseObject({
  transfer_id: z.string(),
  from: z.string().nullable().optional(),
  to: z.string().nullable().optional(),
  amount_micro_usd: MicroUsd,
  amount_usd: z.string().optional(),
  memo: z.string().nullable().optional(),
  balance: BalanceSchema.optional(),
});
/** POST /v1/credits/purchase. `replayed`: this payment_ref had already minted (nothing new was minted). */
export const PurchaseSchema = z.looseObject({
  transfer_id: z.string(),
  account: z.string(),
  payment_ref: z.string().optional(),
  amount_micro_usd: MicroUsd,
  amount_usd: z.string().optional(),
  balance: BalanceSchema,
});
/** One line of GET /v1/accounts/{account}/transfers (purchases, transfers, locks, settlements, refunds). */
export const HistoryEntrySchema = z.looseObject({
  seq: z.number().int().optional(),
  type: z.string().optional(),
  transfer_id: z.string().nullable(),
  from: z.string().nullable().optional(),
  to: z.string().nullable().optional(),
  direction: z.enum(['in', 'out']).optional(),
  amount_micro_usd: MicroUsd,
  amount_usd: z.string().optional(),
  memo: z.string().nullable().optional(),
  reference: z.string().nullable().optional(),
  timestamp: z.string().optional(),
});
/** One account in GET /v1/accounts (admin); never its key. */
export const AccountSummarySchema = z.looseObject({
  account_id: z.string(),
  kind: z.enum(['user', 'provider']),
  name: z.string(),
  ledger_accounts: z.array(z.string()),
  created_at: z.string(),
});
export const AccountPageSchema = z.looseObject({
  accounts: z.array(AccountSummarySchema),
  next_cursor: z.string().nullable(),
});
export type AccountSummary = z.infer<typeof AccountSummarySchema>;

/** Every user and provider account, newest first (admin), optionally of one kind. */
export function accounts(
  t: Transport,
  auth: Auth,
  p: { limit?: number; kind?: 'user' | 'provider' } = {},
  o: CallOptions = {},
) {
  const query: Record<string, string> = p.kind === undefined ? {} : { kind: p.kind };
  return paged(
    t,
    '/v1/accounts',
    bearer(auth.admin_token, 'adminToken'),
    { ...p, query },
    o,
    AccountPageSchema,
    (r) => ({
      rows: r.accounts,
      next_cursor: r.next_cursor,
    }),
  );
}

/** One page of an account's history. */
export const HistoryPageSchema = z.looseObject({
  transfers: z.array(HistoryEntrySchema),
  next_cursor: z.string().nullable(),
});

export type CreatedAccount = z.infer<typeof AccountSchema>;
export type Balance = z.infer<typeof BalanceSchema>;
export type Transfer = z.infer<typeof TransferSchema>;
export type HistoryEntry = z.infer<typeof HistoryEntrySchema>;
export type HistoryPage = z.infer<typeof HistoryPageSchema>;
export type Purchase = z.infer<typeof PurchaseSchema>;

/** `{name}` (a string the server converts exactly) or `{name}_micro_usd` (an exact integer). */
export function amountFields(amount: Amount, name = 'amount'): Record<string, string | bigint> {
  if (typeof amount === 'string') {
    if (amount.trim() === '') throw new TypeError(`${name} must not be empty`);
    return { [name]: amount };
  }
  if (typeof amount === 'number' && !Number.isSafeInteger(amount))
    throw new TypeError(`${name} as a number must be a safe integer of micro-USD (use a string for USD, or a bigint)`);
  if (typeof amount !== 'number' && typeof amount !== 'bigint')
    throw new TypeError(`${name} must be a string of USD or micro-USD as a bigint or number`);
  const micro = BigInt(amount);
  if (micro <= 0n) throw new TypeError(`${name} must be positive`);
  return { [`${name}_micro_usd`]: micro };
}

export function createAccount(
  t: Transport,
  auth: Auth,
  a: { kind: 'user' | 'provider'; name: string },
  o: IdempotentOptions = {},
): Promise<Replayable<CreatedAccount>> {
  return post(
    t,
    '/v1/accounts',
    { kind: a.kind, name: a.name },
    bearer(auth.admin_token, 'adminToken'),
    o,
    AccountSchema,
  );
}

/** POST /v1/accounts/{account}/keys: the new key is shown once (null when an idempotent retry replays the answer). */
export const RotatedKeySchema = z.looseObject({
  account_id: z.string(),
  api_key: z.string().nullable(),
  created_at: z.string(),
  previous_keys_expire_at: z.string(),
});
export type RotatedKey = z.infer<typeof RotatedKeySchema>;

/** A new API key for `account` (its current key or the admin token); older keys end after `grace_ms`. */
export function rotateApiKey(
  t: Transport,
  auth: Auth,
  account: string,
  p: { grace_ms?: number } = {},
  o: IdempotentOptions = {},
): Promise<Replayable<RotatedKey>> {
  if (p.grace_ms !== undefined && (!Number.isSafeInteger(p.grace_ms) || p.grace_ms < 0))
    throw new TypeError('grace_ms must be a non-negative integer of milliseconds');
  const body = p.grace_ms === undefined ? {} : { grace_ms: p.grace_ms };
  const path = `/v1/accounts/${encodeURIComponent(checkAccount(account, 'account'))}/keys`;
  return post(t, path, body, principal(auth), o, RotatedKeySchema);
}

export function purchaseCredits(
  t: Transport,
  auth: Auth,
  p: { account: string; amount: Amount; payment_ref: string },
  o: IdempotentOptions = {},
): Promise<Replayable<Purchase>> {
  const body = { account: checkAccount(p.account, 'account'), ...amountFields(p.amount), payment_ref: p.payment_ref };
  return post(t, '/v1/credits/purchase', body, bearer(auth.admin_token, 'adminToken'), o, PurchaseSchema);
}

export function transferCredits(
  t: Transport,
  auth: Auth,
  p: { to: string; amount: Amount; from?: string; memo?: string },
  o: IdempotentOptions = {},
): Promise<Replayable<Transfer>> {
  const body = {
    ...(p.from !== undefined ? { from: p.from } : {}),
    to: checkAccount(p.to, 'to'),
    ...amountFields(p.amount),
    ...(p.memo !== undefined ? { memo: p.memo } : {}),
  };
  return post(t, '/v1/credits/transfer', body, bearer(auth.api_key, 'apiKey'), o, TransferSchema);
}

export async function balance(t: Transport, auth: Auth, account: string, o: CallOptions = {}): Promise<Balance> {
  return get(
    t,
    `/v1/balances/${encodeURIComponent(checkAccount(account, 'account'))}`,
    optionalPrincipal(auth),
    o,
    BalanceSchema,
  );
}

/** Every transfer of an account, newest first as the server pages them; `limit` is the page size. */
export async function* transfers(
  t: Transport,
  auth: Auth,
  p: { account: string; limit?: number },
  o: CallOptions = {},
): AsyncGenerator<HistoryEntry, void, undefined> {
  const base = `/v1/accounts/${encodeURIComponent(checkAccount(p.account, 'account'))}/transfers`;
  let cursor: string | null = null;
  const seen = new Set<string>();
  do {
    const q = new URLSearchParams();
    if (p.limit !== undefined) q.set('limit', String(p.limit));
    if (cursor !== null) q.set('cursor', cursor);
    const qs = q.toString();
    const page = await get(t, qs ? `${base}?${qs}` : base, optionalPrincipal(auth), o, HistoryPageSchema);
    for (const tr of page.transfers) yield tr;
    // A server that hands back a cursor it already gave would loop forever: stop instead.
    if (page.next_cursor !== null && seen.has(page.next_cursor))
      throw new InvalidResponseError(200, `transfers: the server repeated cursor ${page.next_cursor}`);
    cursor = page.next_cursor;
    if (cursor !== null) seen.add(cursor);
  } while (cursor !== null);
}
