// Request and response schemas of the deployments API (docs/workloads.md §3).
import { z } from 'zod';
import { AppName } from '@easyenclave/protocol';
import { DeploymentId, ImageName, JobCommand } from '@easyenclave/protocol/launcher';
import { DEFAULT_JOB_MEMORY_MIB, MAX_JOB_MEMORY_MIB, MAX_JOB_VCPUS, SealedEnv } from './jobs-schemas.js';
import { IsoTime } from './schemas.js';
import { LeaseView, MAX_LEASE_PERIODS } from './market-schemas.js';

const hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 32 bytes of lowercase hex');
const DeploymentEnv = SealedEnv.optional().meta({
  description: 'a JSON object of env variables sealed (HPKE) to env_key, with the deployment env aad',
});

export const DeploymentBody = z.strictObject({
  app: AppName.meta({ description: "the app its agent registers: the proxy serves it at the app's hostname" }),
  image: ImageName.meta({ description: 'a local image name or id on the node (resolved to its id by the launcher)' }),
  command: JobCommand.optional().meta({ description: "arguments after the image's entrypoint; the CMD when absent" }),
  port: z.number().int().min(1).max(65535).meta({ description: 'the container port the app listens on' }),
  deployment_id: DeploymentId.optional().meta({ description: 'the id the env was sealed for; generated otherwise' }),
  sealed_env: DeploymentEnv,
  env_key: hex32
    .optional()
    .meta({ description: 'the attested launcher key the env is sealed to (GET /v1/jobs/placement)' }),
  vcpus: z.number().int().min(1).max(MAX_JOB_VCPUS).default(1),
  memory_mib: z.number().int().min(16).max(MAX_JOB_MEMORY_MIB).default(DEFAULT_JOB_MEMORY_MIB),
  periods: z.number().int().min(1).max(MAX_LEASE_PERIODS).optional().meta({
    description: 'lease periods to run, the prorated first one included; omitted = until stopped or unfunded',
  }),
});

export const DeploymentPatch = z.strictObject({
  image: ImageName.optional().meta({ description: 'the new image (omitted: the same); a rolling restart onto it' }),
  sealed_env: DeploymentEnv.meta({
    description:
      "a new env sealed to the deployment's launcher (its `launcher.hpke_public_key`); omitted: it carries over",
  }),
  env_key: hex32.optional().meta({ description: "the deployment's launcher key the new env is sealed to" }),
});

export const DeploymentView = z.object({
  deployment_id: z.string(),
  user: z.string(),
  app: z.string(),
  node_id: z.string(),
  image: z.string(),
  image_id: z.string().nullable(),
  image_digest: z.string().nullable(),
  port: z.number(),
  vcpus: z.number(),
  memory_mib: z.number(),
  state: z.enum(['starting', 'running', 'updating', 'stopping', 'stopped', 'failed']),
  reason: z.string(),
  generation: z.number(),
  created_at: IsoTime,
  updated_at: IsoTime,
  lease: LeaseView.nullable(),
  launcher: z
    .object({ app: z.string(), agent_id: z.string(), hpke_public_key: z.string() })
    .nullable()
    .meta({ description: "its node's launcher while connected: verify it, then seal a new env to its key (update)" }),
});
