// Request and response schemas of the jobs API (docs/workloads.md §2).
import { z } from 'zod';
import {
  ImageName,
  JOB_OUTPUT_MAX_BYTES,
  JobCommand,
  JobOutputFile,
  MAX_SEALED_ENV_BYTES,
} from '@easyenclave/protocol/launcher';
import { JOB_STATES } from '../jobs/state.js';
import { coded, IsoTime, MicroUsd, Usd } from './schemas.js';

/** A job runs at most this long (longer work is a deployment); the launcher enforces the same bound. */
export const MAX_JOB_RUNTIME_S = 7 * 24 * 3600;
export const MAX_JOB_VCPUS = 256;
export const MAX_JOB_MEMORY_MIB = 4_194_304;
export const DEFAULT_JOB_MEMORY_MIB = 256;

const hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 32 bytes of lowercase hex');

export const PlacementQuery = z.object({
  vcpus: z.coerce.number().int().min(1).max(MAX_JOB_VCPUS).default(1),
  memory_mib: z.coerce.number().int().min(16).max(MAX_JOB_MEMORY_MIB).default(DEFAULT_JOB_MEMORY_MIB),
});

export const PlacementView = z.object({
  node_id: z.string(),
  launcher: z.object({ app: z.string(), agent_id: z.string() }),
  hpke_public_key: z
    .string()
    .meta({ description: 'the launcher X25519 key its attestation binds: seal the env to it' }),
  receipt_public_key: z.string(),
  price_per_vcpu_hour_micro_usd: MicroUsd,
  price_per_vcpu_hour_usd: Usd,
});

/** A sealed env in JSON (jobs and deployments): base64, bounded. */
export const SealedEnv = coded(
  z
    .string()
    .max(Math.ceil(MAX_SEALED_ENV_BYTES / 3) * 4)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64'),
  'invalid_request',
);

export const JobBody = z.strictObject({
  image: ImageName.meta({ description: 'a local image name or id on the node (resolved to its id by the launcher)' }),
  command: JobCommand.optional().meta({ description: "arguments after the image's entrypoint; the CMD when absent" }),
  sealed_env: SealedEnv.optional().meta({
    description: 'a JSON object of env variables sealed (HPKE) to env_key, with the job env aad',
  }),
  env_key: hex32.optional().meta({ description: 'the attested launcher key the env is sealed to (placement)' }),
  job_id: z
    .string()
    .regex(/^job_[0-9a-f]{20}$/)
    .optional()
    .meta({ description: 'the id the env was sealed for (from placement); generated when there is no env' }),
  result_key: hex32.meta({ description: "the client's X25519 public key: the result and logs are sealed to it" }),
  vcpus: z.number().int().min(1).max(MAX_JOB_VCPUS).default(1),
  memory_mib: z.number().int().min(16).max(MAX_JOB_MEMORY_MIB).default(DEFAULT_JOB_MEMORY_MIB),
  max_runtime_s: z.number().int().min(1).max(MAX_JOB_RUNTIME_S),
  network: z.boolean().default(false),
  output_file: JobOutputFile.optional().meta({
    description: `a file the job writes in /ee/output/ (at most ${JOB_OUTPUT_MAX_BYTES / 1024 / 1024} MiB), returned in its sealed result`,
  }),
  retry_on_node_loss: z.boolean().default(false).meta({
    description:
      'if its node is lost mid-job: refunded in full and retried once on another node (a job with an env waits for it sealed to the new launcher: PUT /v1/jobs/{id}/env)',
  }),
});

export const ResealBody = z.strictObject({
  sealed_env: SealedEnv.meta({ description: "the env sealed (HPKE) to env_required's key, with the job env aad" }),
  env_key: hex32.meta({ description: "the new launcher's attested key (the job's env_required)" }),
});

const Step = z.object({ state: z.enum(JOB_STATES), at: IsoTime, reason: z.string() });

export const JobView = z.object({
  job_id: z.string(),
  user: z.string(),
  node_id: z.string(),
  image: z.string(),
  command: z.array(z.string()).nullable(),
  vcpus: z.number().int(),
  memory_mib: z.number().int(),
  max_runtime_s: z.number(),
  network: z.boolean(),
  state: z.enum(JOB_STATES),
  reason: z.string(),
  history: z.array(Step),
  cancel_requested: z.boolean(),
  image_id: z.string().nullable(),
  image_digest: z.string().nullable(),
  exit_code: z.number().int().nullable(),
  started_at: IsoTime.nullable(),
  finished_at: IsoTime.nullable(),
  billed_vcpu_ms: z.number().int().nullable(),
  price_per_vcpu_hour_micro_usd: MicroUsd,
  price_per_vcpu_hour_usd: Usd,
  locked_micro_usd: MicroUsd,
  locked_usd: Usd,
  settled_micro_usd: MicroUsd.nullable(),
  refunded_micro_usd: MicroUsd.nullable(),
  result_sealed: z.string().nullable().meta({ description: "base64 of the result sealed to the client's key" }),
  usage: z.object({ record: z.record(z.string(), z.unknown()), signature: z.string() }).nullable(),
  created_at: IsoTime,
  output_file: z.string().nullable(),
  retry_on_node_loss: z.boolean(),
  attempt: z.number().int().meta({ description: '1, or 2 once retried on another node' }),
  attempts: z
    .array(
      z.object({
        attempt: z.number().int(),
        node_id: z.string(),
        locked_micro_usd: MicroUsd,
        settled_micro_usd: MicroUsd,
        refunded_micro_usd: MicroUsd,
        reason: z.string(),
        ended_at: IsoTime,
      }),
    )
    .meta({ description: 'the earlier attempts, each refunded in full; the fields above are the current one' }),
  env_required: z
    .object({
      launcher: z.object({ app: z.string(), agent_id: z.string().nullable() }),
      hpke_public_key: z.string(),
    })
    .nullable()
    .meta({ description: 'a retried job waits for its env sealed to this launcher (verify it first)' }),
});
