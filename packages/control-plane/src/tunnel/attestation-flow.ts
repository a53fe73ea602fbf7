// The attestation challenge flow: a fresh single-use nonce in `attest_request`, an `attest_response` checked
// within the deadline by the configured verifier, repeated every EE_ATTEST_INTERVAL_SEC. A failed or late
// answer stops routing at once, is recorded (settlement reads these records) and closes the connection.

import { randomInt } from 'node:crypto';
import { CloseCode, type AttestResponseMessage } from '@easyenclave/protocol';
import {
  newNonce,
  parseKeyset,
  POSSESSION_REASONS,
  REPORT_DATA_DOMAINS,
  verifyPossession,
  type Keyset,
} from '@easyenclave/attestation';
import type { TunnelHub } from './hub.js';
import type { AgentLink, PendingChallenge } from './link.js';
import { notePendingChallenge, takeRelayedResponse } from './attestation-relay.js';

type Reason = PendingChallenge['reason'];

export function challenge(
  hub: TunnelHub,
  link: AgentLink,
  reason: Reason,
  on_evidence?: PendingChallenge['on_evidence'],
): boolean {
  if (link.closed || !link.reg || link.challenge) return false;
  const { config, clock } = hub.deps;
  const nonce_hex = newNonce().toString('hex');
  const deadline_s = Math.ceil(config.attest_deadline_ms / 1000);
  link.challenge = {
    nonce_hex,
    reason,
    issued_at_ms: clock.now(),
    timer: setTimeout(() => void missed(hub, link, nonce_hex), config.attest_deadline_ms),
    ...(on_evidence ? { on_evidence } : {}),
  };
  link.challenge.timer.unref();
  notePendingChallenge(hub, link, nonce_hex);
  hub.send(link, { type: 'attest_request', nonce: nonce_hex, deadline_s, reason });
  return true;
}

async function missed(hub: TunnelHub, link: AgentLink, nonce_hex: string): Promise<void> {
  const c = link.challenge;
  if (!c || c.nonce_hex !== nonce_hex || link.closed) return;
  link.challenge = null;
  await fail(
    hub,
    link,
    c,
    [`no attest_response within ${Math.round(hub.deps.config.attest_deadline_ms / 1000)} s`],
    true,
    'unknown',
    null,
  );
}

export async function handleAttestResponse(hub: TunnelHub, link: AgentLink, msg: AttestResponseMessage): Promise<void> {
  // An answer to a client-relayed challenge goes to its client; it is not this agent's attestation.
  if (takeRelayedResponse(link, msg)) return;
  const c = link.challenge;
  // Single use: whatever the outcome, this nonce is spent; a replay or a late answer finds no challenge.
  if (!c || c.nonce_hex !== msg.nonce) {
    if (c) {
      link.challenge = null;
      clearTimeout(c.timer);
    }
    return fail(
      hub,
      link,
      c ?? { nonce_hex: msg.nonce, reason: 'register' },
      ['unknown, expired or replayed nonce'],
      false,
      'unknown',
      null,
    );
  }
  link.challenge = null;
  clearTimeout(c.timer);
  const { verifier, clock } = hub.deps;
  const reg = link.reg!;
  let keyset: Keyset;
  try {
    keyset = parseKeyset(msg.keyset);
  } catch (err) {
    return fail(
      hub,
      link,
      c,
      [`attest_response carries no valid keyset: ${(err as Error).message}`],
      false,
      'unknown',
      null,
    );
  }
  const quote = Buffer.from(msg.quote, 'base64');
  // The policy generation this evidence is checked under: if the policy changes while we verify, the agent is
  // challenged again under the new one (see TunnelHub.reattestAll and the sweep).
  const generation = hub.policy_generation;
  const verdict = await verifier.verify({
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
  if (!verdict.ok) return fail(hub, link, c, verdict.reasons, false, verdict.evidence_type, quote, keyset);
  // The agent's own report_data claim must agree with the verified quote (it is never trusted on its own).
  if (msg.report_data !== verdict.report_data.toString('hex')) {
    return fail(
      hub,
      link,
      c,
      ['report_data in the message differs from the quote'],
      false,
      verdict.evidence_type,
      quote,
      keyset,
    );
  }
  // Proof of possession: the attested keyset signed this nonce and this connection's session id, so evidence
  // obtained elsewhere (another connection, a relay) cannot be presented here. Fails closed.
  if (msg.pop_signature === undefined)
    return fail(hub, link, c, [POSSESSION_REASONS.missing], false, verdict.evidence_type, quote, keyset);
  if (!verifyPossession(keyset, c.nonce_hex, link.session_id ?? '', msg.pop_signature))
    return fail(hub, link, c, [POSSESSION_REASONS.invalid], false, verdict.evidence_type, quote, keyset);
  // A contender for a live agent id takes it over only by proving the holder's keyset; otherwise it is
  // refused here, and nothing is recorded under an id it does not hold.
  if (link.contender) {
    if (!(await hub.promote(link, keyset))) {
      hub.send(link, {
        type: 'error',
        code: 'agent_id_in_use',
        message: `agent "${reg.agent_id}" is held by a live connection with another keyset`,
      });
      hub.closeLink(link, CloseCode.REGISTRATION_REFUSED, 'agent id held by another connection');
      return;
    }
    if (link.closed) return;
  }
  const now = clock.now();
  const was_attested = link.attested;
  link.attested = true;
  link.keyset = keyset;
  link.attest_failure = null;
  link.last_attest_ms = now;
  link.evidence_type = verdict.evidence_type;
  link.policy_generation = generation;
  const { attest_interval_ms } = hub.deps.config;
  // Spread re-attestations (±10%) so agents that connected together do not all answer at once.
  link.next_attest_at_ms =
    now + attest_interval_ms - Math.floor(attest_interval_ms / 10) + randomInt(Math.floor(attest_interval_ms / 5) + 1);
  if (hub.isCurrent(link))
    await hub.deps.store.recordAttestation({
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
  hub.deps.metrics?.attestations.labels('ok').inc();
  hub.send(link, { type: 'attest_result', nonce: c.nonce_hex, ok: true, reasons: [] });
  hub.endHandshake(link);
  if (hub.market?.onAttested) await hub.market.onAttested(link, verdict.ppid);
  if (link.closed) return;
  c.on_evidence?.(quote, keyset, true, []);
  if (!was_attested)
    hub.deps.log.info(
      { agent_id: reg.agent_id, app_name: reg.app_name, evidence_type: verdict.evidence_type },
      'agent attested',
    );
  hub.wake(reg.app_name);
}

async function fail(
  hub: TunnelHub,
  link: AgentLink,
  c: Pick<PendingChallenge, 'nonce_hex' | 'reason' | 'on_evidence'>,
  reasons: string[],
  missed: boolean,
  evidence_type: string,
  quote: Buffer | null,
  keyset?: Keyset,
): Promise<void> {
  const reg = link.reg!;
  const now = hub.deps.clock.now();
  link.attested = false; // stop routing before anything else can interleave
  hub.deps.metrics?.attestations.labels(missed ? 'missed' : 'failed').inc();
  link.attest_failure = reasons.join('; ');
  hub.deps.log.warn({ agent_id: reg.agent_id, app_name: reg.app_name, reasons, missed }, 'attestation failed');
  c.on_evidence?.(quote ?? Buffer.alloc(0), keyset, false, reasons);
  try {
    // A retired link (replaced by a reconnect of the same agent) no longer speaks for the agent's records.
    if (hub.isCurrent(link))
      await hub.deps.store.recordAttestation({
        agent_id: reg.agent_id,
        app_name: reg.app_name,
        now_ms: now,
        reason: c.reason,
        ok: false,
        missed,
        evidence_type,
        evidence_hash: null,
        policy_version: null,
        failure: link.attest_failure.slice(0, 1000),
      });
  } finally {
    hub.send(link, {
      type: 'attest_result',
      nonce: c.nonce_hex,
      ok: false,
      reasons: reasons.slice(0, 32).map((r) => r.slice(0, 512)),
    });
    hub.closeLink(link, CloseCode.ATTESTATION_FAILED, `attestation failed: ${reasons[0] ?? 'unknown'}`);
  }
}
