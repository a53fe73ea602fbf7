// What an assignment asks the container runtime to run, validated once at the edge (zod). Everything later
// trusts these types: names cannot start with "-" (never parsed as podman flags), env values fit podman's
// line-based env file, and every number is bounded (limits.ts).
import { z } from 'zod';
import { JobOutputFile } from '@easyenclave/protocol/launcher';
import {
  DEFAULT_PIDS_LIMIT,
  MAX_COMMAND_ARGS,
  MAX_COMMAND_BYTES,
  MAX_ENV_NAME_BYTES,
  MAX_ENV_TOTAL_BYTES,
  MAX_ENV_VALUE_BYTES,
  MAX_ENV_VARS,
  MAX_IMAGE_NAME_CHARS,
  MAX_JOB_RUNTIME_MS,
  MAX_PIDS_LIMIT,
  MAX_WORKLOAD_ID_CHARS,
  MAX_WORKLOAD_MEMORY_MIB,
  MAX_WORKLOAD_VCPUS,
  MIN_JOB_RUNTIME_MS,
  MIN_WORKLOAD_MEMORY_MIB,
} from './limits.js';
import { RuntimeError } from './errors.js';

export const WorkloadKind = z.enum(['job', 'deployment']);
export type WorkloadKind = z.infer<typeof WorkloadKind>;

export const WorkloadId = z
  .string()
  .max(MAX_WORKLOAD_ID_CHARS)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'letters, digits, "_" and "-", starting with a letter or digit');

/** A local image reference: name[:tag][@digest], or an image id. Never starts with "-". */
export const ImageName = z
  .string()
  .max(MAX_IMAGE_NAME_CHARS)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/, 'an image name such as "localhost/app:1" or an image id');

export const EnvName = z
  .string()
  .max(MAX_ENV_NAME_BYTES)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

// Newlines end a line of podman's env file, NUL cannot be in an environment.
const EnvValue = z
  .string()
  .refine((v) => !/[\n\r\0]/.test(v), 'must not contain newlines or NUL')
  .refine((v) => Buffer.byteLength(v) <= MAX_ENV_VALUE_BYTES, `must be at most ${MAX_ENV_VALUE_BYTES} bytes`);

const Arg = z.string().refine((v) => !v.includes('\0'), 'must not contain NUL');

/** A file name (no directory) inside the job's output directory. */
export const OutputFileName = JobOutputFile;

export const WorkloadSpec = z
  .strictObject({
    workload_id: WorkloadId,
    kind: WorkloadKind,
    /** The control plane's per-launcher sequence number of the assignment (labels the container). */
    assignment_seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    image: ImageName,
    /** argv given to the image (after its entrypoint, if it has one); the image's CMD when absent. */
    command: z.array(Arg).max(MAX_COMMAND_ARGS).optional(),
    /** Secret values: passed to the container, never on a command line or in a file the launcher keeps. */
    env: z.record(EnvName, EnvValue).default({}),
    vcpus: z.number().int().min(1).max(MAX_WORKLOAD_VCPUS),
    memory_mib: z.number().int().min(MIN_WORKLOAD_MEMORY_MIB).max(MAX_WORKLOAD_MEMORY_MIB),
    pids_limit: z.number().int().min(16).max(MAX_PIDS_LIMIT).default(DEFAULT_PIDS_LIMIT),
    /** Jobs only (required): stopped (then killed after the grace period) when it is reached. */
    max_runtime_ms: z.number().int().min(MIN_JOB_RUNTIME_MS).max(MAX_JOB_RUNTIME_MS).optional(),
    /** Jobs: no network unless true. Deployments always have one (their published port needs it). */
    network: z.boolean().default(false),
    /** Deployments only (required): the container port published on a loopback host port. */
    port: z.number().int().min(1).max(65535).optional(),
    /** Jobs only: a file the job writes into its output directory, copied back after it exits. */
    output_file: OutputFileName.optional(),
    read_only_root: z.boolean().default(true),
  })
  .superRefine((s, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (s.kind === 'job') {
      if (s.max_runtime_ms === undefined) issue('max_runtime_ms', 'is required for a job');
      if (s.port !== undefined) issue('port', 'is for deployments only');
    } else {
      if (s.port === undefined) issue('port', 'is required for a deployment');
      if (s.max_runtime_ms !== undefined) issue('max_runtime_ms', 'is for jobs only');
      if (s.output_file !== undefined) issue('output_file', 'is for jobs only');
    }
    const env = Object.entries(s.env);
    if (env.length > MAX_ENV_VARS) issue('env', `at most ${MAX_ENV_VARS} variables`);
    const env_bytes = env.reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v) + 2, 0);
    if (env_bytes > MAX_ENV_TOTAL_BYTES) issue('env', `at most ${MAX_ENV_TOTAL_BYTES} bytes in all`);
    const cmd_bytes = (s.command ?? []).reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
    if (cmd_bytes > MAX_COMMAND_BYTES) issue('command', `at most ${MAX_COMMAND_BYTES} bytes in all`);
  });
export type WorkloadSpec = z.output<typeof WorkloadSpec>;
export type WorkloadSpecInput = z.input<typeof WorkloadSpec>;

/** Parses an assignment's spec; a bad one is a RuntimeError `invalid_spec` naming the first problem. */
export function parseWorkloadSpec(input: unknown): WorkloadSpec {
  const r = WorkloadSpec.safeParse(input);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  throw new RuntimeError('invalid_spec', `${i.path.join('.') || 'spec'}: ${i.message}`);
}
