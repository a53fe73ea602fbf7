// The tunnel's periodic and health work, through a narrow port: liveness (ping when idle, cut a silent peer),
// the register deadline, re-attestation on the interval or after a policy change, health reports and the
// health timeout (recorded: settlement reads them), and pruning of lapsed app claims and old health events.

import type { Logger } from 'pino';
import { CloseCode, DEAD_AFTER_MS, PING_INTERVAL_MS } from '@easyenclave/protocol';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import type { Store } from '../store/index.js';
import { APP_CLAIM_UNATTESTED_TTL_MS, DAY_MS } from '../app-claims.js';
import type { AgentLink, HealthStatus, PendingChallenge } from './link.js';
import type { LinkRegistry } from './registry.js';

/** How many lapsed claims one prune deletes at most. */
const MAX_PRUNED_CLAIMS = 1000;
/** Health events are kept at least this long (and two settlement periods plus grace when that is longer). */
const MIN_HEALTH_EVENT_RETENTION_MS = 90 * DAY_MS;
/** A passing health report is written at least this often even without a transition. */
const HEALTH_PERSIST_INTERVAL_MS = 30_000;

export interface UpkeepPort {
  readonly config: ControlPlaneConfig;
  readonly clock: Clock;
  readonly log: Logger;
  readonly store: Pick<Store, 'recordHealth' | 'pruneUnattestedClaims' | 'pruneHealthEvents'>;
  readonly registry: LinkRegistry;
  close(link: AgentLink, code: number, reason: string): void;
  /** A silent peer: closed and its socket cut at once (no close handshake to wait for). */
  cut(link: AgentLink, reason: string): void;
  challenge(link: AgentLink, reason: PendingChallenge['reason']): boolean;
  policyGeneration(): number;
  wake(app_name: string): void;
}

export class Upkeep {
  constructor(private readonly port: UpkeepPort) {}

  /** A `health` message from a registered agent. */
  async onHealth(link: AgentLink, status: HealthStatus, detail: string | undefined): Promise<void> {
    const { clock, registry, store } = this.port;
    const now = clock.now();
    const transition = link.reportHealth(status, now);
    // Only the current link of an agent id writes its records (a retired one drains away).
    if (registry.isCurrent(link) && link.takeHealthPersist(transition, now, HEALTH_PERSIST_INTERVAL_MS)) {
      const reg = link.reg!;
      await store.recordHealth({
        agent_id: reg.agent_id,
        app_name: reg.app_name,
        status,
        now_ms: now,
        event: transition,
        ...(detail ? { detail } : {}),
      });
    }
    if (status === 'pass') this.port.wake(link.reg!.app_name);
  }

  /** Every SWEEP_INTERVAL_MS (the hub's timer). */
  sweep(): void {
    const { clock, config, registry, log, store } = this.port;
    const now = clock.now();
    const { health_timeout_ms, register_deadline_ms } = config;
    for (const link of registry.links) {
      const silent = Date.now() - link.last_seen_wall_ms;
      if (silent > DEAD_AFTER_MS) {
        this.port.cut(link, 'no traffic or pong for too long');
        continue;
      }
      if (silent > PING_INTERVAL_MS) link.ws.ping();
      if (link.reg === null && Date.now() - link.accepted_wall_ms > register_deadline_ms) {
        this.port.close(link, CloseCode.NOT_REGISTERED, 'no register message in time');
        continue;
      }
      const reg = link.reg;
      if (!reg || !registry.isCurrent(link)) continue;
      if (link.attested && !link.challenge && link.policy_generation < this.port.policyGeneration())
        this.port.challenge(link, 'policy');
      else if (link.attested && !link.challenge && now >= link.next_attest_at_ms) this.port.challenge(link, 'interval');
      const last_ok = link.last_pass_ms ?? link.connected_at_ms;
      if (!link.health_missed && link.attested && now - last_ok > health_timeout_ms) {
        link.healthMissed();
        log.warn({ agent_id: reg.agent_id, app_name: reg.app_name }, 'health timeout: agent gets no traffic');
        store
          .recordHealth({
            agent_id: reg.agent_id,
            app_name: reg.app_name,
            status: 'missed',
            now_ms: now,
            event: true,
            detail: `no passing health for ${Math.round(health_timeout_ms / 1000)} s`,
          })
          .catch((err) => log.error({ err }, 'failed to record missed health'));
      }
    }
  }

  /**
   * Drops lapsed never-attested app claims (with their agents' rows and records) and health events past their
   * retention, so squatted names and old events do not pile up; also forgets the dropped names.
   */
  async prune(): Promise<{ apps: string[]; health_events: number }> {
    const { store, clock, config, registry } = this.port;
    const now = clock.now();
    const apps = await store.pruneUnattestedClaims(now - APP_CLAIM_UNATTESTED_TTL_MS, MAX_PRUNED_CLAIMS);
    registry.forgetApps(apps);
    const retention_ms = Math.max(
      MIN_HEALTH_EVENT_RETENTION_MS,
      2 * (config.settlement_period_ms + config.settlement_grace_ms),
    );
    const health_events = await store.pruneHealthEvents(now - retention_ms);
    return { apps, health_events };
  }
}
