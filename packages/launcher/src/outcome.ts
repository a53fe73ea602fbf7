// How an exited container's facts become a workload's state, reason and billed time. Pure, so the rules are
// tested on their own:
// - billed time is the assignment's vCPUs × wall-clock runtime (podman's start to finish), capped at
//   max_runtime for jobs: predictable for both sides, and what the launcher's signed usage record will carry;
// - a job that reached max_runtime timed out, whatever its exit code (the launcher stops it at that moment);
// - a stop the launcher asked for (cancel) is `cancelled`, unless the job had already reached max runtime;
// - OOM: podman's flag, the cgroup's OOM-kill counter, or an exit by SIGKILL (137) the launcher did not send.
//   A container's init process cannot receive SIGKILL from inside its PID namespace, so that SIGKILL came from
//   the kernel: on hosts where conmon misses OOM kills (cgroup v1) this is how they are seen. (A process that
//   calls exit(137) itself is misread as OOM; the flag is informational and never changes what bills.)
import type { WorkloadState } from './runtime.js';

export type StopReason = 'timeout' | 'cancel';

export interface ExitFacts {
  kind: 'job' | 'deployment';
  vcpus: number;
  memory_mib: number;
  max_runtime_ms: number | null;
  /** null when the container disappeared before its exit could be read. */
  exit_code: number | null;
  /** False for a container podman created but never started (a start that failed half-way). */
  started: boolean;
  started_at_ms: number;
  finished_at_ms: number;
  podman_oom_killed: boolean;
  /** OOM kills counted by the cgroup while it was sampled (null: never sampled). */
  cgroup_oom_kills: number | null;
  /** What the launcher asked for, if it stopped the container. */
  stop_reason: StopReason | null;
}

export interface Outcome {
  state: WorkloadState;
  reason: string;
  oom_killed: boolean;
  timed_out: boolean;
  wall_ms: number;
  billed_ms: number;
  billed_vcpu_ms: number;
}

const SIGKILL_EXIT_CODE = 128 + 9;

export function outcome(f: ExitFacts): Outcome {
  const wall_ms = Math.max(0, f.finished_at_ms - f.started_at_ms);
  const billed_ms = f.max_runtime_ms === null ? wall_ms : Math.min(wall_ms, f.max_runtime_ms);
  const timed_out =
    f.kind === 'job' && (f.stop_reason === 'timeout' || (f.max_runtime_ms !== null && wall_ms >= f.max_runtime_ms));
  const oom_killed =
    f.podman_oom_killed ||
    (f.cgroup_oom_kills ?? 0) > 0 ||
    (f.exit_code === SIGKILL_EXIT_CODE && f.stop_reason === null && !timed_out);
  const base = { oom_killed, timed_out, wall_ms, billed_ms, billed_vcpu_ms: billed_ms * f.vcpus };
  if (timed_out) return { ...base, state: 'timed_out', reason: `max runtime ${f.max_runtime_ms} ms reached` };
  if (f.stop_reason === 'cancel') return { ...base, state: 'cancelled', reason: 'stopped on request' };
  if (f.exit_code === null) return { ...base, state: 'failed', reason: 'container lost before its exit was read' };
  if (!f.started) return { ...base, state: 'failed', reason: 'container never started' };
  if (oom_killed && f.exit_code !== 0)
    return { ...base, state: 'failed', reason: `out of memory (limit ${f.memory_mib} MiB), exit code ${f.exit_code}` };
  if (f.exit_code === 0 && f.kind === 'job') return { ...base, state: 'succeeded', reason: 'exit code 0' };
  // A deployment is meant to run until stopped: any exit on its own is a failure.
  return { ...base, state: 'failed', reason: `exit code ${f.exit_code}` };
}
