// What the tunnel and the market see of each other: the market implements MarketHooks (the tunnel asks it
// about node binding and routing order) and tells a MarketListener (the hub) what it decided about live
// agents. Neither imports the other's module; server.ts wires them.
import type { AgentLink } from './link.js';

export interface MarketHooks {
  /** A `register` carrying a node token: bind the agent to the token's node, or refuse. */
  bindToken(
    a: { agent_id: string; network: string; app_name: string },
    node_token: string,
  ): Promise<{ ok: true; node_id: string } | { ok: false; code: string; message: string }>;
  /** The node an agent id is bound to by a node token, if any: such an id needs that token to register. */
  tokenBinding(agent_id: string): Promise<string | undefined>;
  /** A successful attestation (sealed networks bind agents by the PPID of the verified quote here). */
  onAttested(link: AgentLink, ppid: string | undefined): Promise<void>;
  /** Routing order of a node's agents, lower first; undefined = the node may receive no traffic. O(1): a cache. */
  rank(node_id: string): number | undefined;
  /** The hub listens for the market's decisions about live agents (one listener). */
  listen(listener: MarketListener): void;
}

export interface MarketListener {
  /** The routing order changed (stake, slash, ban, trust): waiting requests may try again. */
  routingChanged(): void;
  /** The market refuses this link (its node is banned): the hub closes it. */
  refuse(link: AgentLink, reason: string): void;
}
