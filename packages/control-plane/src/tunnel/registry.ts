// The registry of links: pure data, no sockets, no I/O. Which links exist, which one is the current link of
// each agent id, the registered links of each app, and the app names this process knows (mirrored from the
// store so the hot path never queries it). Indexing a link reports the link it displaced (a reconnect of the
// same agent id) instead of closing it: only the hub closes sockets. The market reads it as its live view
// and binds agents to nodes through it.
import type { AgentLink } from './link.js';

/** What the market reads of the tunnel (and nothing else of it). */
export interface LiveView {
  readonly links: ReadonlySet<AgentLink>;
  readonly byAgentId: ReadonlyMap<string, AgentLink>;
  readonly byApp: ReadonlyMap<string, readonly AgentLink[]>;
  bindNode(link: AgentLink, node_id: string): void;
}

export interface KnownApp {
  repo: string;
  network: string;
}

export class LinkRegistry implements LiveView {
  readonly links = new Set<AgentLink>();
  /** Registered links per app: a plain array (most apps have one or a few agents; a Set costs ~150 B more). */
  readonly byApp = new Map<string, AgentLink[]>();
  readonly byAgentId = new Map<string, AgentLink>();
  /** App name → owning repo and network. */
  readonly knownApps = new Map<string, KnownApp>();

  add(link: AgentLink): void {
    this.links.add(link);
  }

  /**
   * Indexes a registered link for routing as the current link of its agent id. Returns the link it displaced
   * (the previous current link of that id, now no longer current), for the caller to retire: it is indexed
   * *before* anything is done to the old one, so the old link's removal knows it is no longer current.
   */
  index(link: AgentLink): AgentLink | null {
    const reg = link.reg;
    if (reg === null) throw new Error('only a registered link is indexed');
    const prev = this.byAgentId.get(reg.agent_id) ?? null;
    this.byAgentId.set(reg.agent_id, link);
    const list = this.byApp.get(reg.app_name);
    if (!list) this.byApp.set(reg.app_name, [link]);
    else if (!list.includes(link)) list.push(link);
    return prev !== link ? prev : null;
  }

  /** Forgets a link. Returns true when it was the current link of its agent id (its agent is now gone). */
  remove(link: AgentLink): boolean {
    this.links.delete(link);
    const reg = link.reg;
    if (reg === null) return false;
    const list = this.byApp.get(reg.app_name);
    const i = list ? list.indexOf(link) : -1;
    if (i >= 0) list!.splice(i, 1);
    if (list?.length === 0) this.byApp.delete(reg.app_name);
    if (this.byAgentId.get(reg.agent_id) !== link) return false;
    this.byAgentId.delete(reg.agent_id);
    return true;
  }

  /** Only the current link of an agent id speaks for that agent's records (a retired one drains away). */
  isCurrent(link: AgentLink): boolean {
    return link.reg !== null && this.byAgentId.get(link.reg.agent_id) === link;
  }

  appLinks(app_name: string): readonly AgentLink[] {
    return this.byApp.get(app_name) ?? NONE;
  }

  bindNode(link: AgentLink, node_id: string): void {
    link.bindNode(node_id);
  }

  /** Records an app's owner; one entry per app, replaced only when it changes (links share its strings). */
  noteApp(app_name: string, repo: string, network: string): KnownApp {
    let known = this.knownApps.get(app_name);
    if (known === undefined || known.repo !== repo || known.network !== network)
      this.knownApps.set(app_name, (known = { repo, network }));
    return known;
  }

  /** Forgets app names the store pruned, unless a link of the app is still registered here. */
  forgetApps(names: readonly string[]): void {
    for (const name of names) if (!this.byApp.has(name)) this.knownApps.delete(name);
  }
}

const NONE: readonly AgentLink[] = [];
