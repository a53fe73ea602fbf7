// The market (issue 5, docs/market.md): nodes, stake, leases, settlement, slashing, routing. This class holds
// the live view (which nodes' agents are attested and healthy, from the tunnel hub) and the routing cache, and
// runs the market's operations through the ledger (ops.ts). HTTP routes and the scheduler call it.
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
import { fraudOp, type FraudResult } from './ops-penalty.js';
import type { MarketTiming, NodeRow, PeriodRow } from './ops.js';
import { tokenMatches, tokenNodeId } from './node-token.js';
import { NodeLive, type LiveCounts } from './remote-live.js';
import * as runs from './settlement-runs.js';
import {
  effectivePrice,
  eligibility,
  rankNodes,
  requiredStake,
  trust,
  type IneligibleReason,
  type Tier,
} from './policy.js';
import { logStateChange } from '../observe/state.js';
import { MARKET_MIGRATIONS } from './store/migrations.js';
import type { Db as MarketDb } from '../store/database.js';
import { getNode, trustInputs } from './store/queries.js';

export { newNodeToken } from './node-token.js';

export interface MarketDeps {
  ledger: LedgerStore;
  store: Store;
  /** The tunnel's links, read-only, and node binding (tunnel/registry.ts). */
  live: LiveView;
  clock: Clock;
  config: ControlPlaneConfig;
  log: Logger;
}

export interface NodeState {
  stake_held: bigint;
  stake_required: bigint;
  eligible: boolean;
  reasons: IneligibleReason[];
  trust: number;
  effective_price: number;
  live: LiveCounts;
}

/** How often the ranking is recomputed even without a known change (trust moves with new records). */
const RANKING_TTL_MS = 5000;
/** Per-call cache of provider figures (stake is per provider, shared by its nodes). */
interface StateMemo {
  held: Map<string, bigint>;
  required: Map<string, bigint>;
}

export class Market implements MarketHooks {
  readonly db: MarketDb;
  readonly timing: MarketTiming;
  /** node → routing rank (0 = cheapest effective price) for nodes that may receive traffic. */
  #ranks = new Map<string, number>();
  #trust = new Map<string, number>();
  #refreshing: Promise<void> | null = null;
  #refreshedAt = 0;
  readonly #live: NodeLive;

  private constructor(readonly deps: MarketDeps) {
    this.db = deps.store.db;
    this.timing = { period_ms: deps.config.settlement_period_ms, grace_ms: deps.config.settlement_grace_ms };
    this.#live = new NodeLive({
      db: this.db,
      store: deps.store,
      live: deps.live,
      log: deps.log,
      health_timeout_ms: deps.config.health_timeout_ms,
      now: () => this.now,
    });
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
    const token_node = tokenNodeId(node_token);
    const node = token_node !== undefined ? await getNode(this.db, token_node) : undefined;
    if (!node || !tokenMatches(node_token, node.token_hash)) {
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
    for (const fn of this.#attested) if (!link.closed) await fn(link);
  }

  readonly #attested: Array<(link: AgentLink) => Promise<void>> = [];
  /** Runs `fn` after each successful attestation, once the agent is bound. Subscribed by a room at its own
   *  construction (reservations record the agent's receipt key), so nothing is bound late. */
  onAgentAttested(fn: (link: AgentLink) => Promise<void>): void {
    this.#attested.push(fn);
  }

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

  /** Refreshes the view of the agents other replicas hold (PostgreSQL; see remote-live.ts). */
  refreshRemoteLive(): Promise<void> {
    return this.#live.refreshRemote();
  }

  live(node_id: string, app?: string): NodeState['live'] {
    return this.#live.counts(node_id, app);
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
  finalize(p: PeriodRow): Promise<runs.Finalized> {
    return runs.finalize(this, p);
  }

  finalizePeriod(index: number): Promise<runs.Finalized[]> {
    return runs.finalizePeriod(this, index);
  }

  /** Locks the current period of every active lease that has not locked it yet (or ends the lease). */
  renewDue(limit = 500): Promise<number> {
    return runs.renewDue(this, limit);
  }

  /** Finalizes every locked lease-period whose period ended more than EE_SETTLEMENT_DELAY ago. */
  finalizeDue(limit = 500): Promise<number> {
    return runs.finalizeDue(this, limit);
  }

  /** Outage slashing (settlement-runs.ts): once per outage, when all of a node's agents are down too long. */
  slashOutages(): Promise<number> {
    return runs.slashOutages(this);
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
