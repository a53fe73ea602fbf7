// Every limit of the launcher's container runtime, with its unit in its name. docs/workloads.md lists them.

/** What an assignment may ask for. */
export const MAX_WORKLOAD_VCPUS = 256;
export const MIN_WORKLOAD_MEMORY_MIB = 16;
export const MAX_WORKLOAD_MEMORY_MIB = 4 * 1024 * 1024;
/** A job runs at most this long (7 days; longer work is a deployment). Below setTimeout's 2^31-1 ms. */
export const MAX_JOB_RUNTIME_MS = 7 * 24 * 3600 * 1000;
export const MIN_JOB_RUNTIME_MS = 1000;
/** pids limit of every container (processes and threads). */
export const DEFAULT_PIDS_LIMIT = 256;
export const MAX_PIDS_LIMIT = 32768;

/** Environment passed to a container: count, name and value sizes (podman's env file reads lines of < 64 KiB). */
export const MAX_ENV_VARS = 128;
export const MAX_ENV_NAME_BYTES = 128;
export const MAX_ENV_VALUE_BYTES = 32 * 1024;
export const MAX_ENV_TOTAL_BYTES = 256 * 1024;
/** Command line of a workload. */
export const MAX_COMMAND_ARGS = 256;
export const MAX_COMMAND_BYTES = 64 * 1024;
export const MAX_IMAGE_NAME_CHARS = 255;
export const MAX_WORKLOAD_ID_CHARS = 64;

/** The tmpfs mounted at /tmp when the root filesystem is read-only; its pages count against the memory limit. */
export const TMPFS_TMP_MAX_BYTES = 64 * 1024 * 1024;
/** conmon's log file per container: past this size it starts the file again (bounds the disk a chatty job uses). */
export const LOG_FILE_MAX_BYTES = 8 * 1024 * 1024;
/** The stdout and stderr tails kept in a workload's result, each. */
export const LOG_TAIL_MAX_BYTES = 64 * 1024;
/** The output file copied back after a job exits. Larger files are reported as too large, not copied. */
export const OUTPUT_FILE_MAX_BYTES = 4 * 1024 * 1024;
/** Where a job finds its output directory inside the container (a per-workload host directory, mounted rw). */
export const OUTPUT_DIR_IN_CONTAINER = '/ee/output';

/** After SIGTERM (cancel, timeout, stop) a container has this long before SIGKILL. */
export const STOP_GRACE_MS = 5_000;
/** conmon's own kill (`podman run --timeout`) fires this long after max runtime + grace: a backstop for when the
 * launcher is down at the deadline. */
export const CONMON_TIMEOUT_SLACK_MS = 5_000;

/** Deadlines of podman commands (spawned processes are killed past them). */
export const PODMAN_COMMAND_TIMEOUT_MS = 60_000;
export const PODMAN_STOP_TIMEOUT_MS = STOP_GRACE_MS + 30_000;
/** Most a podman command may print that the launcher reads (inspect of one container is a few KiB). */
export const PODMAN_OUTPUT_MAX_BYTES = 4 * 1024 * 1024;
/** Most stderr kept from a podman command for error messages. */
export const PODMAN_STDERR_MAX_BYTES = 8 * 1024;

/** While workloads run, their state is also checked this often (a backstop for a missed `died` event). */
export const SWEEP_INTERVAL_MS = 10_000;
/** Their cgroup (OOM kills, CPU usage) is sampled this often. */
export const CGROUP_SAMPLE_INTERVAL_MS = 500;
/** The event stream is restarted after this delay when podman's `events` process ends. */
export const EVENTS_RESTART_DELAY_MS = 1_000;

/** Memory left to the launcher, agents and podman when EE_LAUNCHER_MEMORY_MIB is not set. */
export const RESERVED_MEMORY_MIB = 512;
