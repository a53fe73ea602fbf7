// The market (issue 5, docs/market.md): nodes, stake, leases, settlement, slashing, routing. This class holds
// the live view (which nodes' agents are attested and healthy, from the tunnel hub) and the routing cache, and
// runs the market's operations through the ledger (ops.ts). HTTP routes and the scheduler call it.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import { availableBalance } from '../ledger/accounts.js';
import { providerStake } from '../ledger/chart.js';
import type { LedgerStore } from '../ledger-store/ledger-store.js';
import { runMigrations, type Store } from '../store/index.js';
import type { AgentLink } from '../tunnel/link.js';
import type { MarketHooks, MarketListener } from '../tunnel/ports.js';
import type { LiveView } from '../tunnel/registry.js';
import { fraudOp, slashOp, type FraudResult } from './ops-penalty.js';
import { finalizeOp, renewOp, type FinalizeResult, type MarketTiming, type NodeRow, type PeriodRow } from './ops.js';
import { periodIndex } from './period.js';
import { decide } from './settlement.js';
import {
  effectivePrice,
  eligibility,
  rankNodes,
  requiredStake,
  slashAmount,
  trust,
  type IneligibleReason,
  type Tier,
} from './policy.js';
import { logStateChange } from '../observe/state.js';
import { MARKET_MIGRATIONS } from './store/migrations.js';
import type { Db as MarketDb } from '../store/database.js';
import { gatherEvidence, getNode, trustInputs } from './store/queries.js';

export interface MarketDeps {
  ledger: LedgerStore;
  store: Store;
  /** The tunnel's links, read-only, and node binding (tunnel/registry.ts). */
  live: LiveView;
  clock: Clock;
  config: ControlPlaneConfig;
  log: Logger;
}

const sha256hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const NODE_TOKEN = /^ee_node_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** A node token `ee_node_{16 hex node id}_{secret}`: returned once at registration, only its hash is kept. */
export function newNodeToken(): { node_id: string; token: string; hash: string } {
  const hex = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { node_id: `node_${hex}`, token: `ee_node_${hex}_${secret}`, hash: sha256hex(secret) };
}

export interface NodeState {
  stake_held: bigint;
  stake_required: bigint;
  eligible: boolean;
  reasons: IneligibleReason[];
  trust: number;
  effective_price: number;
  live: { agents: number; attested: number; healthy: number; apps: string[] };
}

/** How often the ranking is recomputed even without a known change (trust moves with new records). */
const RANKING_TTL_MS = 5000;
/** Lease-periods finalized at once by one finalize run (one ledger operation each). */
const FINALIZE_SLICE = 1024;
/** How stale the view of other replicas' agents may get before live() refreshes it in the background. */
const REMOTE_LIVE_TTL_MS = 2000;

/** Per-call cache of provider figures (stake is per provider, shared by its nodes). */
interface StateMemo {
  held: Map<string, bigint>;
  required: Map<string, bigint>;
}

/** An agent held by another replica that its row says is attested and passing health. */
interface RemoteAgent {
  agent_id: string;
  app_name: string;
}

export class Market implements MarketHooks {
  readonly db: MarketDb;
  readonly timing: MarketTiming;
  /** node → routing rank (0 = cheapest effective price) for nodes that may receive traffic. */
  #ranks = new Map<string, number>();
  #trust = new Map<string, number>();
  #refreshing: Promise<void> | null = null;
  #refreshedAt = 0;
  /** node → live agents of OTHER replicas (PostgreSQL), from the shared `agents` rows. */
  #remote = new Map<string, RemoteAgent[]>();
  #remoteRefreshing: Promise<void> | null = null;
  #remoteAt = 0;

  private constructor(readonly deps: MarketDeps) {
    this.db = deps.store.db;
    this.timing = { period_ms: deps.config.settlement_period_ms, grace_ms: deps.config.settlement_grace_ms };
  }

  static async open(deps: MarketDeps): Promise<Market> {
    await runMigrations(deps.store.db, deps.store.dialect, MARKET_MIGRATIONS);
    const m = new Market(deps);
    await m.refreshRanking();
    return m;
  }

  get now(): number {
    return this.deps.clock.now();
  }

  // ---------- Tunnel hooks ----------

  async bindToken(
    a: { agent_id: string; network: string; app_name: string },
    node_token: string,
  ): Promise<{ ok: true; node_id: string } | { ok: false; code: string; message: string }> {
    const m = NODE_TOKEN.exec(node_token);
    const node = m ? await getNode(this.db, `node_${m[1]}`) : undefined;
    const presented = Buffer.from(sha256hex(m?.[2] ?? ''), 'hex');
    if (!node || node.token_hash === null || !timingSafeEqual(presented, Buffer.from(node.token_hash, 'hex'))) {
      return { ok: false, code: 'invalid_node_token', message: 'the node token is not valid' };
    }
    if (node.status === 'banned') return { ok: false, code: 'node_banned', message: `node ${node.id} is banned` };
    if (node.network !== a.network)
      return {
        ok: false,
        code: 'network_mismatch',
        message: `node ${node.id} is registered on network "${node.network}"`,
      };
    const existing = await this.db
      .selectFrom('market_node_agents')
      .select('node_id')
      .where('agent_id', '=', a.agent_id)
      .executeTakeFirst();
    if (existing && existing.node_id !== node.id)
      return { ok: false, code: 'agent_bound_elsewhere', message: `agent ${a.agent_id} is bound to another node` };
    if (!existing) {
      await this.db
        .insertInto('market_node_agents')
        .values({ agent_id: a.agent_id, node_id: node.id, via: 'token', bound_ms: this.now })
        .onConflict((oc) => oc.column('agent_id').doNothing())
        .execute();
    }
    setImmediate(() => void this.refreshRanking());
    return { ok: true, node_id: node.id };
  }

  async tokenBinding(agent_id: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('market_node_agents')
      .select('node_id')
      .where('agent_id', '=', agent_id)
      .where('via', '=', 'token')
      .executeTakeFirst();
    return row?.node_id;
  }

  /**
   * Sealed networks: the verified quote's PPID names the machine. An agent whose PPID belongs to a registered
   * node is bound to it; a node token contradicting the PPID (another node's machine, or not the machine the
   * token's node registered) is attestation fraud by the token's node.
   */
  async onAttested(link: AgentLink, ppid: string | undefined): Promise<void> {
    await this.bindByPpid(link, ppid);
    if (this.attestedListener !== null && !link.closed) await this.attestedListener(link);
  }

  /** Runs after each successful attestation, once the agent is bound (reservations record its receipt key). */
  attestedListener: ((link: AgentLink) => Promise<void>) | null = null;

  private async bindByPpid(link: AgentLink, ppid: string | undefined): Promise<void> {
    if (!link.reg?.sealed || ppid === undefined) return;
    const owner = (await this.db.selectFrom('market_nodes').selectAll().where('ppid', '=', ppid).executeTakeFirst()) as
      NodeRow | undefined;
    if (link.node_id !== null) {
      const claimed = await getNode(this.db, link.node_id);
      if (claimed && claimed.ppid !== ppid) {
        await this.fraud(
          claimed.id,
          `agent ${link.reg.agent_id} presented the node token of ${claimed.id} from a machine with PPID ${ppid}${owner ? ` (node ${owner.id})` : ''}`,
        );
        return;
      }
    }
    if (!owner) return;
    // A banned node's machine stays banned: its agents are refused, not served as unbound agents.
    if (owner.status === 'banned') {
      this.#tunnel?.refuse(link, `node ${owner.id} is banned`);
      return;
    }
    if (link.node_id === null) {
      await this.db
        .insertInto('market_node_agents')
        .values({ agent_id: link.reg.agent_id, node_id: owner.id, via: 'ppid', bound_ms: this.now })
        .onConflict((oc) => oc.column('agent_id').doNothing())
        .execute();
      this.deps.live.bindNode(link, owner.id);
      setImmediate(() => void this.refreshRanking());
    }
  }

  /** The hub: told when the routing order changes and which links the market refuses (it closes them). */
  #tunnel: MarketListener | null = null;
  listen(listener: MarketListener): void {
    if (this.#tunnel !== null) throw new Error('the market has a tunnel listener already');
    this.#tunnel = listener;
  }

  rank(node_id: string): number | undefined {
    if (this.now - this.#refreshedAt > RANKING_TTL_MS) void this.refreshRanking();
    return this.#ranks.get(node_id);
  }

  // ---------- Live state and eligibility ----------

  /**
   * With several replicas (PostgreSQL) each holds some of a node's agents. The others' agents count as live
   * when their rows (written by the replica that holds them) say connected, attested and passing health within
   * the health timeout — a crashed replica's rows go stale and stop counting. This process's own agents are
   * always judged from its tunnel links, never from rows. SQLite has one control plane: nothing to read.
   */
  refreshRemoteLive(): Promise<void> {
    if (this.deps.store.dialect !== 'postgres') return Promise.resolve();
    this.#remoteRefreshing ??= (async () => {
      try {
        const now = this.now;
        const rows = await this.db
          .selectFrom('agents')
          .innerJoin('market_node_agents', 'market_node_agents.agent_id', 'agents.agent_id')
          .select(['agents.agent_id', 'agents.app_name', 'market_node_agents.node_id'])
          .where('agents.connected', '=', 1)
          .where('agents.attest_ok', '=', 1)
          .where('agents.health_status', '=', 'pass')
          .where('agents.last_health_pass_ms', '>=', now - this.deps.config.health_timeout_ms)
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

  live(node_id: string, app?: string): NodeState['live'] {
    const now = this.now;
    if (now - this.#remoteAt > REMOTE_LIVE_TTL_MS) void this.refreshRemoteLive();
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
      if (l.healthy(now, this.deps.config.health_timeout_ms)) {
        healthy++;
        apps.add(l.reg.app_name);
      }
    }
    return { agents, attested, healthy, apps: [...apps].sort() };
  }

  liveEligible = (node_id: string, app?: string): boolean => {
    const l = this.live(node_id, app);
    return l.attested > 0 && l.healthy > 0;
  };

  async stakeHeld(provider: string): Promise<bigint> {
    const a = await this.deps.ledger.account(providerStake(provider));
    return a ? availableBalance(a) : 0n;
  }

  /** The stake a provider must hold: the sum over its active nodes (stake is per provider). */
  async providerRequired(provider: string): Promise<bigint> {
    const rows = await this.db
      .selectFrom('market_nodes')
      .selectAll()
      .where('provider', '=', provider)
      .where('status', '=', 'active')
      .execute();
    return rows.reduce((s, r) => s + requiredStake(BigInt(r.price_micro), r.vcpus, r.tier as Tier), 0n);
  }

  async nodeState(node: NodeRow, app?: string, memo?: StateMemo): Promise<NodeState> {
    const held = memo?.held.get(node.provider) ?? (await this.stakeHeld(node.provider));
    memo?.held.set(node.provider, held);
    let stake_required: bigint;
    if (node.status === 'active') {
      stake_required = memo?.required.get(node.provider) ?? (await this.providerRequired(node.provider));
      memo?.required.set(node.provider, stake_required);
    } else {
      stake_required = requiredStake(BigInt(node.price_micro), node.vcpus, node.tier as Tier);
    }
    const live = this.live(node.id, app);
    const e = eligibility({
      status: node.status,
      stake_held: held,
      stake_required,
      attested_agents: live.attested,
      healthy_agents: live.healthy,
    });
    const t = trust(await trustInputs(this.db, node.id));
    this.#trust.set(node.id, t);
    return {
      stake_held: held,
      stake_required,
      eligible: e.eligible,
      reasons: e.reasons,
      trust: t,
      effective_price: effectivePrice(BigInt(node.price_micro), t),
      live,
    };
  }

  /**
   * Eligible nodes with a routable agent of `app`, cheapest effective price first (lease routing). Nodes with
   * no live agent of the app are dropped first, from memory, so the database work is proportional to the
   * nodes that could serve the app, and each provider's stake figures are read once.
   */
  async candidates(app: string): Promise<(NodeRow & { trust: number })[]> {
    await this.refreshRemoteLive();
    const rows = (await this.db.selectFrom('market_nodes').selectAll().where('status', '=', 'active').execute()).filter(
      (r) => this.liveEligible(r.id, app),
    );
    const memo: StateMemo = { held: new Map(), required: new Map() };
    const out: (NodeRow & { node_id: string; price_micro_b: bigint; trust: number })[] = [];
    for (const r of rows) {
      const s = await this.nodeState(r, app, memo);
      if (s.eligible) out.push({ ...r, node_id: r.id, price_micro_b: BigInt(r.price_micro), trust: s.trust });
    }
    return rankNodes(out.map((o) => ({ ...o, price_micro: o.price_micro_b }))).map((o) => ({
      ...o,
      price_micro: Number(o.price_micro),
    }));
  }

  /**
   * Recomputes the traffic ranking: active nodes whose provider's stake covers its requirement, ordered by
   * effective price. Live agent state is checked per request by the hub itself (routable agents only).
   */
  refreshRanking(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        const rows = await this.db.selectFrom('market_nodes').selectAll().where('status', '=', 'active').execute();
        const ok: { node_id: string; price_micro: bigint; trust: number }[] = [];
        const held = new Map<string, bigint>();
        const required = new Map<string, bigint>();
        for (const r of rows)
          required.set(
            r.provider,
            (required.get(r.provider) ?? 0n) + requiredStake(BigInt(r.price_micro), r.vcpus, r.tier as Tier),
          );
        for (const p of required.keys()) held.set(p, await this.stakeHeld(p));
        for (const r of rows) {
          if ((held.get(r.provider) ?? 0n) < (required.get(r.provider) ?? 0n)) continue;
          const t = trust(await trustInputs(this.db, r.id));
          this.#trust.set(r.id, t);
          ok.push({ node_id: r.id, price_micro: BigInt(r.price_micro), trust: t });
        }
        this.#ranks = new Map(rankNodes(ok).map((n, i) => [n.node_id, i]));
        this.#refreshedAt = this.now;
        this.#tunnel?.routingChanged();
      } catch (err) {
        this.deps.log.error({ err }, 'market: ranking refresh failed');
      } finally {
        this.#refreshing = null;
      }
    })();
    return this.#refreshing;
  }

  // ---------- Settlement, renewals, slashing ----------

  /** Decides one lease-period from its evidence and posts or voids its lock (idempotent). */
  async finalize(p: PeriodRow): Promise<FinalizeResult & { lease_id: string; period: number }> {
    const evidence = await gatherEvidence(this.db, p, this.deps.config.health_timeout_ms);
    const decision = decide(evidence);
    const r = await this.deps.ledger.submit(finalizeOp(p.lease_id, p.period, p.user_id, p.provider, decision));
    return { ...r, lease_id: p.lease_id, period: p.period };
  }

  async finalizePeriod(index: number): Promise<(FinalizeResult & { lease_id: string; period: number })[]> {
    const rows = await this.db
      .selectFrom('market_lease_periods')
      .selectAll()
      .where('period', '=', index)
      .orderBy('lease_id')
      .execute();
    const locked = rows.filter((r) => r.status === 'locked');
    const out: (FinalizeResult & { lease_id: string; period: number })[] = [];
    // In slices: each lease-period is one ledger operation, and the writer's queue is bounded.
    for (let i = 0; i < locked.length; i += FINALIZE_SLICE)
      out.push(...(await Promise.all(locked.slice(i, i + FINALIZE_SLICE).map((r) => this.finalize(r)))));
    for (const r of rows.filter((x) => x.status !== 'locked')) {
      out.push({
        lease_id: r.lease_id,
        period: r.period,
        status: r.status as 'posted' | 'voided' | 'expired',
        reasons: JSON.parse(r.reasons ?? '[]') as string[],
        already: true,
      });
    }
    void this.refreshRanking();
    return out.sort((a, b) => (a.lease_id < b.lease_id ? -1 : 1));
  }

  /** Locks the current period of every active lease that has not locked it yet (or ends the lease). */
  async renewDue(limit = 500): Promise<number> {
    const index = periodIndex(this.now, this.timing.period_ms);
    await this.refreshRemoteLive();
    const due = (await this.db
      .selectFrom('market_leases')
      .innerJoin('market_nodes', 'market_nodes.id', 'market_leases.node_id')
      .select(['market_leases.id', 'market_leases.user_id', 'market_nodes.provider'])
      .where('market_leases.status', '=', 'active')
      .where('market_leases.last_period', '<', index)
      .limit(limit)
      .execute()) as { id: string; user_id: string; provider: string }[];
    await Promise.all(
      due.map((l) =>
        this.deps.ledger.submit(renewOp(l.id, l.user_id, l.provider, index, this.timing, this.liveEligible)),
      ),
    );
    return due.length;
  }

  /** Finalizes every locked lease-period whose period ended more than EE_SETTLEMENT_DELAY ago. */
  async finalizeDue(limit = 500): Promise<number> {
    const rows = await this.db
      .selectFrom('market_lease_periods')
      .selectAll()
      .where('status', '=', 'locked')
      .where('to_ms', '<=', this.now - this.deps.config.settlement_delay_ms)
      .orderBy('to_ms')
      .limit(limit)
      .execute();
    await Promise.all(rows.map((r) => this.finalize(r)));
    if (rows.length > 0) void this.refreshRanking();
    return rows.length;
  }

  /**
   * Outage slashing: a staked node with an active lease whose agents have all been down (disconnected, or
   * connected without a passing health report) longer than its tier's threshold is slashed its tier penalty,
   * once per outage (the id names the outage's start, taken from the records, so every replica agrees).
   */
  async slashOutages(): Promise<number> {
    const nodes = await this.db
      .selectFrom('market_nodes')
      .selectAll()
      .where('status', '=', 'active')
      .where('id', 'in', (eb) => eb.selectFrom('market_leases').select('node_id').where('status', '=', 'active'))
      .execute();
    let slashed = 0;
    const c = this.deps.config;
    for (const n of nodes) {
      if (this.live(n.id).healthy > 0) continue;
      const agents = (await this.db
        .selectFrom('market_node_agents')
        .innerJoin('agents', 'agents.agent_id', 'market_node_agents.agent_id')
        .select([
          'agents.connected',
          'agents.health_status',
          'agents.last_health_pass_ms',
          'agents.last_connected_ms',
          'agents.last_disconnected_ms',
          'agents.first_seen_ms',
        ])
        .where('market_node_agents.node_id', '=', n.id)
        .execute()) as {
        connected: number;
        health_status: string | null;
        last_health_pass_ms: number | null;
        last_connected_ms: number;
        last_disconnected_ms: number | null;
        first_seen_ms: number;
      }[];
      if (agents.length === 0) continue;
      const since = Math.max(
        ...agents.map((a) =>
          a.connected === 1
            ? Math.max(a.last_health_pass_ms ?? 0, a.last_connected_ms)
            : (a.last_disconnected_ms ?? a.first_seen_ms),
        ),
      );
      const threshold =
        n.tier === 'premium'
          ? c.outage_threshold_premium_ms
          : n.tier === 'standard'
            ? c.outage_threshold_standard_ms
            : c.outage_threshold_economy_ms;
      if (this.now - since <= threshold) continue;
      const r = await this.deps.ledger.submit(
        slashOp(
          n.id,
          n.provider,
          `slash:outage:${n.id}:${since}`,
          slashAmount(BigInt(n.price_micro), n.vcpus, n.tier as Tier),
          'outage',
          `outage since ${new Date(since).toISOString()} exceeded the ${n.tier} threshold of ${Math.round(threshold / 1000)} s`,
        ),
      );
      if (r.outcome === 'slashed') slashed++;
    }
    if (slashed > 0) await this.refreshRanking();
    return slashed;
  }

  /** Attestation fraud: whole stake, permanent ban, every open lock voided — one transaction. */
  async fraud(node_id: string, reason: string): Promise<FraudResult> {
    const r = await this.deps.ledger.submit(fraudOp(node_id, reason));
    if (r.outcome === 'banned') {
      logStateChange(this.deps.log, 'node_banned', { node_id, reason });
      for (const l of [...this.deps.live.links]) if (l.node_id === node_id) this.#tunnel?.refuse(l, 'node banned');
      await this.refreshRanking();
    }
    return r;
  }
}
