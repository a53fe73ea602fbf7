// The router: which agent takes a proxied request. Among routable agents with a free stream slot, those of
// the best-ranked market node, then power of two choices on in-flight streams; when none can take it now, the
// request waits briefly (queue_timeout_ms) for one to become ready. It answers a link, or a refusal *reason*
// that the proxy maps to HTTP through the error catalogue: the tunnel never speaks HTTP statuses.
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import { appStatus, type AppStatusView } from '../app-status.js';
import type { AgentLink } from './link.js';
import type { LinkRegistry } from './registry.js';

/** Why no agent takes a request (docs/protocol.md lists the HTTP answer of each, proxy/refusals.ts maps them). */
export type RouteRefusal =
  | 'unknown_app'
  | 'expired'
  | 'offline'
  | 'draining'
  | 'unhealthy'
  | 'unattested'
  | 'no_eligible_node'
  | 'at_stream_limit'
  | 'no_other_agent'
  | 'shutting_down';

export interface Refused {
  refused: RouteRefusal;
  app_name: string;
}

export const isRefused = (r: AgentLink | Refused): r is Refused => 'refused' in r;

export interface RouterPort {
  registry: LinkRegistry;
  clock: Clock;
  config: ControlPlaneConfig;
  /** Routing order of a node's agents, lower first; undefined = the node may receive no traffic. O(1). */
  rank(node_id: string): number | undefined;
  /** A retired link (replaced by a reconnect) finished its last stream: the hub closes it. */
  closeRetired(link: AgentLink): void;
}

interface Waiter {
  exclude: ReadonlySet<AgentLink> | null;
  resolve: (r: AgentLink | Refused) => void;
  timer: NodeJS.Timeout;
}

/** Agents not bound to any node come after every eligible node (and share one rank). */
const UNBOUND_RANK = Number.MAX_SAFE_INTEGER;
/** Requests waiting per app for an agent; more are refused at once. */
export const MAX_WAITERS_PER_APP = 4096;

export class Router {
  readonly #waiters = new Map<string, Waiter[]>();

  constructor(private readonly port: RouterPort) {}

  /** The injected clock's time (routing decisions use it, never the wall clock). */
  now(): number {
    return this.port.clock.now();
  }

  /** The registered links of an app (for a caller that must pick one agent itself: sealed-key pinning). */
  links(app_name: string): readonly AgentLink[] {
    return this.port.registry.appLinks(app_name);
  }

  /** May agents bound to this node receive traffic now (the market's routing order has it)? */
  mayServe(node_id: string): boolean {
    return this.port.rank(node_id) !== undefined;
  }

  status(app_name: string): AppStatusView {
    const { registry, clock, config } = this.port;
    return appStatus(registry.appLinks(app_name), clock.now(), config);
  }

  /**
   * Among routable agents with a free stream slot, those of the best-ranked market node (lowest effective
   * price among eligible nodes; agents of ineligible nodes are skipped, unbound agents come last), then power
   * of two choices on in-flight streams. A full or excluded node fails over to the next one.
   */
  pick(app_name: string, exclude: ReadonlySet<AgentLink> | null): AgentLink | null {
    const set = this.port.registry.byApp.get(app_name);
    if (!set) return null;
    const now = this.port.clock.now();
    const { health_timeout_ms, max_streams_per_agent } = this.port.config;
    let a: AgentLink | null = null;
    let b: AgentLink | null = null;
    let seen = 0;
    let best = Number.POSITIVE_INFINITY;
    for (const l of set) {
      if (exclude?.has(l) || !l.routable(now, health_timeout_ms) || l.session.activeStreams >= max_streams_per_agent)
        continue;
      let rank = UNBOUND_RANK;
      if (l.node_id !== null) {
        const r = this.port.rank(l.node_id);
        if (r === undefined) continue;
        rank = r;
      }
      if (rank > best) continue;
      if (rank < best) {
        best = rank;
        seen = 0;
        a = b = null;
      }
      // Reservoir-sample two distinct candidates in one pass.
      seen++;
      if (seen === 1) a = l;
      else if (seen === 2) b = l;
      else if (Math.random() * seen < 2) {
        if (Math.random() < 0.5) a = l;
        else b = l;
      }
    }
    if (a === null || b === null) return a;
    const la = a.session.activeStreams;
    const lb = b.session.activeStreams;
    if (la !== lb) return la < lb ? a : b;
    return Math.random() < 0.5 ? a : b; // ties at random, so light sequential traffic spreads too
  }

  /** A routable agent now, or after waiting up to queue_timeout_ms for one; otherwise why not. */
  acquire(
    app_name: string,
    exclude: ReadonlySet<AgentLink> | null,
  ): AgentLink | Refused | Promise<AgentLink | Refused> {
    const link = this.pick(app_name, exclude);
    if (link) return link;
    if (!this.port.registry.knownApps.has(app_name)) return { refused: 'unknown_app', app_name };
    const view = this.status(app_name);
    if (view.status === 'expired' && view.connected_agents > 0) return { refused: 'expired', app_name };
    let list = this.#waiters.get(app_name);
    if (!list) this.#waiters.set(app_name, (list = []));
    if (list.length >= MAX_WAITERS_PER_APP) return this.unavailable(app_name, exclude);
    return new Promise((resolve) => {
      const w: Waiter = {
        exclude,
        resolve,
        timer: setTimeout(() => {
          const l = this.#waiters.get(app_name);
          const i = l ? l.indexOf(w) : -1;
          if (i >= 0) l!.splice(i, 1);
          if (l?.length === 0) this.#waiters.delete(app_name);
          resolve(this.unavailable(app_name, exclude));
        }, this.port.config.queue_timeout_ms),
      };
      list.push(w);
    });
  }

  /** Why no agent could take it: names the reason the app is not serving. */
  unavailable(app_name: string, exclude: ReadonlySet<AgentLink> | null): Refused {
    const view = this.status(app_name);
    if (view.status === 'active' || view.status === 'expiring') {
      if (this.onlyIneligibleNodes(app_name)) return { refused: 'no_eligible_node', app_name };
      return { refused: exclude && exclude.size > 0 ? 'no_other_agent' : 'at_stream_limit', app_name };
    }
    return { refused: view.status, app_name };
  }

  /** Every routable agent of the app is bound to a node the market gives no traffic. */
  private onlyIneligibleNodes(app_name: string): boolean {
    const now = this.port.clock.now();
    let any = false;
    for (const l of this.port.registry.appLinks(app_name)) {
      if (!l.routable(now, this.port.config.health_timeout_ms)) continue;
      if (l.node_id === null || this.port.rank(l.node_id) !== undefined) return false;
      any = true;
    }
    return any;
  }

  /** A proxied stream on `link` finished: its slot is free, and a retired link may now close. */
  streamDone(link: AgentLink, app_name: string): void {
    if (link.draining && !link.closed && link.session.activeStreams === 0 && !this.port.registry.isCurrent(link))
      this.port.closeRetired(link);
    this.wake(app_name);
  }

  /** Something changed that may let waiting requests through (agent ready, stream finished). */
  wake(app_name: string): void {
    const list = this.#waiters.get(app_name);
    if (!list) return;
    while (list.length > 0) {
      const w = list[0]!;
      const link = this.pick(app_name, w.exclude);
      if (!link) break;
      list.shift();
      clearTimeout(w.timer);
      w.resolve(link);
    }
    if (list.length === 0) this.#waiters.delete(app_name);
  }

  /** The routing order changed (stake, slash, ban, trust): let waiting requests try again. */
  wakeAll(): void {
    for (const app of [...this.#waiters.keys()]) this.wake(app);
  }

  /** Shutting down: every waiting request is refused now. */
  close(): void {
    for (const [app_name, list] of this.#waiters) {
      for (const w of list) {
        clearTimeout(w.timer);
        w.resolve({ refused: 'shutting_down', app_name });
      }
    }
    this.#waiters.clear();
  }
}
