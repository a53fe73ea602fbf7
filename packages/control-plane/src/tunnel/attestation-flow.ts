// The attestation challenge flow: a fresh single-use nonce in `attest_request`, an `attest_response` checked
// within the deadline by the configured verifier, repeated every EE_ATTEST_INTERVAL_SEC. A failed or late
// answer stops routing at once, is recorded (settlement reads these records) and closes the connection. It
// works through a narrow port (send, close, store, verifier, ...); it never touches a socket itself.

import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { CloseCode, type AttestResponseMessage, type ControlToAgent } from '@easyenclave/protocol';
import {
  newNonce,
  parseKeyset,
  POSSESSION_REASONS,
  REPORT_DATA_DOMAINS,
  verifyPossession,
  type EvidenceVerifier,
  type Keyset,
} from '@easyenclave/attestation';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import type { ProxyMetrics } from '../metrics.js';
import type { Store } from '../store/index.js';
import type { AgentLink, PendingChallenge } from './link.js';
import type { RelayDesk } from './attestation-relay.js';
import type { LinkRegistry } from './registry.js';

type Reason = PendingChallenge['reason'];

export interface AttestationPort {
  readonly config: ControlPlaneConfig;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: ProxyMetrics | undefined;
  readonly store: Pick<Store, 'recordAttestation'>;
  /** Read at each check (tests and policy reloads may swap it). */
  readonly verifier: EvidenceVerifier;
  readonly registry: LinkRegistry;
  readonly relays: RelayDesk;
  send(link: AgentLink, msg: ControlToAgent): void;
  close(link: AgentLink, code: number, reason: string): void;
  /** The link finished its first attestation: it leaves the handshake count. */
  endHandshake(link: AgentLink): void;
  /** A contender attested with `keyset`: may it take its agent id over? (the hub indexes and retires). */
  promote(link: AgentLink, keyset: Keyset): Promise<boolean>;
  /** The market's hook after a successful attestation (PPID binding on sealed networks). */
  onAttested(link: AgentLink, ppid: string | undefined): Promise<void>;
  /** Requests may be waiting for this app's agents. */
  wake(app_name: string): void;
}

export class AttestationFlow {
  /** Bumped by reattestAll (attestation policy changes); links attested under an older one are re-challenged. */
  #generation = 0;

  constructor(private readonly port: AttestationPort) {}

  get policyGeneration(): number {
    return this.#generation;
  }

  /**
   * The attestation policy changed: challenge every attested agent now (reason 'policy'). An agent with a
   * challenge already pending is judged under the new policy when it answers; one whose evidence was being
   * verified during the change is challenged again by the sweep. Returns how many challenges were sent now.
   */
  reattestAll(): number {
    this.#generation++;
    let sent = 0;
    for (const link of this.port.registry.links)
      if (link.attested && !link.closed && !link.challenge && this.challenge(link, 'policy')) sent++;
    this.port.log.info(
      { challenged: sent, generation: this.#generation },
      're-attesting connected agents after a policy change',
    );
    return sent;
  }

  /** Sends a fresh challenge; false when the link is closed, unregistered or already challenged. */
  challenge(link: AgentLink, reason: Reason): boolean {
    if (link.closed || !link.reg || link.challenge) return false;
    const { config, clock } = this.port;
    const nonce_hex = newNonce().toString('hex');
    const deadline_s = Math.ceil(config.attest_deadline_ms / 1000);
    const timer = setTimeout(() => void this.missed(link, nonce_hex), config.attest_deadline_ms);
    timer.unref();
    link.beginChallenge({ nonce_hex, reason, issued_at_ms: clock.now(), timer });
    this.port.relays.notePendingChallenge(link, nonce_hex);
    this.port.send(link, { type: 'attest_request', nonce: nonce_hex, deadline_s, reason });
    return true;
  }

  private async missed(link: AgentLink, nonce_hex: string): Promise<void> {
    if (link.challenge?.nonce_hex !== nonce_hex || link.closed) return;
    const c = link.takeChallenge()!;
    const s = Math.round(this.port.config.attest_deadline_ms / 1000);
    await this.fail(link, c, [`no attest_response within ${s} s`], true, 'unknown');
  }

  async onResponse(link: AgentLink, msg: AttestResponseMessage): Promise<void> {
    // An answer to a client-relayed challenge goes to its client; it is not this agent's attestation.
    if (this.port.relays.take(link, msg)) return;
    // Single use: whatever the outcome, this nonce is spent; a replay or a late answer finds no challenge.
    const c = link.takeChallenge();
    if (!c || c.nonce_hex !== msg.nonce) {
      const spent = c ?? { nonce_hex: msg.nonce, reason: 'register' as const };
      return this.fail(link, spent, ['unknown, expired or replayed nonce'], false, 'unknown');
    }
    const { clock } = this.port;
    const reg = link.reg!;
    let keyset: Keyset;
    try {
      keyset = parseKeyset(msg.keyset);
    } catch (err) {
      const why = `attest_response carries no valid keyset: ${(err as Error).message}`;
      return this.fail(link, c, [why], false, 'unknown');
    }
    const quote = Buffer.from(msg.quote, 'base64');
    // The policy generation this evidence is checked under: if the policy changes while we verify, the agent
    // is challenged again under the new one (see TunnelHub.reattestAll and the sweep).
    const generation = this.#generation;
    const verdict = await this.port.verifier.verify({
      subject: {
        agent_id: reg.agent_id,
        repo: reg.repo,
        release_tag: reg.release_tag,
        app_name: reg.app_name,
        network: reg.network,
      },
      domain: REPORT_DATA_DOMAINS.tunnel,
      nonce: Buffer.from(c.nonce_hex, 'hex'),
      keyset,
      quote,
      now_ms: clock.now(),
      sealed_required: reg.sealed,
    });
    if (link.closed) return;
    const failWith = (reasons: string[], evidence_type: string) => this.fail(link, c, reasons, false, evidence_type);
    if (!verdict.ok) return failWith(verdict.reasons, verdict.evidence_type);
    // The agent's own report_data claim must agree with the verified quote (it is never trusted on its own).
    if (msg.report_data !== verdict.report_data.toString('hex'))
      return failWith(['report_data in the message differs from the quote'], verdict.evidence_type);
    // Proof of possession: the attested keyset signed this nonce and this connection's session id, so evidence
    // obtained elsewhere (another connection, a relay) cannot be presented here. Fails closed.
    if (msg.pop_signature === undefined) return failWith([POSSESSION_REASONS.missing], verdict.evidence_type);
    if (!verifyPossession(keyset, c.nonce_hex, link.session_id ?? '', msg.pop_signature))
      return failWith([POSSESSION_REASONS.invalid], verdict.evidence_type);
    // A contender for a live agent id takes it over only by proving the holder's keyset; otherwise it is
    // refused here, and nothing is recorded under an id it does not hold.
    if (link.contender) {
      if (!(await this.port.promote(link, keyset))) {
        this.port.send(link, {
          type: 'error',
          code: 'agent_id_in_use',
          message: `agent "${reg.agent_id}" is held by a live connection with another keyset`,
        });
        this.port.close(link, CloseCode.REGISTRATION_REFUSED, 'agent id held by another connection');
        return;
      }
      if (link.closed) return;
    }
    const now = clock.now();
    const was_attested = link.attested;
    const { attest_interval_ms } = this.port.config;
    link.attestOk({
      keyset,
      evidence_type: verdict.evidence_type,
      now_ms: now,
      policy_generation: generation,
      // Spread re-attestations (±10%) so agents that connected together do not all answer at once.
      next_attest_at_ms:
        now +
        attest_interval_ms -
        Math.floor(attest_interval_ms / 10) +
        randomInt(Math.floor(attest_interval_ms / 5) + 1),
    });
    if (this.port.registry.isCurrent(link))
      await this.port.store.recordAttestation({
        agent_id: reg.agent_id,
        app_name: reg.app_name,
        now_ms: now,
        reason: c.reason,
        ok: true,
        missed: false,
        evidence_type: verdict.evidence_type,
        evidence_hash: verdict.evidence_hash,
        policy_version: verdict.policy_version,
        failure: null,
      });
    this.port.metrics?.attestations.labels('ok').inc();
    this.port.send(link, { type: 'attest_result', nonce: c.nonce_hex, ok: true, reasons: [] });
    this.port.endHandshake(link);
    await this.port.onAttested(link, verdict.ppid);
    if (link.closed) return;
    if (!was_attested)
      this.port.log.info(
        { agent_id: reg.agent_id, app_name: reg.app_name, evidence_type: verdict.evidence_type },
        'agent attested',
      );
    this.port.wake(reg.app_name);
  }

  private async fail(
    link: AgentLink,
    c: Pick<PendingChallenge, 'nonce_hex' | 'reason'>,
    reasons: string[],
    missed: boolean,
    evidence_type: string,
  ): Promise<void> {
    const reg = link.reg!;
    const { clock, log, metrics, store, registry } = this.port;
    const now = clock.now();
    link.attestFailed(reasons.join('; '));
    metrics?.attestations.labels(missed ? 'missed' : 'failed').inc();
    log.warn({ agent_id: reg.agent_id, app_name: reg.app_name, reasons, missed }, 'attestation failed');
    try {
      // A retired link (replaced by a reconnect) or a contender does not speak for the agent's records.
      if (registry.isCurrent(link))
        await store.recordAttestation({
          agent_id: reg.agent_id,
          app_name: reg.app_name,
          now_ms: now,
          reason: c.reason,
          ok: false,
          missed,
          evidence_type,
          evidence_hash: null,
          policy_version: null,
          failure: (link.attest_failure ?? '').slice(0, 1000),
        });
    } finally {
      this.port.send(link, {
        type: 'attest_result',
        nonce: c.nonce_hex,
        ok: false,
        reasons: reasons.slice(0, 32).map((r) => r.slice(0, 512)),
      });
      this.port.close(link, CloseCode.ATTESTATION_FAILED, `attestation failed: ${reasons[0] ?? 'unknown'}`);
    }
  }
}
