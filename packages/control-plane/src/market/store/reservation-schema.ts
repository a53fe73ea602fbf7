// The reservation and receipt tables (migration 210). Money columns are micro-USD integers; times are ms since
// epoch. Receipts hold hashes, counts and signatures only: nothing of a sealed request or response.

export interface MarketUnitPricesTable {
  node_id: string;
  /** JSON UnitPrices: micro-USD per 1,000 units of each kind. */
  prices: string;
  updated_ms: number;
}

export interface MarketAgentKeysTable {
  /** The agent's attested Ed25519 receipt key (64 hex). */
  receipt_key: string;
  hpke_key: string;
  agent_id: string;
  node_id: string;
  app_name: string;
  first_attested_ms: number;
  last_attested_ms: number;
}

export interface MarketReservationsTable {
  id: string;
  user_id: string;
  app_name: string;
  node_id: string;
  provider: string;
  /** The agent chosen at creation, whose keyset the answer carried. */
  agent_id: string;
  /** SHA-256 (hex) of the reservation's bearer token: only its holder's sealed requests are billed to it. */
  token_sha256: string | null;
  unit_prices: string;
  quota: number;
  claimed: number;
  receipts: number;
  lock_seq: number;
  lock_period: number;
  status: 'open' | 'closed';
  end_reason: string | null;
  created_ms: number;
  expires_ms: number;
  closed_ms: number | null;
}

export interface MarketReceiptsTable {
  receipt_key: string;
  seq: number;
  reservation_id: string;
  request_id: string;
  amount: number;
  time_ms: number;
  accepted_ms: number;
  /** The ledger transfer that posted it (none for a zero amount). */
  transfer_id: string | null;
  /** The signed receipt as received (canonical JSON of {receipt, signature}). */
  signed: string;
}

export interface ReservationDatabase {
  market_unit_prices: MarketUnitPricesTable;
  market_agent_keys: MarketAgentKeysTable;
  market_reservations: MarketReservationsTable;
  market_receipts: MarketReceiptsTable;
}
