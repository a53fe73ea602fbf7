// The market's tables (migrations 200+). Money columns are micro-USD integers (BIGINT on PostgreSQL, always
// <= 2^53 - 1, read back as exact numbers); times are ms since epoch; periods are epoch-aligned indexes.

export type NodeStatus = 'active' | 'banned';
export type LeaseStatus = 'active' | 'ended';
export type PeriodStatus = 'locked' | 'posted' | 'voided' | 'expired';

export interface MarketNodesTable {
  id: string;
  provider: string;
  name: string;
  region: string;
  tier: 'premium' | 'standard' | 'economy';
  network: string;
  vcpus: number;
  capacity_months: number;
  price_micro: number;
  /** Sealed networks: the PPID (32 hex) of the node's platform, from its verified quotes. */
  ppid: string | null;
  /** Sandbox: sha256 hex of the node token issued at registration (shown once). */
  token_hash: string | null;
  status: NodeStatus;
  banned_reason: string | null;
  banned_ms: number | null;
  created_ms: number;
}

export interface MarketNodeAgentsTable {
  agent_id: string;
  node_id: string;
  via: 'token' | 'ppid';
  bound_ms: number;
}

export interface MarketLeasesTable {
  id: string;
  user_id: string;
  app_name: string;
  node_id: string;
  vcpus: number;
  price_micro: number;
  /** Periods to run in total (the first, prorated, included); null = until cancelled or unfunded. */
  periods: number | null;
  periods_locked: number;
  first_period: number;
  last_period: number;
  status: LeaseStatus;
  end_reason: string | null;
  created_ms: number;
  ended_ms: number | null;
}

export interface MarketLeasePeriodsTable {
  lease_id: string;
  period: number;
  node_id: string;
  provider: string;
  user_id: string;
  app_name: string;
  from_ms: number;
  to_ms: number;
  amount: number;
  status: PeriodStatus;
  /** JSON array of strings: why it was voided (empty when posted). */
  reasons: string | null;
  finalized_ms: number | null;
}

export interface MarketUsageReportsTable {
  id: string;
  node_id: string;
  period: number;
  units: number;
  missed_checks: number;
  detail: string | null;
  created_ms: number;
}

export interface MarketAbuseReportsTable {
  id: string;
  node_id: string;
  lease_id: string | null;
  period: number;
  reason: string;
  status: 'filed' | 'authorized';
  filed_ms: number;
  authorized_ms: number | null;
}

export interface MarketSlashesTable {
  id: string;
  node_id: string;
  kind: 'outage' | 'fraud';
  amount: number;
  reason: string;
  at_ms: number;
}

export interface MarketPayoutsTable {
  id: string;
  provider: string;
  amount: number;
  status: 'pending' | 'confirmed' | 'cancelled';
  reference: string | null;
  created_ms: number;
  resolved_ms: number | null;
}

export interface MarketDatabase {
  market_nodes: MarketNodesTable;
  market_node_agents: MarketNodeAgentsTable;
  market_leases: MarketLeasesTable;
  market_lease_periods: MarketLeasePeriodsTable;
  market_usage_reports: MarketUsageReportsTable;
  market_abuse_reports: MarketAbuseReportsTable;
  market_slashes: MarketSlashesTable;
  market_payouts: MarketPayoutsTable;
}
