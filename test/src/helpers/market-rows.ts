// Rows the model tests of the market, reservations and jobs start from, written straight to the tables (the
// models drive the operations under test, not node registration): an active node, and minted credits.
import type { Db } from '@easyenclave/control-plane/store/database';
import { PLATFORM_ISSUANCE } from '@easyenclave/control-plane/ledger/chart';

export interface TestNode {
  id: string;
  provider: string;
  vcpus: number;
  /** Micro-USD per vCPU-hour. */
  price: number;
  tier?: 'premium' | 'standard' | 'economy';
  name?: string;
}

/** Inserts an active node on sandbox-1 (no PPID, no token), created at `now_ms`; economy unless told. */
export async function insertNode(db: Db, n: TestNode, now_ms: number): Promise<void> {
  await db
    .insertInto('market_nodes')
    .values({
      id: n.id,
      provider: n.provider,
      name: n.name ?? n.id,
      region: 'r',
      tier: n.tier ?? 'economy',
      network: 'sandbox-1',
      vcpus: n.vcpus,
      capacity_months: 1,
      price_micro: n.price,
      ppid: null,
      token_hash: null,
      status: 'active',
      banned_reason: null,
      banned_ms: null,
      created_ms: now_ms,
    })
    .execute();
}

/** Transfers minting `amount(i)` to each identity: a user's own account, a provider's earnings. */
export function mintTransfers(
  ids: readonly string[],
  transferId: (i: number) => string,
  amount: (i: number) => bigint,
) {
  return ids.map((id, i) => ({
    id: transferId(i),
    debit_account: PLATFORM_ISSUANCE,
    credit_account: id.startsWith('provider') ? `${id}:earnings` : id,
    amount: amount(i),
  }));
}
