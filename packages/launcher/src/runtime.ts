// The launcher's container runtime, as the assignment layer sees it. One implementation drives podman
// (podman/runtime.ts); nothing above this interface knows about podman, its flags or its JSON.
import type { Readable } from 'node:stream';
import type { WorkloadKind, WorkloadSpecInput } from './spec.js';
import type { CapacitySnapshot } from './capacity.js';

/** A local image, resolved before anything runs; the container runs `id`, so a re-tag cannot change it. */
export interface ImageRef {
  /** The name the assignment asked for. */
  name: string;
  /** The image id: sha256 of the image's config (what ran, exactly). */
  id: string;
  /** The manifest digest podman keeps for it (sha256:…), or null when it has none. */
  digest: string | null;
}

export type WorkloadState = 'succeeded' | 'failed' | 'timed_out' | 'cancelled';

export type OutputFile =
  | { status: 'ok'; bytes: Buffer }
  | { status: 'missing' }
  | { status: 'not_a_file' }
  | { status: 'too_large'; size_bytes: number };

export interface WorkloadResult {
  workload_id: string;
  kind: WorkloadKind;
  assignment_seq: number;
  container_id: string;
  image: ImageRef;
  state: WorkloadState;
  /** Why, in a few words: "exit code 0", "max runtime 2000 ms reached", "out of memory (limit 64 MiB)", … */
  reason: string;
  /** The main process's exit code (128 + signal when a signal ended it); null when the container was lost. */
  exit_code: number | null;
  oom_killed: boolean;
  timed_out: boolean;
  /** podman's start and finish times of the container, ms since the epoch. */
  started_at_ms: number;
  finished_at_ms: number;
  wall_ms: number;
  /** What bills: wall_ms capped at max_runtime_ms (jobs); × vcpus = billed_vcpu_ms. */
  billed_ms: number;
  vcpus: number;
  billed_vcpu_ms: number;
  /** The container's cgroup CPU time, last sampled while it ran (a lower bound; informational). */
  cpu_usage_ns: number | null;
  stdout_tail: Buffer;
  stderr_tail: Buffer;
  /** True when more was written than the tail keeps. */
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  /** The job's output file, when the spec asked for one. */
  output: OutputFile | null;
}

/** stdout and stderr of a container as it writes them (from its start), with backpressure. */
export interface LogStream {
  stdout: Readable;
  stderr: Readable;
  /** Resolves when both streams ended (the container exited and its log was read out, or close()). */
  done: Promise<void>;
  close(): void;
}

export interface Workload {
  readonly workload_id: string;
  readonly kind: WorkloadKind;
  readonly assignment_seq: number;
  readonly container_id: string;
  readonly image: ImageRef;
  readonly vcpus: number;
  readonly memory_mib: number;
  /** The loopback port the deployment's `port` is published on (127.0.0.1 only); null for jobs. */
  readonly host_port: number | null;
  readonly started_at_ms: number;
  /** Still running (false once its exit has been seen). */
  readonly running: boolean;
  /** Resolves once the container has exited (by itself, max runtime, cancel or stop). */
  readonly exited: Promise<void>;
  /** Follows the container's output from its start; ends when it exits. */
  logs(): LogStream;
  /** Waits for the exit, then collects the result (exit code, tails, output, times). Same promise every call. */
  result(): Promise<WorkloadResult>;
  /** Stops it: SIGTERM, SIGKILL after the grace period. Its result says `cancelled`. No-op once exited. */
  cancel(): Promise<void>;
  /** Removes the exited container and what the launcher kept for it (output directory, stop marker). */
  remove(): Promise<void>;
}

export interface ContainerRuntime {
  /** Resolves a local image name to its id and digest. Never pulls: no registry is needed or asked. */
  resolveImage(name: string): Promise<ImageRef>;
  /** Validates the spec, reserves its capacity, creates and starts the container. */
  start(spec: WorkloadSpecInput): Promise<Workload>;
  /** Finds this launcher's containers (by label) that it does not track yet, e.g. after a restart: running
   * ones are watched again (max runtime still counts from their start), exited ones await collection. */
  reconcile(): Promise<Workload[]>;
  get(workload_id: string): Workload | undefined;
  list(): Workload[];
  capacity(): CapacitySnapshot;
  /** Stops watching; containers keep running (a new runtime reconciles them). */
  close(): Promise<void>;
}
