// Helpers for reservation and receipt tests: unit prices, signing receipts with an agent's attested key (or
// another key), and reading a reservation's money.
import { createHash, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { importSigningKey } from '@easyenclave/protocol/signed-record';
import {
  receiptAmount,
  signReceipt,
  type SignedReceipt,
  type UnitPrices,
  type Units,
} from '@easyenclave/protocol/receipt';
import { call } from '../ledger-http/client.js';
import type { Party } from './util.js';

/** Reservation id → SHA-256 of its bearer token, remembered from creation answers (remember()). */
const tokens = new Map<string, string>();
export const sha256hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
export function remember(created: { reservation_id: string; token: string | null }): void {
  if (created.token !== null) tokens.set(created.reservation_id, sha256hex(created.token));
}

export const PRICES: UnitPrices = { tokens_in: 150, tokens_out: 600, requests: 1000, bytes: 1 };

export async function postPrices(base: string, provider: Party, node_id: string, prices = PRICES): Promise<void> {
  const r = await call(base, 'PUT', `/v1/nodes/${node_id}/unit-prices`, { token: provider.key, body: prices });
  if (r.status !== 200) throw new Error(`unit prices: ${r.status} ${JSON.stringify(r.body)}`);
}

export interface Signer {
  agent_id: string;
  key_hex: string;
  privateKey: KeyObject;
  seq: number;
}

export const signerOf = (agent: {
  config: { agent_id: string };
  keys: { receipt: { privateKey: KeyObject }; toJSON(): { receipt_public_key: string } };
}): Signer => ({
  agent_id: agent.config.agent_id,
  key_hex: agent.keys.toJSON().receipt_public_key,
  privateKey: agent.keys.receipt.privateKey,
  seq: 0,
});

/** A receipt for `units` under `reservation_id`, signed by `s` with the next sequence number (or `seq`). */
export async function receipt(
  s: Signer,
  reservation_id: string,
  time_ms: number,
  units: Partial<Units> = { tokens_in: 1000, tokens_out: 2000 },
  over: { seq?: number; prices?: UnitPrices; token_sha256?: string } = {},
): Promise<SignedReceipt> {
  const u: Units = { tokens_in: 0, tokens_out: 0, requests: 0, bytes: 0, ...units };
  const prices = over.prices ?? PRICES;
  const key = await importSigningKey(s.privateKey.export({ format: 'jwk' }));
  return signReceipt(key, {
    v: 1,
    reservation_id,
    reservation_token_sha256: over.token_sha256 ?? tokens.get(reservation_id) ?? '0'.repeat(64),
    request_id: `req_${randomBytes(8).toString('hex')}`,
    request_sha256: randomBytes(32).toString('hex'),
    response_sha256: randomBytes(32).toString('hex'),
    kind: u.tokens_in + u.tokens_out > 0 ? 'tokens' : 'requests',
    units: u,
    unit_prices: prices,
    amount_micro_usd: Number(receiptAmount(u, prices)),
    agent_id: s.agent_id,
    key: s.key_hex,
    seq: over.seq ?? ++s.seq,
    time_ms,
  });
}

export async function balances(base: string, account: string): Promise<{ available: number; total: number }> {
  const r = await call(base, 'GET', `/v1/balances/${account}`);
  if (r.status !== 200) throw new Error(`balance: ${r.status} ${JSON.stringify(r.body)}`);
  return { available: r.body.available_micro_usd, total: r.body.total_micro_usd };
}
