// Ledger calls against the control plane's contract (issue 6):
//   POST /v1/accounts                       (admin)          {kind, name} → 201 {account_id, kind, name, api_key, ...}
//   POST /v1/credits/purchase               (admin)          {account, amount | amount_micro_usd, payment_ref}
//   POST /v1/credits/transfer               (source API key) {from?, to, amount | amount_micro_usd, memo?}
//   GET  /v1/balances/{account}
//   GET  /v1/accounts/{account}/transfers?limit=&cursor=  → {transfers, next_cursor}
// Every POST carries an Idempotency-Key, made once per logical call and reused on the SDK's retries, so a retry
// can never move money twice; a replay answers with `Idempotent-Replayed: true` (`replayed` in the result).
import { z } from 'zod';
import { newIdempotencyKey } from './bytes.js';
import { InvalidResponseError } from './errors.js';
import { callJson, MicroUsd } from './json.js';
import type { CallOptions, Transport } from './http.js';

/** "$200", "12.50" (USD, converted exactly by the server), or micro-USD as bigint or a safe integer. */
export type Amount = string | bigint | number;

export interface IdempotentOptions extends CallOptions {
  /** Your own key (e.g. to make a retry of yours, across processes, safe too); default a fresh UUID. */
  idempotency_key?: string;
}

const Account = z.string().min(1).max(200);

export const AccountSchema = z.looseObject({ account_id: z.string(), kind: z.enum(['user', 'provider']), name: z.string(), api_key: z.string() });
export const BalanceSchema = z.looseObject({
  account: z.string(),
  available_micro_usd: MicroUsd,
  locked_micro_usd: MicroUsd,
  total_micro_usd: MicroUsd,
  available_usd: z.string(),
  locked_usd: z.string(),
  total_usd: z.string(),
});
export const TransferSchema = z.looseObject({
  transfer_id: z.string(),
  from: z.string().nullable().optional(),
  to: z.string().nullable().optional(),
  amount_micro_usd: MicroUsd,
});
export const PurchaseSchema = z.looseObject({ transfer_id: z.string(), account: z.string(), amount_micro_usd: MicroUsd, balance: BalanceSchema.partial().loose() });
const TransferPageSchema = z.object({ transfers: z.array(TransferSchema), next_cursor: z.string().nullable() });

export type CreatedAccount = z.infer<typeof AccountSchema>;
export type Balance = z.infer<typeof BalanceSchema>;
export type Transfer = z.infer<typeof TransferSchema>;
export type Purchase = z.infer<typeof PurchaseSchema>;
export type Replayable<T> = T & { replayed: boolean };

/** `amount` (a string the server converts exactly) or `amount_micro_usd` (an exact integer). */
export function amountFields(amount: Amount): { amount: string } | { amount_micro_usd: bigint } {
  if (typeof amount === 'string') {
    if (amount.trim() === '') throw new TypeError('amount must not be empty');
    return { amount };
  }
  if (typeof amount === 'number' && !Number.isSafeInteger(amount)) throw new TypeError('amount as a number must be a safe integer of micro-USD (use a string for USD, or a bigint)');
  const micro = BigInt(amount);
  if (micro <= 0n) throw new TypeError('amount must be positive');
  return { amount_micro_usd: micro };
}

export interface LedgerAuth {
  api_key?: string;
  admin_token?: string;
}

function bearer(token: string | undefined, what: string): Record<string, string> {
  if (token === undefined) throw new TypeError(`${what} is required for this call`);
  return { authorization: `Bearer ${token}` };
}

function mergeHeaders(auth: Record<string, string>, o: CallOptions): Headers {
  const h = new Headers(o.headers);
  for (const [k, v] of Object.entries(auth)) h.set(k, v);
  return h;
}

async function post<S extends z.ZodType>(t: Transport, path: string, body: unknown, auth: Record<string, string>, o: IdempotentOptions, schema: S): Promise<Replayable<z.output<S>>> {
  const { idempotency_key = newIdempotencyKey(), ...rest } = o;
  const r = await callJson(t, { ...rest, method: 'POST', path, body, idempotency_key, headers: mergeHeaders(auth, o) }, schema);
  return { ...(r.data as object), replayed: r.headers.get('idempotent-replayed') === 'true' } as Replayable<z.output<S>>;
}

export function createAccount(t: Transport, auth: LedgerAuth, a: { kind: 'user' | 'provider'; name: string }, o: IdempotentOptions = {}): Promise<Replayable<CreatedAccount>> {
  return post(t, '/v1/accounts', { kind: a.kind, name: a.name }, bearer(auth.admin_token, 'adminToken'), o, AccountSchema);
}

export function purchaseCredits(t: Transport, auth: LedgerAuth, p: { account: string; amount: Amount; payment_ref: string }, o: IdempotentOptions = {}): Promise<Replayable<Purchase>> {
  const body = { account: Account.parse(p.account), ...amountFields(p.amount), payment_ref: p.payment_ref };
  return post(t, '/v1/credits/purchase', body, bearer(auth.admin_token, 'adminToken'), o, PurchaseSchema);
}

export function transferCredits(t: Transport, auth: LedgerAuth, p: { to: string; amount: Amount; from?: string; memo?: string }, o: IdempotentOptions = {}): Promise<Replayable<Transfer>> {
  const body = { ...(p.from !== undefined ? { from: p.from } : {}), to: Account.parse(p.to), ...amountFields(p.amount), ...(p.memo !== undefined ? { memo: p.memo } : {}) };
  return post(t, '/v1/credits/transfer', body, bearer(auth.api_key, 'apiKey'), o, TransferSchema);
}

function readAuth(auth: LedgerAuth): Record<string, string> {
  const token = auth.api_key ?? auth.admin_token;
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

export async function balance(t: Transport, auth: LedgerAuth, account: string, o: CallOptions = {}): Promise<Balance> {
  const path = `/v1/balances/${encodeURIComponent(Account.parse(account))}`;
  return (await callJson(t, { ...o, method: 'GET', path, headers: mergeHeaders(readAuth(auth), o) }, BalanceSchema)).data;
}

/** Every transfer of an account, newest first as the server pages them; `limit` is the page size. */
export async function* transfers(t: Transport, auth: LedgerAuth, p: { account: string; limit?: number }, o: CallOptions = {}): AsyncGenerator<Transfer, void, undefined> {
  const base = `/v1/accounts/${encodeURIComponent(Account.parse(p.account))}/transfers`;
  let cursor: string | null = null;
  const seen = new Set<string>();
  do {
    const q = new URLSearchParams();
    if (p.limit !== undefined) q.set('limit', String(p.limit));
    if (cursor !== null) q.set('cursor', cursor);
    const qs = q.toString();
    const page = (await callJson(t, { ...o, method: 'GET', path: qs ? `${base}?${qs}` : base, headers: mergeHeaders(readAuth(auth), o) }, TransferPageSchema)).data;
    for (const tr of page.transfers) yield tr;
    // A server that hands back a cursor it already gave would loop forever: stop instead.
    if (page.next_cursor !== null && seen.has(page.next_cursor)) throw new InvalidResponseError(200, `transfers: the server repeated cursor ${page.next_cursor}`);
    cursor = page.next_cursor;
    if (cursor !== null) seen.add(cursor);
  } while (cursor !== null);
}
