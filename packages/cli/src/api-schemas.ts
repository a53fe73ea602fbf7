// zod schemas of the control plane's answers (packages/control-plane/src/http/routes.ts and
// attestation-routes.ts). Loose objects: a field the server adds later passes through (and shows up in
// --json) instead of breaking older CLIs; the fields the CLI reads are checked.
import { z } from 'zod';

const isoOrNull = z.string().nullable();
const hex = (chars: number) =>
  z.string().regex(new RegExp(`^[0-9a-fA-F]{${chars}}$`), `must be ${chars} hex characters`);

export const HealthSchema = z.looseObject({
  status: z.string(),
  uptime_s: z.number(),
  agents_connected: z.number(),
  /** Absent on control planes from before it was added. */
  agents_routable: z.number().optional(),
  apps_known: z.number(),
});
export type Health = z.infer<typeof HealthSchema>;

export const ResolveSchema = z.looseObject({
  app_name: z.string(),
  status: z.string(),
  endpoint: z.string(),
  host_endpoint: z.string().nullable(),
  sealed: z.boolean().nullable(),
  network: z.string(),
  last_attest: isoOrNull,
  expires_at: isoOrNull,
  agents: z.number(),
});
export type Resolve = z.infer<typeof ResolveSchema>;

export const AppSummarySchema = z.looseObject({
  app_name: z.string(),
  repo: z.string(),
  network: z.string(),
  status: z.string(),
  sealed: z.boolean(),
  agents_connected: z.number(),
  agents_routable: z.number(),
  expires_at: isoOrNull,
  last_attest: isoOrNull,
  created_at: isoOrNull,
});
export const AppListSchema = z.looseObject({ apps: z.array(AppSummarySchema) });
export type AppList = z.infer<typeof AppListSchema>;

export const AppDetailSchema = z.looseObject({
  app_name: z.string(),
  repo: z.string(),
  network: z.string(),
  sealed: z.boolean(),
  status: z.string(),
  created_at: isoOrNull,
  expires_at: isoOrNull,
  last_attest: isoOrNull,
  registrations: z.array(
    z.looseObject({ release_tag: z.string(), created_at: isoOrNull, expires_at: isoOrNull, status: z.string() }),
  ),
  agents: z.array(
    z.looseObject({
      agent_id: z.string(),
      release_tag: z.string(),
      connected: z.boolean(),
      status: z.string(),
      streams_active: z.number(),
      health: z.string().nullable(),
      last_health: isoOrNull,
      attested: z.boolean(),
      last_attest: isoOrNull,
      evidence_type: z.string().nullable(),
      attest_failure: z.string().nullable(),
    }),
  ),
  recent_attestations: z.array(
    z.looseObject({
      agent_id: z.string(),
      at: isoOrNull,
      reason: z.string().nullable(),
      ok: z.boolean(),
      evidence_type: z.string().nullable(),
      failure: z.string().nullable(),
    }),
  ),
  recent_health_events: z.array(
    z.looseObject({ agent_id: z.string(), at: isoOrNull, kind: z.string(), detail: z.string().nullable() }),
  ),
});
export type AppDetail = z.infer<typeof AppDetailSchema>;

/** Longest base64 quote accepted (a TDX quote with its certificate chain is ~5 KiB; 64 KiB is the verifier's cap). */
const MAX_QUOTE_BASE64_CHARS = Math.ceil((64 * 1024) / 3) * 4;

const MeasurementsSchema = z.object({ mrtd: hex(96), rtmr0: hex(96), rtmr1: hex(96), rtmr2: hex(96), rtmr3: hex(96) });

/**
 * Evidence from GET /v1/attestation (the control plane itself) or GET /v1/apps/:app/attestation (an app's
 * agent, which adds app, agent_id and network). Nothing here is trusted: `ee attestation verify` checks it.
 */
export const EvidenceSchema = z.looseObject({
  evidence_type: z.enum(['tdx', 'sandbox']),
  quote: z
    .string()
    .min(1)
    .max(MAX_QUOTE_BASE64_CHARS)
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64'),
  keyset: z.record(z.string(), z.unknown()),
  report_data: hex(128),
  nonce: hex(64),
  sandbox: z.boolean(),
  measurements: MeasurementsSchema.optional(),
  repo: z.string().min(1).max(256),
  release_tag: z.string().min(1).max(256),
  app: z.string().optional(),
  agent_id: z.string().optional(),
  network: z.string().optional(),
});
export type Evidence = z.infer<typeof EvidenceSchema>;
