// The control plane's view of node launchers. A launcher is an agent of app LAUNCHER_APP bound to a market node
// (node token, or PPID on sealed networks) and attested with its own per-boot keyset; this registry finds the
// launcher of a node among the hub's links and polls its state (capacity and jobs) over its tunnel. The hub
// knows nothing of launchers: this reads its links, and the keyset the attestation flow keeps on each.
import type { Logger } from 'pino';
import { LAUNCHER_APP, LauncherState } from '@easyenclave/protocol/launcher';
import type { Clock } from '../clock.js';
import type { TunnelHub } from '../tunnel/hub.js';
import type { AgentLink } from '../tunnel/link.js';
import { launcherRequest } from './client.js';

/** How often each connected launcher's state is read. */
export const LAUNCHER_POLL_MS = 500;
/** A state older than this is not used to place jobs. */
export const LAUNCHER_STATE_MAX_AGE_MS = 10_000;

export interface LauncherView {
  node_id: string;
  link: AgentLink;
  agent_id: string;
  hpke_public_key: string;
  receipt_public_key: string;
  state: LauncherState;
  /** Wall-clock ms of the poll that read `state`. */
  read_wall_ms: number;
  /** The injected clock's time the state was asked for: a job row last changed before it was known to it. */
  requested_ms: number;
}

export class LauncherRegistry {
  /** node id → its launcher's latest state. */
  private readonly views = new Map<string, LauncherView>();
  /** node id → the injected clock's time a launcher of the node was last seen attested and answering. */
  private readonly seen = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private readonly started_ms: number;
  /** Called after each poll of a launcher (the jobs service reconciles its jobs against the state). */
  onState: ((view: LauncherView) => Promise<void>) | null = null;
  /** Called after each poll too (the deployments service stops workloads it no longer wants). */
  onDeployments: ((view: LauncherView) => Promise<void>) | null = null;

  constructor(
    private readonly hub: TunnelHub,
    private readonly clock: Clock,
    private readonly health_timeout_ms: number,
    private readonly log: Logger,
  ) {
    this.started_ms = clock.now();
  }

  start(): void {
    this.timer = setInterval(() => void this.poll(), LAUNCHER_POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The attested, healthy launcher link of a node, if one is connected to this control plane. */
  link(node_id: string): AgentLink | null {
    const now = this.clock.now();
    let best: AgentLink | null = null;
    for (const l of this.hub.byApp.get(LAUNCHER_APP) ?? []) {
      if (l.node_id !== node_id || l.keyset === null || !l.routable(now, this.health_timeout_ms)) continue;
      if (best === null || l.connected_at_ms > best.connected_at_ms) best = l;
    }
    return best;
  }

  /** Whether an agent of `app` with this id is attested, healthy and routable on `node_id` (a deployment's). */
  agentRoutable(node_id: string, app: string, agent_id: string): boolean {
    const now = this.clock.now();
    return (this.hub.byApp.get(app) ?? []).some(
      (l) => l.node_id === node_id && l.agent_id === agent_id && l.routable(now, this.health_timeout_ms),
    );
  }

  /** The latest state of the node's launcher, when fresh and read on a link that is still usable. */
  view(node_id: string): LauncherView | null {
    const v = this.views.get(node_id);
    if (!v || Date.now() - v.read_wall_ms > LAUNCHER_STATE_MAX_AGE_MS) return null;
    return this.link(node_id) === v.link ? v : null;
  }

  /** Since when (injected clock) the node has had no usable launcher; null while it has one. */
  missingSince(node_id: string): number {
    if (this.link(node_id) !== null) return Number.POSITIVE_INFINITY;
    return this.seen.get(node_id) ?? this.started_ms;
  }

  /** Whether a connected, attested launcher holds this X25519 key. */
  holdsKey(hpke_public_key: string): boolean {
    for (const l of this.hub.byApp.get(LAUNCHER_APP) ?? [])
      if (l.keyset?.hpke_public_key === hpke_public_key) return true;
    return false;
  }

  /** Nodes with a launcher connected now. */
  nodes(): string[] {
    const out = new Set<string>();
    for (const l of this.hub.byApp.get(LAUNCHER_APP) ?? []) if (l.node_id !== null) out.add(l.node_id);
    return [...out].filter((n) => this.link(n) !== null);
  }

  /** Reads every connected launcher's state once (the timer's work; tests may call it). */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      await Promise.all(this.nodes().map((n) => this.pollOne(n)));
    } finally {
      this.polling = false;
    }
  }

  private async pollOne(node_id: string): Promise<void> {
    const link = this.link(node_id);
    if (!link || !link.keyset) return;
    const keyset = link.keyset;
    const requested_ms = this.clock.now();
    try {
      const r = await launcherRequest(link, 'GET', '/v1/launcher/state');
      if (r.status !== 200) throw new Error(`status ${r.status}`);
      const state = LauncherState.parse(JSON.parse(r.body.toString('utf8')));
      const view: LauncherView = {
        node_id,
        link,
        agent_id: link.agent_id ?? '',
        hpke_public_key: keyset.hpke_public_key,
        receipt_public_key: keyset.receipt_public_key,
        state,
        read_wall_ms: Date.now(),
        requested_ms,
      };
      this.views.set(node_id, view);
      this.seen.set(node_id, this.clock.now());
      await this.onState?.(view);
      await this.onDeployments?.(view);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, node_id }, 'launchers: reading a launcher state failed');
    }
  }
}
