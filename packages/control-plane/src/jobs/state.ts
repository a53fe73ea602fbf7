// The job state machine (docs/workloads.md §2), pure: queued → starting → running → succeeded | failed |
// timed_out | cancelled. Every transition carries its time (the injected clock's) and a reason, and says what
// happens to the job's lock: settle the signed usage, refund it in full, or nothing yet. The store and the
// HTTP layer never decide a transition themselves; they apply what this returns.

export const JOB_STATES = ['queued', 'starting', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export type TerminalState = 'succeeded' | 'failed' | 'timed_out' | 'cancelled';

export const TERMINAL: ReadonlySet<JobState> = new Set<JobState>(['succeeded', 'failed', 'timed_out', 'cancelled']);
export const isTerminal = (s: JobState): s is TerminalState => TERMINAL.has(s);

/** Reasons are short human text; bounded so a job row stays bounded (each transition appends one). */
export const MAX_REASON_LENGTH = 256;

/** One step of a job's history. */
export interface JobStep {
  state: JobState;
  at_ms: number;
  reason: string;
}

/**
 * What can happen to a job:
 * - `accepted`: its launcher took the assignment (queued → starting);
 * - `started`: the container runs (queued | starting → running);
 * - `finished`: the launcher's signed usage record arrived with the container's end state; bills its vCPU-ms;
 * - `cancel`: the user cancelled a job no container runs for yet (queued | starting): refunded in full. A
 *   running job is stopped by its launcher and ends by `finished` (state cancelled, billed what it ran);
 * - `refused`: the launcher refused the assignment (tampered sealed env, no capacity, unknown image);
 * - `lost`: its node failed attestation or health, or its launcher vanished: failed, refunded in full;
 * - `retry`: as `lost`, for a job whose user asked for one retry on another node: this attempt is refunded in
 *   full and the job is queued again (on another node, with a fresh lock);
 * - `deadline`: the control plane's own check found it unfinished long past its max runtime with no signed
 *   usage: timed out, refunded in full (nothing runs unpaid for the user, nothing bills without a record).
 */
export type JobEvent =
  | { type: 'accepted' }
  | { type: 'started' }
  | { type: 'finished'; state: TerminalState; reason: string; billed_vcpu_ms: number }
  | { type: 'cancel'; reason: string }
  | { type: 'refused'; reason: string }
  | { type: 'lost'; reason: string }
  | { type: 'retry'; reason: string }
  | { type: 'deadline'; reason: string };

export type Billing = { kind: 'none' } | { kind: 'settle'; billed_vcpu_ms: number } | { kind: 'refund' };

export type TransitionResult =
  | { ok: true; state: JobState; step: JobStep; billing: Billing }
  | { ok: false; code: 'job_finished' | 'invalid_transition'; message: string };

const bound = (s: string) => (s.length > MAX_REASON_LENGTH ? s.slice(0, MAX_REASON_LENGTH) : s);

export function transition(from: JobState, ev: JobEvent, now_ms: number): TransitionResult {
  if (isTerminal(from)) return { ok: false, code: 'job_finished', message: `the job already ended (${from})` };
  const to = (state: JobState, reason: string, billing: Billing): TransitionResult => ({
    ok: true,
    state,
    step: { state, at_ms: now_ms, reason: bound(reason) },
    billing,
  });
  const invalid = (): TransitionResult => ({
    ok: false,
    code: 'invalid_transition',
    message: `a ${from} job cannot take "${ev.type}"`,
  });
  switch (ev.type) {
    case 'accepted':
      return from === 'queued' ? to('starting', 'the launcher accepted the assignment', { kind: 'none' }) : invalid();
    case 'started':
      return from === 'queued' || from === 'starting'
        ? to('running', 'the container started', { kind: 'none' })
        : invalid();
    case 'finished':
      if (!Number.isSafeInteger(ev.billed_vcpu_ms) || ev.billed_vcpu_ms < 0) return invalid();
      return to(ev.state, ev.reason, { kind: 'settle', billed_vcpu_ms: ev.billed_vcpu_ms });
    case 'cancel':
      return from === 'running' ? invalid() : to('cancelled', ev.reason, { kind: 'refund' });
    case 'refused':
      return from === 'running' ? invalid() : to('failed', ev.reason, { kind: 'refund' });
    case 'lost':
      return to('failed', ev.reason, { kind: 'refund' });
    case 'retry':
      return to('queued', ev.reason, { kind: 'refund' });
    case 'deadline':
      return to('timed_out', ev.reason, { kind: 'refund' });
  }
}
