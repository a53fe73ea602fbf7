// Table shapes as stored. Times are integer ms since epoch (`*_ms`); booleans are 0/1 integers on both
// dialects so one query layer serves SQLite and PostgreSQL. Rows handed to callers use `boolean`
// (see the *Row types and queries.ts).
import type { Generated, Selectable } from 'kysely';

export type Int01 = 0 | 1;
export type HealthStatus = 'pass' | 'fail';
export type HealthEventKind = 'pass' | 'fail' | 'missed' | 'connected' | 'disconnected';

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  applied_at_ms: number;
}

export interface AppsTable {
  app_name: string;
  repo: string;
  network: string;
  created_at_ms: number;
  /** Last successful attestation of any agent of the app; null = never (the claim lapses sooner). */
  attested_at_ms: number | null;
}

export interface RegistrationsTable {
  app_name: string;
  release_tag: string;
  repo: string;
  network: string;
  created_at_ms: number;
  expires_at_ms: number;
}

export interface AgentsTable {
  agent_id: string;
  app_name: string;
  repo: string;
  release_tag: string;
  network: string;
  first_seen_ms: number;
  last_connected_ms: number;
  last_disconnected_ms: number | null;
  connected: Int01;
  remote_addr: string | null;
  last_health_ms: number | null;
  last_health_pass_ms: number | null;
  health_status: HealthStatus | null;
  last_attest_ms: number | null;
  attest_ok: Int01;
  attest_evidence_type: string | null;
  attest_failure: string | null;
}

export interface AttestationsTable {
  id: Generated<number>;
  agent_id: string;
  app_name: string;
  at_ms: number;
  reason: string;
  ok: Int01;
  evidence_type: string;
  evidence_hash: string | null;
  policy_version: string | null;
  failure: string | null;
  missed: Int01;
}

export interface HealthEventsTable {
  id: Generated<number>;
  agent_id: string;
  app_name: string;
  at_ms: number;
  kind: HealthEventKind;
  detail: string | null;
}

/** The store's own tables (the one Database type, with the ledger's and the market's: database.ts). */
export interface StoreTables {
  schema_migrations: SchemaMigrationsTable;
  apps: AppsTable;
  registrations: RegistrationsTable;
  agents: AgentsTable;
  attestations: AttestationsTable;
  health_events: HealthEventsTable;
}

type WithBooleans<T, K extends keyof T> = Omit<T, K> & { [P in K]: boolean };

export type AppRow = Selectable<AppsTable>;
export type RegistrationRow = Selectable<RegistrationsTable>;
export type AgentRow = WithBooleans<Selectable<AgentsTable>, 'connected' | 'attest_ok'>;
export type AttestationRow = WithBooleans<Selectable<AttestationsTable>, 'ok' | 'missed'>;
export type HealthEventRow = Selectable<HealthEventsTable>;
