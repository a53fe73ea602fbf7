// What the control plane and a node's launcher say to each other (docs/workloads.md §2). The launcher dials out
// like an agent (app LAUNCHER_APP, repo LAUNCHER_REPO) and serves this small HTTP API through its tunnel; the
// control plane calls it with the connection's session id (LAUNCHER_SESSION_HEADER), which only the two of them
// know, so a request proxied from the public is refused. Bodies are JSON, validated on both sides (strict).
// Secrets never travel in clear: the env is sealed by the client to the launcher's attested key, results and
// logs are sealed by the launcher to the client's key.
import { z } from 'zod';
import { AppName } from './names.js';

export const LAUNCHER_APP = 'ee-launcher';
export const LAUNCHER_REPO = 'easyenclave/launcher';
export const LAUNCHER_VERSION = '0.1.0';
export const LAUNCHER_SESSION_HEADER = 'ee-launcher-session';

/** HPKE additional data binding a sealed env to its job (a sealed env copied to another job does not open). */
export const jobEnvAad = (job_id: string) => new TextEncoder().encode(`ee-job-env-v1:${job_id}`);
/** HPKE additional data of a job's sealed result. */
export const jobResultAad = (job_id: string) => new TextEncoder().encode(`ee-job-result-v1:${job_id}`);
/** HPKE additional data of a job's sealed log stream. */
export const jobLogsAad = (job_id: string) => new TextEncoder().encode(`ee-job-logs-v1:${job_id}`);
/** Signature domain of a launcher's usage record (signed-record.ts). */
export const USAGE_RECORD_DOMAIN = 'ee-job-usage-v1';

/** Sealed bytes in JSON: standard base64, bounded. */
export const MAX_SEALED_ENV_BYTES = 384 * 1024;
/** A job's output file, at most (copied out of the container after it exits, sealed in its result). */
export const JOB_OUTPUT_MAX_BYTES = 1024 * 1024;
/** The sealed result: the output file and both 64 KiB tails in base64 inside a JSON object, and HPKE's few bytes. */
export const MAX_SEALED_RESULT_BYTES = 2 * 1024 * 1024;
const base64 = (max_bytes: number) =>
  z
    .string()
    .max(Math.ceil(max_bytes / 3) * 4)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 32 bytes of lowercase hex');

export const JOB_ID_RE = /^job_[0-9a-f]{20}$/;
export const JobId = z.string().regex(JOB_ID_RE, 'a job id is job_ and 20 lowercase hex');
export const ImageName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/, 'an image is a local name or id like localhost/app:1');
export const JobCommand = z.array(z.string().max(16 * 1024)).max(256);
/** A job's output file: a file name (no directory) the job writes in `/ee/output/`. */
export const JobOutputFile = z
  .string()
  .max(128)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]*$/, 'a file name without "/" (the job writes it in /ee/output/)');

export const Assignment = z.strictObject({
  job_id: JobId,
  assignment_seq: z.number().int().nonnegative(),
  image: ImageName,
  command: JobCommand.nullable(),
  vcpus: z.number().int().min(1).max(256),
  memory_mib: z.number().int().min(16).max(4_194_304),
  max_runtime_ms: z.number().int().min(1000),
  network: z.boolean(),
  /** base64 HPKE message (aad jobEnvAad) whose plaintext is a JSON object of env variables; null for none. */
  sealed_env: base64(MAX_SEALED_ENV_BYTES).nullable(),
  /** The client's X25519 key: result and logs are sealed to it. */
  result_key: hex32,
  /** A file the job writes in /ee/output/, returned in the sealed result (absent: none). */
  output_file: JobOutputFile.optional(),
});
export type Assignment = z.infer<typeof Assignment>;

/** The usage record a launcher signs with its attested Ed25519 key when a job ends. */
export const UsageRecord = z.strictObject({
  job_id: JobId,
  launcher_id: z.string().max(64),
  /** What ran: the image id (sha256 of its config) and, when podman has one, its manifest digest. */
  image_id: z.string().max(128),
  image_digest: z.string().max(128).nullable(),
  started_at_ms: z.number().int().nonnegative(),
  finished_at_ms: z.number().int().nonnegative(),
  vcpus: z.number().int().positive(),
  /** vCPUs × wall-clock ms, capped at max runtime: what bills. */
  vcpu_ms: z.number().int().nonnegative(),
  exit_code: z.number().int().nullable(),
  state: z.enum(['succeeded', 'failed', 'timed_out', 'cancelled']),
  reason: z.string().max(256),
  /** Increasing per launcher boot, from 1: a record is never counted twice. */
  boot_seq: z.number().int().positive(),
  /** The launcher's per-boot Ed25519 key (hex), the one its attestation binds. */
  receipt_public_key: hex32,
});
export type UsageRecord = z.infer<typeof UsageRecord>;

export const LauncherJob = z.strictObject({
  job_id: JobId,
  state: z.enum(['starting', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled']),
  started_at_ms: z.number().int().nullable(),
  image_id: z.string().max(128).nullable(),
  image_digest: z.string().max(128).nullable(),
  /** Once ended: the result sealed to the client's key (base64), the usage record and its signature. */
  result_sealed: base64(MAX_SEALED_RESULT_BYTES).nullable(),
  usage: UsageRecord.nullable(),
  usage_signature: z
    .string()
    .regex(/^[0-9a-f]{128}$/)
    .nullable(),
});
export type LauncherJob = z.infer<typeof LauncherJob>;

export const MAX_LAUNCHER_JOBS_LISTED = 4096;

export const LauncherState = z.strictObject({
  launcher_id: z.string().max(64),
  capacity: z.strictObject({
    vcpus_total: z.number().int().nonnegative(),
    memory_mib_total: z.number().int().nonnegative(),
    vcpus_free: z.number().int(),
    memory_mib_free: z.number().int(),
  }),
  jobs: z.array(LauncherJob).max(MAX_LAUNCHER_JOBS_LISTED),
  /** The deployment workloads it runs (the control plane stops those it no longer wants). */
  deployments: z.lazy(() => z.array(LauncherDeployment).max(MAX_LAUNCHER_JOBS_LISTED)).optional(),
});
export type LauncherState = z.infer<typeof LauncherState>;

/** The plaintext of a sealed result (what only the client reads). */
export interface JobResultPlain {
  job_id: string;
  state: string;
  reason: string;
  exit_code: number | null;
  oom_killed: boolean;
  timed_out: boolean;
  image: { name: string; id: string; digest: string | null };
  started_at_ms: number;
  finished_at_ms: number;
  billed_vcpu_ms: number;
  /** base64 */
  stdout_tail: string;
  stderr_tail: string;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  /** The output file the job asked for (null: none asked). `bytes` is base64. */
  output?: JobOutputPlain | null;
}

export type JobOutputPlain =
  | { status: 'ok'; bytes: string }
  | { status: 'missing' | 'not_a_file' }
  | { status: 'too_large'; size_bytes: number; max_bytes: number };

/** An error the launcher answers: `{error: {code, message}}`. */
export const LauncherError = z.object({ error: z.object({ code: z.string().max(64), message: z.string().max(1024) }) });

// ---------- Deployments (docs/workloads.md §3) ----------

/** The repo a deployment's agent registers with; its release tag is the image id that runs. */
export const DEPLOYMENT_REPO = 'easyenclave/deployment';
export const DEPLOYMENT_ID_RE = /^dep_[0-9a-f]{20}$/;
export const DeploymentId = z.string().regex(DEPLOYMENT_ID_RE, 'a deployment id is dep_ and 20 lowercase hex');
/** HPKE additional data binding a sealed env to its deployment. */
export const deploymentEnvAad = (deployment_id: string) =>
  new TextEncoder().encode(`ee-deployment-env-v1:${deployment_id}`);

export const DeploymentAssignment = z.strictObject({
  deployment_id: DeploymentId,
  /** The app its agent registers as (the proxy routes the app's hostname to it). */
  app: AppName,
  /** A container per image: a rolling update starts a second one under a new workload id. */
  workload_id: z.string().regex(/^dep_[0-9a-f]{20}-[0-9]{1,6}$/),
  image: ImageName,
  command: JobCommand.nullable(),
  port: z.number().int().min(1).max(65535),
  vcpus: z.number().int().min(1).max(256),
  memory_mib: z.number().int().min(16).max(4_194_304),
  sealed_env: base64(MAX_SEALED_ENV_BYTES).nullable(),
});
export type DeploymentAssignment = z.infer<typeof DeploymentAssignment>;

export const LauncherDeployment = z.strictObject({
  deployment_id: DeploymentId,
  workload_id: z.string().max(64),
  running: z.boolean(),
  image_id: z.string().max(128),
  image_digest: z.string().max(128).nullable(),
  host_port: z.number().int().nullable(),
  /** The id its agent registers with (the workload id). */
  agent_id: z.string().max(64),
});
export type LauncherDeployment = z.infer<typeof LauncherDeployment>;
