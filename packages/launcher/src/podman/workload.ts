// One container the runtime started (or found again after a restart): its max-runtime deadline, cgroup
// sampling, cancel, and collecting its result once it exited. The deadline counts from podman's own start
// time, so a launcher restart neither extends nor resets it.
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { OUTPUT_FILE_MAX_BYTES, PODMAN_STOP_TIMEOUT_MS, STOP_GRACE_MS, CGROUP_SAMPLE_INTERVAL_MS } from '../limits.js';
import { outcome, type StopReason } from '../outcome.js';
import { readOutputFile } from '../output.js';
import { sampleCgroup } from '../cgroup.js';
import type { ImageRef, LogStream, Workload, WorkloadResult } from '../runtime.js';
import { podmanError, type PodmanCli } from './cli.js';
import type { ContainerState } from './inspect.js';
import type { WorkloadRecord } from './labels.js';
import { followLogs, readTails } from './logs.js';

/** What a workload needs from the runtime that owns it. */
export interface WorkloadHost {
  readonly cli: PodmanCli;
  readonly log: Logger;
  now(): number;
  /** One container's state, or null when podman no longer has it. */
  inspect(container_id: string): Promise<ContainerState | null>;
  stopMarkerPath(workload_id: string): string;
  outputDir(workload_id: string): string;
  /** The container exited: its capacity is free again. */
  exitedOut(w: PodmanWorkload): void;
  /** It was removed: forget it. */
  removed(w: PodmanWorkload): void;
}

export async function readStopMarker(path: string): Promise<StopReason | null> {
  try {
    const v = (await readFile(path, 'utf8')).trim();
    return v === 'timeout' || v === 'cancel' ? v : null;
  } catch {
    return null;
  }
}

export class PodmanWorkload implements Workload {
  readonly container_id: string;
  readonly started_at_ms: number;
  readonly host_port: number | null;
  readonly exited: Promise<void>;
  private resolve_exited!: () => void;
  private is_running: boolean;
  private lost = false;
  private stop_reason: StopReason | null;
  private stopping: Promise<void> | null = null;
  private deadline_timer: NodeJS.Timeout | null = null;
  private sample_timer: NodeJS.Timeout | null = null;
  private sampling = false;
  private readonly cgroup_path: string | null;
  private cgroup_oom_kills: number | null = null;
  private cpu_usage_ns: number | null = null;
  private result_promise: Promise<WorkloadResult> | null = null;

  constructor(
    private readonly host: WorkloadHost,
    readonly record: WorkloadRecord,
    state: ContainerState,
    stop_reason: StopReason | null,
  ) {
    this.container_id = state.id;
    this.started_at_ms = state.started_at_ms ?? host.now();
    this.host_port = record.port === null ? null : (state.ports[`${record.port}/tcp`] ?? null);
    this.is_running = state.running;
    this.cgroup_path = state.cgroup_path;
    this.stop_reason = stop_reason;
    this.exited = new Promise((r) => (this.resolve_exited = r));
    if (!this.is_running) this.resolve_exited();
  }

  get workload_id(): string {
    return this.record.workload_id;
  }
  get kind() {
    return this.record.kind;
  }
  get assignment_seq(): number {
    return this.record.assignment_seq;
  }
  get image(): ImageRef {
    return this.record.image;
  }
  get vcpus(): number {
    return this.record.vcpus;
  }
  get memory_mib(): number {
    return this.record.memory_mib;
  }
  get running(): boolean {
    return this.is_running;
  }

  /** Starts the deadline and the cgroup sampler of a running container. */
  arm(): void {
    if (!this.is_running) return;
    if (this.record.max_runtime_ms !== null) {
      const left_ms = this.started_at_ms + this.record.max_runtime_ms - this.host.now();
      const expire = () =>
        this.stopFor('timeout').catch((err: unknown) =>
          // The sweep or conmon's own --timeout still ends it; the result will say timed_out from its times.
          this.host.log.error(
            { workload_id: this.workload_id, err: (err as Error).message },
            'stop at max runtime failed',
          ),
        );
      this.deadline_timer = setTimeout(expire, Math.max(0, left_ms));
      this.deadline_timer.unref();
    }
    if (this.cgroup_path !== null) {
      this.sample_timer = setInterval(() => void this.sample(), CGROUP_SAMPLE_INTERVAL_MS);
      this.sample_timer.unref();
      void this.sample();
    }
  }

  /** Stops timers without touching the container (the runtime is closing). */
  detach(): void {
    if (this.deadline_timer) clearTimeout(this.deadline_timer);
    if (this.sample_timer) clearInterval(this.sample_timer);
    this.deadline_timer = this.sample_timer = null;
  }

  /** Asks podman whether it still runs; marks the exit when it does not (or is gone). */
  async checkExit(): Promise<void> {
    if (!this.is_running) return;
    const s = await this.host.inspect(this.container_id);
    if (s === null) {
      this.lost = true;
      this.markExited();
    } else if (!s.running && s.status !== 'stopping') this.markExited();
  }

  markExited(): void {
    if (!this.is_running) return;
    this.is_running = false;
    this.detach();
    this.host.exitedOut(this);
    this.resolve_exited();
  }

  logs(): LogStream {
    return followLogs(this.host.cli, this.container_id);
  }

  cancel(): Promise<void> {
    return this.stopFor('cancel');
  }

  result(): Promise<WorkloadResult> {
    // A failed collection (podman did not answer) is not kept: the next call tries again.
    this.result_promise ??= this.exited
      .then(() => this.collect())
      .catch((err: unknown) => {
        this.result_promise = null;
        throw err;
      });
    return this.result_promise;
  }

  async remove(): Promise<void> {
    if (this.is_running) await this.cancel();
    await this.exited;
    const r = await this.host.cli.call(['rm', '--force', '--volumes', '--', this.container_id]);
    if (r.code !== 0 && !/no such container/i.test(r.stderr)) throw podmanError(['rm'], r);
    await rm(this.host.outputDir(this.workload_id), { recursive: true, force: true });
    await rm(this.host.stopMarkerPath(this.workload_id), { force: true });
    this.host.removed(this);
  }

  /** SIGTERM, then SIGKILL after the grace period. The reason is written down first, so a launcher that
   * restarts meanwhile still reports `cancelled` / `timed_out` rather than a bare exit code. */
  private stopFor(reason: StopReason): Promise<void> {
    if (!this.is_running) return Promise.resolve();
    if (this.stop_reason === null) this.stop_reason = reason;
    this.stopping ??= (async () => {
      await writeFile(this.host.stopMarkerPath(this.workload_id), this.stop_reason!, { mode: 0o600 });
      this.host.log.info({ workload_id: this.workload_id, reason }, 'stopping container');
      const args = ['stop', `--time=${Math.ceil(STOP_GRACE_MS / 1000)}`, '--', this.container_id];
      const r = await this.host.cli.call(args, { timeout_ms: PODMAN_STOP_TIMEOUT_MS });
      if (r.code !== 0) this.host.log.warn({ workload_id: this.workload_id, stderr: r.stderr }, 'podman stop failed');
      await this.checkExit();
    })().finally(() => (this.stopping = null));
    return this.stopping;
  }

  private async sample(): Promise<void> {
    if (this.sampling || this.cgroup_path === null || !this.is_running) return;
    this.sampling = true;
    try {
      const s = await sampleCgroup(this.cgroup_path);
      if (s.oom_kills !== null) this.cgroup_oom_kills = Math.max(this.cgroup_oom_kills ?? 0, s.oom_kills);
      if (s.cpu_usage_ns !== null) this.cpu_usage_ns = Math.max(this.cpu_usage_ns ?? 0, s.cpu_usage_ns);
    } finally {
      this.sampling = false;
    }
  }

  private async collect(): Promise<WorkloadResult> {
    const s = this.lost ? null : await this.host.inspect(this.container_id);
    const tails = s === null ? null : await readTails(this.host.cli, this.container_id);
    const r = this.record;
    const finished_at_ms = s?.finished_at_ms ?? this.host.now();
    const o = outcome({
      kind: r.kind,
      vcpus: r.vcpus,
      memory_mib: r.memory_mib,
      max_runtime_ms: r.max_runtime_ms,
      exit_code: s?.exit_code ?? null,
      started: s === null || s.started_at_ms !== null,
      started_at_ms: this.started_at_ms,
      finished_at_ms,
      podman_oom_killed: s?.oom_killed ?? false,
      cgroup_oom_kills: this.cgroup_oom_kills,
      stop_reason: this.stop_reason ?? (await readStopMarker(this.host.stopMarkerPath(r.workload_id))),
    });
    const output =
      r.output_file === null
        ? null
        : await readOutputFile(this.host.outputDir(r.workload_id), r.output_file, OUTPUT_FILE_MAX_BYTES);
    return {
      workload_id: r.workload_id,
      kind: r.kind,
      assignment_seq: r.assignment_seq,
      container_id: this.container_id,
      image: r.image,
      state: o.state,
      reason: o.reason,
      exit_code: s?.exit_code ?? null,
      oom_killed: o.oom_killed,
      timed_out: o.timed_out,
      started_at_ms: this.started_at_ms,
      finished_at_ms: Math.max(finished_at_ms, this.started_at_ms),
      wall_ms: o.wall_ms,
      billed_ms: o.billed_ms,
      vcpus: r.vcpus,
      billed_vcpu_ms: o.billed_vcpu_ms,
      cpu_usage_ns: this.cpu_usage_ns,
      stdout_tail: tails?.stdout.tail() ?? Buffer.alloc(0),
      stderr_tail: tails?.stderr.tail() ?? Buffer.alloc(0),
      stdout_truncated: tails?.stdout.truncated ?? false,
      stderr_truncated: tails?.stderr.truncated ?? false,
      output,
    };
  }
}
