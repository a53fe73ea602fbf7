// The live state of nodes' agents as the market sees it: this replica's tunnel links plus, with PostgreSQL,
// the agents other replicas hold (read from their shared `agents` rows and cached briefly).
import type { Logger } from 'pino';
import type { Store } from '../store/index.js';
import type { Db as MarketDb } from '../store/database.js';
import type { LiveView } from '../tunnel/registry.js';

/** How stale the view of other replicas' agents may get before live() refreshes it in the background. */
const REMOTE_LIVE_TTL_MS = 2000;

/** An agent held by another replica that its row says is attested and passing health. */
interface RemoteAgent {
  agent_id: string;
  app_name: string;
}

// A type literal (not an interface) so it stays assignable to the routes' response schemas.
export type LiveCounts = { agents: number; attested: number; healthy: number; apps: string[] };

export interface NodeLiveDeps {
  db: MarketDb;
  store: Store;
  live: LiveView;
  log: Logger;
  health_timeout_ms: number;
  now: () => number;
}

export class NodeLive {
  /** node → live agents of OTHER replicas (PostgreSQL), from the shared `agents` rows. */
  #remote = new Map<string, RemoteAgent[]>();
  #remoteRefreshing: Promise<void> | null = null;
  #remoteAt = 0;

  constructor(private readonly deps: NodeLiveDeps) {}

  /**
   * With several replicas (PostgreSQL) each holds some of a node's agents. The others' agents count as live
   * when their rows (written by the replica that holds them) say connected, attested and passing health within
   * the health timeout — a crashed replica's rows go stale and stop counting. This process's own agents are
   * always judged from its tunnel links, never from rows. SQLite has one control plane: nothing to read.
   */
  refreshRemote(): Promise<void> {
    if (this.deps.store.dialect !== 'postgres') return Promise.resolve();
    this.#remoteRefreshing ??= (async () => {
      try {
        const now = this.deps.now();
        const rows = await this.deps.db
          .selectFrom('agents')
          .innerJoin('market_node_agents', 'market_node_agents.agent_id', 'agents.agent_id')
          .select(['agents.agent_id', 'agents.app_name', 'market_node_agents.node_id'])
          .where('agents.connected', '=', 1)
          .where('agents.attest_ok', '=', 1)
          .where('agents.health_status', '=', 'pass')
          .where('agents.last_health_pass_ms', '>=', now - this.deps.health_timeout_ms)
          .execute();
        const local = new Set<string>();
        for (const l of this.deps.live.links) if (l.reg) local.add(l.reg.agent_id);
        const remote = new Map<string, RemoteAgent[]>();
        for (const r of rows) {
          if (local.has(r.agent_id)) continue;
          const list = remote.get(r.node_id) ?? [];
          list.push({ agent_id: r.agent_id, app_name: r.app_name });
          remote.set(r.node_id, list);
        }
        this.#remote = remote;
        this.#remoteAt = now;
      } catch (err) {
        this.deps.log.warn({ err }, "market: reading other replicas' agents failed; using this replica's view");
      } finally {
        this.#remoteRefreshing = null;
      }
    })();
    return this.#remoteRefreshing;
  }

  counts(node_id: string, app?: string): LiveCounts {
    const now = this.deps.now();
    if (now - this.#remoteAt > REMOTE_LIVE_TTL_MS) void this.refreshRemote();
    const apps = new Set<string>();
    let agents = 0;
    let attested = 0;
    let healthy = 0;
    for (const r of this.#remote.get(node_id) ?? []) {
      if (app !== undefined && r.app_name !== app) continue;
      agents++;
      attested++;
      healthy++;
      apps.add(r.app_name);
    }
    for (const l of this.deps.live.links) {
      if (l.node_id !== node_id || l.closed || !l.reg) continue;
      if (app !== undefined && l.reg.app_name !== app) continue;
      agents++;
      if (!l.attested) continue;
      attested++;
      if (l.healthy(now, this.deps.health_timeout_ms)) {
        healthy++;
        apps.add(l.reg.app_name);
      }
    }
    return { agents, attested, healthy, apps: [...apps].sort() };
  }
}
