// The query layer of apps and their registrations: claims, registration, pruning of lapsed claims. One
// implementation for both dialects (Kysely compiles it per dialect); agents' records are in agents.ts.
// Writes that touch more than one row expect to run inside a transaction: the store submits them through
// the store's writer (writer.ts). Every write writes before it reads, so a SQLite writer takes the
// lock up front instead of failing to upgrade a stale read snapshot.
import type { AppRow, RegistrationRow } from './schema.js';
import type { Db } from './database.js';
import { upsertAgentConnected, type AgentConnection } from './agents.js';
import { ms, positiveInt } from './values.js';

export interface AppClaim {
  app_name: string;
  repo: string;
  network: string;
  now_ms: number;
}

export interface RegistrationInput {
  app_name: string;
  release_tag: string;
  repo: string;
  network: string;
  now_ms: number;
  ttl_ms: number;
}

export interface RegisterAgentInput extends RegistrationInput, AgentConnection {
  /** False for a contender for a live agent id (tunnel/registration.ts): it is not marked connected. */
  connect?: boolean;
  /** May this registrant take the name from its current holder (app-claims.ts)? Asked only on a mismatch. */
  takeover?: (held: AppRow, live_attested_agent: boolean) => boolean;
}

/** The app's row, inserted for this claimant when the name is free. Race-free without a transaction: the insert
 *  either creates the row or does nothing, and the SELECT then sees the one true holder. */
async function claimRow(db: Db, a: AppClaim): Promise<AppRow> {
  await db
    .insertInto('apps')
    .values({ app_name: a.app_name, repo: a.repo, network: a.network, created_at_ms: ms('now_ms', a.now_ms) })
    .onConflict((oc) => oc.column('app_name').doNothing())
    .execute();
  return db.selectFrom('apps').selectAll().where('app_name', '=', a.app_name).executeTakeFirstOrThrow();
}

export async function claimApp(
  db: Db,
  a: AppClaim,
): Promise<{ ok: true; app: AppRow } | { ok: false; owner_repo: string }> {
  // An app's owner never changes through claimApp, so the row read is the one true owner.
  const app = await claimRow(db, a);
  return app.repo === a.repo ? { ok: true, app } : { ok: false, owner_repo: app.repo };
}

export async function ensureRegistration(db: Db, r: RegistrationInput): Promise<RegistrationRow> {
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

/** Why registerAgent refused: the app name belongs to another repo or network, or the agent id to another
 *  app or repo (an agent id is bound to its first app and repo for good). Nothing is written then. */
export type RegisterRefusal =
  { ok: false; app: AppRow } | { ok: false; agent_bound_to: { app_name: string; repo: string } };

/** One registration in one write: check the agent id's binding, claim the name (first repo wins, on its
 *  first network), ensure the release's registration (its TTL counts from the first time) and, unless
 *  `connect` is false (a contender for a live agent id, see tunnel/registration.ts), mark the agent connected. */
export async function registerAgent(
  db: Db,
  a: RegisterAgentInput,
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
  let app = await claimRow(db, a);
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
