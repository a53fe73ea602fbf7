// The one place that decides how a workload is isolated: a pure function from the spec to `podman run`'s
// arguments (tests check them flag by flag), and the env file podman reads.
import assert from 'node:assert/strict';
import {
  CONMON_TIMEOUT_SLACK_MS,
  LOG_FILE_MAX_BYTES,
  OUTPUT_DIR_IN_CONTAINER,
  STOP_GRACE_MS,
  TMPFS_TMP_MAX_BYTES,
} from '../limits.js';
import type { WorkloadSpec } from '../spec.js';
import { labelsOf, type WorkloadRecord } from './labels.js';

/** Network of a job that asked for one, and of every deployment: a private user-mode stack per container
 * (slirp4netns): no host network namespace, no bridge shared with other containers, no host loopback. */
export const PRIVATE_NETWORK = 'slirp4netns:allow_host_loopback=false';

/** Published ports bind here only: the agent beside the launcher reaches a deployment over loopback. */
export const PUBLISH_HOST_IP = '127.0.0.1';

export function containerName(workload_id: string): string {
  return `ee-${workload_id}`;
}

export interface RunArgsInput {
  spec: WorkloadSpec;
  record: WorkloadRecord;
  launcher_id: string;
  /** The operator's extra `podman run` flags (EE_CONTAINER_RUN_ARGS, already allowlisted). */
  run_args: readonly string[];
  /** Host directory mounted at OUTPUT_DIR_IN_CONTAINER, when the job has an output file. */
  output_host_dir: string | null;
  /** The env file podman reads (a private file that exists only while `podman run` runs). */
  env_file: string;
}

const seconds = (ms: number) => Math.ceil(ms / 1000);

/** `podman run` arguments (after the global flags). The env values travel in the env file, never here. */
export function runArgs(i: RunArgsInput): string[] {
  const { spec, record } = i;
  assert(spec.kind === 'deployment' || spec.max_runtime_ms !== undefined, 'a job has a max runtime');
  assert(spec.kind === 'job' || spec.port !== undefined, 'a deployment has a port');
  const a: string[] = ['run', '--detach', '--pull=never', `--name=${containerName(spec.workload_id)}`];
  for (const [k, v] of labelsOf(record, i.launcher_id)) a.push(`--label=${k}=${v}`);
  a.push(`--env-file=${i.env_file}`);

  // Resources: vCPUs as CFS quota, memory with swap disabled (memory+swap = memory), processes.
  a.push(`--cpus=${spec.vcpus}`, `--memory=${spec.memory_mib}m`, `--memory-swap=${spec.memory_mib}m`);
  a.push(`--pids-limit=${spec.pids_limit}`);

  // Privileges: no capabilities at all, setuid binaries cannot regain any. (Never --privileged.)
  a.push('--cap-drop=all', '--security-opt=no-new-privileges');

  // Network: none for jobs unless asked; otherwise a private slirp4netns stack. Never the host's.
  const networked = spec.kind === 'deployment' || spec.network;
  a.push(`--network=${networked ? PRIVATE_NETWORK : 'none'}`);
  if (spec.kind === 'deployment') a.push(`--publish=${PUBLISH_HOST_IP}::${spec.port}`);

  // Filesystem: read-only root with a size-limited /tmp (tmpfs pages count against the memory limit).
  if (spec.read_only_root) {
    a.push('--read-only', '--read-only-tmpfs=false');
    a.push(`--tmpfs=/tmp:rw,nosuid,nodev,size=${TMPFS_TMP_MAX_BYTES},mode=1777`);
  }
  if (i.output_host_dir !== null) {
    assert(!i.output_host_dir.includes(','), 'output directory path without ","');
    a.push(
      `--mount=type=bind,source=${i.output_host_dir},destination=${OUTPUT_DIR_IN_CONTAINER},rw,nosuid,nodev,noexec`,
    );
  }

  // Logs: conmon's k8s-file in the container's own directory (removed with it), bounded in size; never
  // journald, which would keep a job's output in the system journal.
  a.push('--log-driver=k8s-file', `--log-opt=max-size=${LOG_FILE_MAX_BYTES}`);

  // Stopping: `podman stop` gives the grace period; conmon kills a job itself shortly after max runtime +
  // grace even when the launcher is down at that moment.
  a.push(`--stop-timeout=${seconds(STOP_GRACE_MS)}`);
  if (spec.max_runtime_ms !== undefined)
    a.push(`--timeout=${seconds(spec.max_runtime_ms + STOP_GRACE_MS + CONMON_TIMEOUT_SLACK_MS)}`);

  a.push(...i.run_args);
  // The image by id (what was resolved is what runs), then the command: never parsed as podman flags.
  a.push('--', record.image.id.replace(/^sha256:/, ''), ...(spec.command ?? []));
  return a;
}

/** The env file podman reads: KEY=VALUE lines (values were checked to have no newline or NUL). */
export function envFile(env: Record<string, string>): Buffer {
  return Buffer.from(
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
    'utf8',
  );
}
