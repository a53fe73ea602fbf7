// Request and response schemas of the jobs API (docs/workloads.md §2).
import { z } from 'zod';
import { ImageName, JobCommand, MAX_SEALED_ENV_BYTES } from '@easyenclave/protocol/launcher';
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

export const JobBody = z.strictObject({
  image: ImageName.meta({ description: 'a local image name or id on the node (resolved to its id by the launcher)' }),
  command: JobCommand.optional().meta({ description: "arguments after the image's entrypoint; the CMD when absent" }),
  sealed_env: coded(
    z
      .string()
      .max(Math.ceil(MAX_SEALED_ENV_BYTES / 3) * 4)
      .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64')
      .optional(),
    'invalid_request',
  ).meta({ description: 'a JSON object of env variables sealed (HPKE) to env_key, with the job env aad' }),
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
});
