// The control plane's storage: SQLite (embedded default) or PostgreSQL (several replicas), one query
// layer and one migration set for both. openStore() opens and migrates; nothing else touches the schema.
import type { Kysely } from 'kysely';
import { runMigrations, STORE_MIGRATIONS, type StoreDialect } from './migrations.js';
import { openPostgres } from './postgres.js';
import * as apps from './apps.js';
import * as agents from './agents.js';
import type { AppClaim, RegisterAgentInput, RegisterRefusal, RegistrationInput } from './apps.js';
import type { AgentConnection, AttestationRecord, EventQuery, HealthReport } from './agents.js';
import { GroupCommitter } from './group-commit.js';
import type { Database } from './database.js';
import type { AgentRow, AppRow, AttestationRow, HealthEventRow, RegistrationRow } from './schema.js';
import { openSqlite } from './sqlite.js';

export type { Database, Db, Tx } from './database.js';
export type {
  AgentRow,
  AppRow,
  AttestationRow,
  HealthEventKind,
  HealthEventRow,
  HealthStatus,
  RegistrationRow,
} from './schema.js';
export { runMigrations, STORE_MIGRATIONS, type Migration, type StoreDialect } from './migrations.js';
export { parseInt8 } from './postgres.js';
export type { AppClaim, RegisterAgentInput, RegisterRefusal, RegistrationInput } from './apps.js';
export type { AgentConnection, AttestationRecord, EventQuery, HealthReport } from './agents.js';

export type StoreOptions = { db_path: string } | { database_url: string };

export interface Store {
  readonly dialect: StoreDialect;
  /** The one connection: the ledger and the market add their tables via runMigrations and their own queries. */
  readonly db: Kysely<Database>;
  /** Idempotent. */
  close(): Promise<void>;
  /** Atomically claims app_name for repo if unclaimed. `ok:false` with owner_repo when another repo owns it. */
  claimApp(a: AppClaim): Promise<{ ok: true; app: AppRow } | { ok: false; owner_repo: string }>;
  /** claimApp + ensureRegistration + upsertAgentConnected (unless connect is false) in one write. `ok:false`
   *  with the owning app row when another repo owns the name or it lives on another network, or with
   *  agent_bound_to when the agent id belongs to another app or repo (nothing is written then). */
  registerAgent(
    a: RegisterAgentInput,
  ): Promise<{ ok: true; app: AppRow; registration: RegistrationRow; taken_from?: AppRow } | RegisterRefusal>;
  /** Deletes lapsed never-attested claims made before `created_before_ms` (none with an agent connected), with
   *  their agents' rows and records; at most `limit`. Returns the app names deleted. */
  pruneUnattestedClaims(created_before_ms: number, limit: number): Promise<string[]>;
  /** Deletes health events before `before_ms` except each agent's newest connection event. Returns the count. */
  pruneHealthEvents(before_ms: number): Promise<number>;
  /** Inserts (app_name, release_tag) if absent (created=now, expires=now+ttl_ms); returns the stored row, an existing one unchanged. The app must be claimed. */
  ensureRegistration(r: RegistrationInput): Promise<RegistrationRow>;
  getApp(app_name: string): Promise<AppRow | undefined>;
  listApps(): Promise<AppRow[]>;
  listRegistrations(app_name: string): Promise<RegistrationRow[]>;
  /** Creates or refreshes the agent row (new session: attest_ok=false, health_status=null) and writes a 'connected' event. The app must be claimed. */
  upsertAgentConnected(a: AgentConnection): Promise<void>;
  /** Marks the agent disconnected and writes a 'disconnected' event; no-op if unknown or already disconnected. */
  markAgentDisconnected(agent_id: string, now_ms: number, detail?: string): Promise<void>;
  /** At start-up: nothing is connected to a fresh process. Returns how many agents were marked (each gets an event). */
  markAllAgentsDisconnected(now_ms: number): Promise<number>;
  /** Updates the agent row; inserts a health_events row only when event=true. A miss sets health_status='fail' without touching last_health_ms. Throws for an unknown agent. */
  recordHealth(h: HealthReport): Promise<void>;
  /** Inserts an attestations row and updates the agent (last_attest_ms only when ok). Throws for an unknown agent or ok && missed. */
  recordAttestation(a: AttestationRecord): Promise<void>;
  getAgent(agent_id: string): Promise<AgentRow | undefined>;
  listAgents(app_name?: string): Promise<AgentRow[]>;
  /** Newest first. */
  listAttestations(f: EventQuery): Promise<AttestationRow[]>;
  /** Newest first. */
  listHealthEvents(f: EventQuery): Promise<HealthEventRow[]>;
}

class KyselyStore implements Store {
  #closed: Promise<void> | undefined;
  /** Writes go through group commit: one transaction per event-loop turn. */
  readonly #writes: GroupCommitter;
  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: StoreDialect,
  ) {
    this.#writes = new GroupCommitter(db);
  }

  close(): Promise<void> {
    // Queued writes commit (or fail) before the connection goes.
    this.#closed ??= this.#writes.close().then(() => this.db.destroy());
    return this.#closed;
  }
  claimApp(a: AppClaim) {
    return this.#writes.submit((tx) => apps.claimApp(tx, a));
  }
  registerAgent(a: RegisterAgentInput) {
    return this.#writes.submit((tx) => apps.registerAgent(tx, a));
  }
  pruneUnattestedClaims(created_before_ms: number, limit: number) {
    return this.#writes.submit((tx) => apps.pruneUnattestedClaims(tx, created_before_ms, limit));
  }
  pruneHealthEvents(before_ms: number) {
    return this.#writes.submit((tx) => agents.pruneHealthEvents(tx, before_ms));
  }
  ensureRegistration(r: RegistrationInput) {
    return this.#writes.submit((tx) => apps.ensureRegistration(tx, r));
  }
  getApp(app_name: string) {
    return apps.getApp(this.db, app_name);
  }
  listApps() {
    return apps.listApps(this.db);
  }
  listRegistrations(app_name: string) {
    return apps.listRegistrations(this.db, app_name);
  }
  upsertAgentConnected(a: AgentConnection) {
    return this.#writes.submit((tx) => agents.upsertAgentConnected(tx, a));
  }
  markAgentDisconnected(agent_id: string, now_ms: number, detail?: string) {
    return this.#writes.submit((tx) => agents.markAgentDisconnected(tx, agent_id, now_ms, detail));
  }
  markAllAgentsDisconnected(now_ms: number) {
    return agents.markAllAgentsDisconnected(this.db, now_ms);
  }
  recordHealth(h: HealthReport) {
    return this.#writes.submit((tx) => agents.recordHealth(tx, h));
  }
  recordAttestation(a: AttestationRecord) {
    return this.#writes.submit((tx) => agents.recordAttestation(tx, a));
  }
  getAgent(agent_id: string) {
    return agents.getAgent(this.db, agent_id);
  }
  listAgents(app_name?: string) {
    return agents.listAgents(this.db, app_name);
  }
  listAttestations(f: EventQuery) {
    return agents.listAttestations(this.db, f);
  }
  listHealthEvents(f: EventQuery) {
    return agents.listHealthEvents(this.db, f);
  }
}

/** Opens the database and applies pending migrations. On failure nothing is left open. */
export async function openStore(opts: StoreOptions): Promise<Store> {
  const [db, dialect]: [Kysely<Database>, StoreDialect] =
    'database_url' in opts ? [openPostgres(opts.database_url), 'postgres'] : [openSqlite(opts.db_path), 'sqlite'];
  try {
    await runMigrations(db, dialect, STORE_MIGRATIONS);
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
  return new KyselyStore(db, dialect);
}
