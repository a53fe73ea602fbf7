// The query layer of agents' records: connections, health, attestations and their event history. One
// implementation for both dialects (Kysely compiles it per dialect); apps and registrations are in apps.ts.
// Writes that touch more than one row expect to run inside a transaction: the store submits them through
// the store's writer (writer.ts). Every write writes before it reads, so a SQLite writer takes the
// lock up front instead of failing to upgrade a stale read snapshot.
import type { AgentRow, AgentsTable, AttestationRow, AttestationsTable, HealthEventRow } from './schema.js';
import type { Db } from './database.js';
import { b01, ms, positiveInt } from './values.js';

const toAgentRow = (r: AgentsTable): AgentRow => ({ ...r, connected: r.connected === 1, attest_ok: r.attest_ok === 1 });
const toAttestationRow = (r: Omit<AttestationsTable, 'id'> & { id: number }): AttestationRow => ({
  ...r,
  ok: r.ok === 1,
  missed: r.missed === 1,
});

export interface AgentConnection {
  agent_id: string;
  app_name: string;
  repo: string;
  release_tag: string;
  network: string;
  remote_addr: string | null;
  now_ms: number;
}

export interface HealthReport {
  agent_id: string;
  app_name: string;
  status: 'pass' | 'fail' | 'missed';
  now_ms: number;
  detail?: string;
  event: boolean;
}

export interface AttestationRecord {
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
}

export async function upsertAgentConnected(db: Db, a: AgentConnection): Promise<void> {
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

export async function recordHealth(db: Db, h: HealthReport): Promise<void> {
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

export async function recordAttestation(db: Db, a: AttestationRecord): Promise<void> {
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
