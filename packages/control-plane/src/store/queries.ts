// The query layer: one implementation for both dialects (Kysely compiles it per dialect).
// Writes that touch more than one row expect to run inside a transaction: the store submits them through
// the store's writer (writer.ts). Every write writes before it reads, so a SQLite writer takes the
// lock up front instead of failing to upgrade a stale read snapshot.
import type { Kysely } from 'kysely';
import type {
  AgentRow,
  AgentsTable,
  AppRow,
  AttestationRow,
  AttestationsTable,
  HealthEventRow,
  Int01,
  RegistrationRow,
} from './schema.js';
import type { Database } from './database.js';

type Db = Kysely<Database>;

const b01 = (v: boolean): Int01 => (v ? 1 : 0);
const toAgentRow = (r: AgentsTable): AgentRow => ({ ...r, connected: r.connected === 1, attest_ok: r.attest_ok === 1 });
const toAttestationRow = (r: Omit<AttestationsTable, 'id'> & { id: number }): AttestationRow => ({
  ...r,
  ok: r.ok === 1,
  missed: r.missed === 1,
});

/** Times must be integer ms: PostgreSQL BIGINT rejects fractions, and SQLite would silently store a REAL. */
function ms(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new RangeError(`${name} must be a non-negative integer of milliseconds, got ${v}`);
  return v;
}
function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

export async function claimApp(
  db: Db,
  a: { app_name: string; repo: string; network: string; now_ms: number },
): Promise<{ ok: true; app: AppRow } | { ok: false; owner_repo: string }> {
  // Race-free without a transaction: the insert either creates the row or does nothing, and an app's
  // owner never changes afterwards, so the SELECT sees the one true owner.
  await db
    .insertInto('apps')
    .values({ app_name: a.app_name, repo: a.repo, network: a.network, created_at_ms: ms('now_ms', a.now_ms) })
    .onConflict((oc) => oc.column('app_name').doNothing())
    .execute();
  const app = await db.selectFrom('apps').selectAll().where('app_name', '=', a.app_name).executeTakeFirstOrThrow();
  return app.repo === a.repo ? { ok: true, app } : { ok: false, owner_repo: app.repo };
}

export async function ensureRegistration(
  db: Db,
  r: { app_name: string; release_tag: string; repo: string; network: string; now_ms: number; ttl_ms: number },
): Promise<RegistrationRow> {
  const created = ms('now_ms', r.now_ms);
  // The TTL counts from the first registration; reconnects must not extend it, hence DO NOTHING.
  await db
    .insertInto('registrations')
    .values({
      app_name: r.app_name,
      release_tag: r.release_tag,
      repo: r.repo,
      network: r.network,
      created_at_ms: created,
      expires_at_ms: ms('expires_at_ms', created + positiveInt('ttl_ms', r.ttl_ms)),
    })
    .onConflict((oc) => oc.columns(['app_name', 'release_tag']).doNothing())
    .execute();
  return db
    .selectFrom('registrations')
    .selectAll()
    .where('app_name', '=', r.app_name)
    .where('release_tag', '=', r.release_tag)
    .executeTakeFirstOrThrow();
}

export const getApp = (db: Db, app_name: string): Promise<AppRow | undefined> =>
  db.selectFrom('apps').selectAll().where('app_name', '=', app_name).executeTakeFirst();

export const listApps = (db: Db): Promise<AppRow[]> => db.selectFrom('apps').selectAll().orderBy('app_name').execute();

export const listRegistrations = (db: Db, app_name: string): Promise<RegistrationRow[]> =>
  db
    .selectFrom('registrations')
    .selectAll()
    .where('app_name', '=', app_name)
    .orderBy('created_at_ms')
    .orderBy('release_tag')
    .execute();

export async function upsertAgentConnected(
  db: Db,
  a: {
    agent_id: string;
    app_name: string;
    repo: string;
    release_tag: string;
    network: string;
    remote_addr: string | null;
    now_ms: number;
  },
): Promise<void> {
  const now = ms('now_ms', a.now_ms);
  const identity = { app_name: a.app_name, repo: a.repo, release_tag: a.release_tag, network: a.network };
  // A new connection is a new session: it has not attested or reported health yet, so the current-state
  // columns are reset (fail closed). The last_* history columns are kept.
  const session = {
    last_connected_ms: now,
    connected: 1,
    remote_addr: a.remote_addr,
    health_status: null,
    attest_ok: 0,
    attest_evidence_type: null,
    attest_failure: null,
  } as const;
  await db
    .insertInto('agents')
    .values({ agent_id: a.agent_id, ...identity, ...session, first_seen_ms: now })
    .onConflict((oc) => oc.column('agent_id').doUpdateSet({ ...identity, ...session }))
    .execute();
  await db
    .insertInto('health_events')
    .values({ agent_id: a.agent_id, app_name: a.app_name, at_ms: now, kind: 'connected', detail: a.remote_addr })
    .execute();
}

export async function markAgentDisconnected(db: Db, agent_id: string, now_ms: number, detail?: string): Promise<void> {
  const now = ms('now_ms', now_ms);
  // Only a connected agent gets a 'disconnected' event, so repeated calls do not duplicate it.
  const row = await db
    .updateTable('agents')
    .set({ connected: 0, last_disconnected_ms: now })
    .where('agent_id', '=', agent_id)
    .where('connected', '=', 1)
    .returning(['app_name'])
    .executeTakeFirst();
  if (!row) return;
  await db
    .insertInto('health_events')
    .values({ agent_id, app_name: row.app_name, at_ms: now, kind: 'disconnected', detail: detail ?? null })
    .execute();
}

export async function markAllAgentsDisconnected(db: Db, now_ms: number): Promise<number> {
  const now = ms('now_ms', now_ms);
  return db.transaction().execute(async (tx) => {
    const rows = await tx
      .updateTable('agents')
      .set({ connected: 0, last_disconnected_ms: now })
      .where('connected', '=', 1)
      .returning(['agent_id', 'app_name'])
      .execute();
    // Chunked: SQLite caps the number of bound parameters per statement.
    for (let i = 0; i < rows.length; i += 500) {
      await tx
        .insertInto('health_events')
        .values(
          rows.slice(i, i + 500).map((r) => ({
            agent_id: r.agent_id,
            app_name: r.app_name,
            at_ms: now,
            kind: 'disconnected' as const,
            detail: 'control plane restarted',
          })),
        )
        .execute();
    }
    return rows.length;
  });
}

export async function recordHealth(
  db: Db,
  h: {
    agent_id: string;
    app_name: string;
    status: 'pass' | 'fail' | 'missed';
    now_ms: number;
    detail?: string;
    event: boolean;
  },
): Promise<void> {
  const now = ms('now_ms', h.now_ms);
  // A miss means no report arrived: the status turns to 'fail' but last_health_ms (last report) stays.
  const set =
    h.status === 'pass'
      ? { health_status: 'pass' as const, last_health_ms: now, last_health_pass_ms: now }
      : h.status === 'fail'
        ? { health_status: 'fail' as const, last_health_ms: now }
        : { health_status: 'fail' as const };
  const res = await db.updateTable('agents').set(set).where('agent_id', '=', h.agent_id).executeTakeFirst();
  if (res.numUpdatedRows === 0n) throw new Error(`recordHealth: unknown agent ${h.agent_id}`);
  if (!h.event) return;
  await db
    .insertInto('health_events')
    .values({ agent_id: h.agent_id, app_name: h.app_name, at_ms: now, kind: h.status, detail: h.detail ?? null })
    .execute();
}

export async function recordAttestation(
  db: Db,
  a: {
    agent_id: string;
    app_name: string;
    now_ms: number;
    reason: string;
    ok: boolean;
    missed: boolean;
    evidence_type: string;
    evidence_hash: string | null;
    policy_version: string | null;
    failure: string | null;
  },
): Promise<void> {
  const now = ms('now_ms', a.now_ms);
  if (a.ok && a.missed) throw new Error('recordAttestation: an attestation cannot be both ok and missed');
  const res = await db
    .updateTable('agents')
    .set({
      attest_ok: b01(a.ok),
      attest_evidence_type: a.evidence_type,
      attest_failure: a.ok ? null : a.failure,
      ...(a.ok ? { last_attest_ms: now } : {}), // last_attest_ms = last *successful* attestation
    })
    .where('agent_id', '=', a.agent_id)
    .executeTakeFirst();
  if (res.numUpdatedRows === 0n) throw new Error(`recordAttestation: unknown agent ${a.agent_id}`);
  if (a.ok) await db.updateTable('apps').set({ attested_at_ms: now }).where('app_name', '=', a.app_name).execute();
  await db
    .insertInto('attestations')
    .values({
      agent_id: a.agent_id,
      app_name: a.app_name,
      at_ms: now,
      reason: a.reason,
      ok: b01(a.ok),
      missed: b01(a.missed),
      evidence_type: a.evidence_type,
      evidence_hash: a.evidence_hash,
      policy_version: a.policy_version,
      failure: a.failure,
    })
    .execute();
}

export async function getAgent(db: Db, agent_id: string): Promise<AgentRow | undefined> {
  const r = await db.selectFrom('agents').selectAll().where('agent_id', '=', agent_id).executeTakeFirst();
  return r && toAgentRow(r);
}

export async function listAgents(db: Db, app_name?: string): Promise<AgentRow[]> {
  let q = db.selectFrom('agents').selectAll();
  if (app_name !== undefined) q = q.where('app_name', '=', app_name);
  return (await q.orderBy('app_name').orderBy('agent_id').execute()).map(toAgentRow);
}

export interface EventQuery {
  agent_id?: string;
  app_name?: string;
  since_ms?: number;
  limit: number;
}

export async function listAttestations(db: Db, f: EventQuery): Promise<AttestationRow[]> {
  let q = db.selectFrom('attestations').selectAll();
  if (f.agent_id !== undefined) q = q.where('agent_id', '=', f.agent_id);
  if (f.app_name !== undefined) q = q.where('app_name', '=', f.app_name);
  if (f.since_ms !== undefined) q = q.where('at_ms', '>=', ms('since_ms', f.since_ms));
  const rows = await q.orderBy('at_ms', 'desc').orderBy('id', 'desc').limit(positiveInt('limit', f.limit)).execute();
  return rows.map(toAttestationRow);
}

export async function listHealthEvents(db: Db, f: EventQuery): Promise<HealthEventRow[]> {
  let q = db.selectFrom('health_events').selectAll();
  if (f.agent_id !== undefined) q = q.where('agent_id', '=', f.agent_id);
  if (f.app_name !== undefined) q = q.where('app_name', '=', f.app_name);
  if (f.since_ms !== undefined) q = q.where('at_ms', '>=', ms('since_ms', f.since_ms));
  return q.orderBy('at_ms', 'desc').orderBy('id', 'desc').limit(positiveInt('limit', f.limit)).execute();
}

/** Why registerAgent refused: the app name belongs to another repo or network, or the agent id to another
 *  app or repo (an agent id is bound to its first app and repo for good). Nothing is written then. */
export type RegisterRefusal =
  { ok: false; app: AppRow } | { ok: false; agent_bound_to: { app_name: string; repo: string } };

/** One registration in one write: check the agent id's binding, claim the name (first repo wins, on its
 *  first network), ensure the release's registration (its TTL counts from the first time) and, unless
 *  `connect` is false (a contender for a live agent id, see tunnel/registration.ts), mark the agent connected. */
export async function registerAgent(
  db: Db,
  a: {
    agent_id: string;
    app_name: string;
    repo: string;
    release_tag: string;
    network: string;
    remote_addr: string | null;
    now_ms: number;
    ttl_ms: number;
    connect?: boolean;
    /** May this registrant take the name from its current holder (app-claims.ts)? Asked only on a mismatch. */
    takeover?: (held: AppRow, live_attested_agent: boolean) => boolean;
  },
): Promise<{ ok: true; app: AppRow; registration: RegistrationRow; taken_from?: AppRow } | RegisterRefusal> {
  // A no-op update, so the transaction writes before it reads (see the top of this file).
  const bound = await db
    .updateTable('agents')
    .set((eb) => ({ app_name: eb.ref('app_name') }))
    .where('agent_id', '=', a.agent_id)
    .returning(['app_name', 'repo'])
    .executeTakeFirst();
  if (bound !== undefined && (bound.app_name !== a.app_name || bound.repo !== a.repo))
    return { ok: false, agent_bound_to: bound };
  await db
    .insertInto('apps')
    .values({ app_name: a.app_name, repo: a.repo, network: a.network, created_at_ms: ms('now_ms', a.now_ms) })
    .onConflict((oc) => oc.column('app_name').doNothing())
    .execute();
  let app = await db.selectFrom('apps').selectAll().where('app_name', '=', a.app_name).executeTakeFirstOrThrow();
  let taken_from: AppRow | undefined;
  if (app.repo !== a.repo || app.network !== a.network) {
    const live = await db
      .selectFrom('agents')
      .select('agent_id')
      .where('app_name', '=', a.app_name)
      .where('connected', '=', 1)
      .where('attest_ok', '=', 1)
      .executeTakeFirst();
    if (a.takeover === undefined || !a.takeover(app, live !== undefined)) return { ok: false, app };
    // The claim lapsed (or yields to a sealed network): it passes to this registrant. The old owner's
    // registrations go (their TTLs were the old repo's); its agents keep their rows and history, and stay
    // bound to the old repo, so they are refused from now on.
    taken_from = app;
    await db.deleteFrom('registrations').where('app_name', '=', a.app_name).execute();
    const now = ms('now_ms', a.now_ms);
    await db
      .updateTable('apps')
      .set({ repo: a.repo, network: a.network, created_at_ms: now, attested_at_ms: null })
      .where('app_name', '=', a.app_name)
      .execute();
    app = { ...app, repo: a.repo, network: a.network, created_at_ms: now, attested_at_ms: null };
  }
  const registration = await ensureRegistration(db, a);
  if (a.connect !== false) await upsertAgentConnected(db, a);
  return { ok: true, app, registration, ...(taken_from ? { taken_from } : {}) };
}

/**
 * Deletes lapsed claims (made at or before `created_before_ms`) that were never attested and have no agent
 * connected, with their agents' rows and records (nothing of them was ever trusted), at most `limit` apps
 * per call. Returns the names deleted.
 */
export async function pruneUnattestedClaims(db: Db, created_before_ms: number, limit: number): Promise<string[]> {
  const cutoff = ms('created_before_ms', created_before_ms);
  // A no-op write first (see the top of this file).
  await db
    .updateTable('apps')
    .set((eb) => ({ repo: eb.ref('repo') }))
    .where('app_name', '=', '')
    .execute();
  const apps = (
    await db
      .selectFrom('apps')
      .select('app_name')
      .where('attested_at_ms', 'is', null)
      .where('created_at_ms', '<=', cutoff)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('agents')
              .select('agent_id')
              .whereRef('agents.app_name', '=', 'apps.app_name')
              .where('agents.connected', '=', 1),
          ),
        ),
      )
      .orderBy('created_at_ms')
      .limit(positiveInt('limit', limit))
      .execute()
  ).map((r) => r.app_name);
  if (apps.length === 0) return [];
  const agents = db.selectFrom('agents').select('agent_id').where('app_name', 'in', apps);
  await db.deleteFrom('health_events').where('agent_id', 'in', agents).execute();
  await db.deleteFrom('attestations').where('agent_id', 'in', agents).execute();
  await db.deleteFrom('agents').where('app_name', 'in', apps).execute();
  await db.deleteFrom('registrations').where('app_name', 'in', apps).execute();
  await db.deleteFrom('apps').where('app_name', 'in', apps).execute();
  return apps;
}

/**
 * Deletes health events older than `before_ms`, except each agent's newest connection event before it
 * (settlement reads it to know whether the agent was connected when a period began).
 */
export async function pruneHealthEvents(db: Db, before_ms: number): Promise<number> {
  const cutoff = ms('before_ms', before_ms);
  const res = await db
    .deleteFrom('health_events as h')
    .where('h.at_ms', '<', cutoff)
    .where((eb) =>
      eb.or([
        eb('h.kind', 'not in', ['connected', 'disconnected']),
        eb(
          'h.id',
          '<',
          eb
            .selectFrom('health_events as n')
            .select((x) => x.fn.max('n.id').as('id'))
            .whereRef('n.agent_id', '=', 'h.agent_id')
            .where('n.kind', 'in', ['connected', 'disconnected'])
            .where('n.at_ms', '<', cutoff),
        ),
      ]),
    )
    .executeTakeFirst();
  return Number(res.numDeletedRows);
}
