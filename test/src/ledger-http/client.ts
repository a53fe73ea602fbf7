// A tiny JSON client for ledger API tests: status, headers and parsed body of one request.
import { ADMIN_TOKEN } from '../helpers/network.js';

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

export async function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown; key?: string; raw?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.key !== undefined) headers['idempotency-key'] = opts.key;
  let payload: string | undefined;
  if (opts.raw !== undefined) payload = opts.raw;
  else if (opts.body !== undefined) payload = JSON.stringify(opts.body);
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: payload ?? null });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

export async function createAccount(
  base: string,
  kind: 'user' | 'provider',
  name: string,
): Promise<{ id: string; key: string }> {
  const r = await call(base, 'POST', '/v1/accounts', { body: { kind, name } });
  if (r.status !== 201) throw new Error(`create account: ${r.status} ${JSON.stringify(r.body)}`);
  return { id: r.body.account_id, key: r.body.api_key };
}

export async function balance(base: string, account: string): Promise<number> {
  const r = await call(base, 'GET', `/v1/balances/${account}`);
  if (r.status !== 200) throw new Error(`balance: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.available_micro_usd;
}
