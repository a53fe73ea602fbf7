// The settlement decision for one lease-period, from its evidence (docs/design.md §4, zero tolerance). Pure: the
// caller gathers the records of the lease's node for the lease's app within the period's window.

export interface PeriodEvidence {
  /** [from_ms, to_ms): the lease's share of the period (the first period starts at the lease's creation). */
  from_ms: number;
  to_ms: number;
  /** Agents (bound to the node, serving the app) connected at from_ms. */
  connected_at_start: readonly string[];
  /** health_events of those agents within the window, oldest first. */
  health: readonly { agent_id: string; at_ms: number; kind: string }[];
  /** attestations of those agents within the window. */
  attestations: readonly { at_ms: number; ok: boolean; missed: boolean }[];
  /** Uptime reports for (node, period). */
  usage_reports: readonly { id: string; missed_checks: number }[];
  /** Authorised abuse reports naming this node (and this lease, if they name one) for this period. */
  abuse_reports: readonly { id: string }[];
  /** A gap without any connected agent longer than this is a missed health check. */
  health_timeout_ms: number;
}

export type Outcome = 'post' | 'void';

/** Post only if nothing went wrong; every reason found is returned (stored per lease-period). */
export function decide(e: PeriodEvidence): { outcome: Outcome; reasons: string[] } {
  const reasons: string[] = [];
  const missed = e.health.filter((h) => h.kind === 'missed').length;
  const failed = e.health.filter((h) => h.kind === 'fail').length;
  if (missed > 0) reasons.push(`health_missed:${missed}`);
  if (failed > 0) reasons.push(`health_failed:${failed}`);
  const attMissed = e.attestations.filter((a) => a.missed).length;
  const attFailed = e.attestations.filter((a) => !a.ok && !a.missed).length;
  if (attMissed > 0) reasons.push(`attestation_missed:${attMissed}`);
  if (attFailed > 0) reasons.push(`attestation_failed:${attFailed}`);
  for (const u of e.usage_reports)
    if (u.missed_checks > 0) reasons.push(`uptime_report_missed:${u.id}:${u.missed_checks}`);
  for (const a of e.abuse_reports) reasons.push(`abuse_report:${a.id}`);
  const cov = coverage(e);
  if (cov.covered_ms === 0) reasons.push('no_service');
  else if (cov.longest_gap_ms > e.health_timeout_ms)
    reasons.push(`disconnected:${Math.round(cov.longest_gap_ms / 1000)}s`);
  return { outcome: reasons.length === 0 ? 'post' : 'void', reasons };
}

/** How much of the window some agent was connected, and the longest stretch with none. */
export function coverage(e: Pick<PeriodEvidence, 'from_ms' | 'to_ms' | 'connected_at_start' | 'health'>): {
  covered_ms: number;
  longest_gap_ms: number;
} {
  const up = new Set(e.connected_at_start);
  let covered = 0;
  let longestGap = 0;
  let gap = 0;
  let t = e.from_ms;
  const step = (until: number) => {
    const span = Math.max(0, Math.min(until, e.to_ms) - t);
    if (up.size > 0) {
      covered += span;
      if (span > 0) gap = 0;
    } else {
      gap += span;
      longestGap = Math.max(longestGap, gap);
    }
    t = Math.max(t, Math.min(until, e.to_ms));
  };
  for (const h of e.health) {
    if (h.kind !== 'connected' && h.kind !== 'disconnected') continue;
    if (h.at_ms < e.from_ms || h.at_ms >= e.to_ms) continue;
    step(h.at_ms);
    if (h.kind === 'connected') up.add(h.agent_id);
    else up.delete(h.agent_id);
  }
  step(e.to_ms);
  return { covered_ms: covered, longest_gap_ms: longestGap };
}
