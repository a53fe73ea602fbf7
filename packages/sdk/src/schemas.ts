// zod schemas of the control plane's answers (attestation, health and admin/app views): the one set of wire
// schemas of its clients (the SDK and the `ee` command validate every response with these instead of trusting
// its shape). Objects are loose: a field the server adds later passes through instead of breaking older
// clients. Ledger answers are in ledger.ts, market answers in market-schemas.ts.
import { z } from 'zod';
import { attestationFields } from '@easyenclave/protocol/attestation-wire';

const hex = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `must be ${bytes} bytes of lowercase hex`);
/** Longest base64 quote accepted: the verifier's 64 KiB cap (a TDX quote with its certificates is ~5 KiB). */
const MAX_QUOTE_BASE64_CHARS = Math.ceil((64 * 1024) / 3) * 4;
const base64 = z
  .string()
  .min(1)
  .max(MAX_QUOTE_BASE64_CHARS)
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64');

/** The evidence fields are shared with the control plane (protocol/attestation-wire.ts), here checked in form. */
const evidence = attestationFields({ nonce: hex(32), quote: base64, report_data: hex(64), public_key: hex(32) });

export const KeysetSchema = evidence.keyset;
export type Keyset = z.infer<typeof KeysetSchema>;

/** GET /v1/apps/{app}/attestation: an agent's fresh evidence over the caller's nonce, relayed as produced. */
export const AppAttestationSchema = z.object(evidence.app);
export type AppAttestation = z.infer<typeof AppAttestationSchema>;

/** GET /v1/attestation: the control plane's own evidence over the caller's nonce. */
export const SelfAttestationSchema = z.object(evidence.self);
export type SelfAttestation = z.infer<typeof SelfAttestationSchema>;

/** GET /v1/resolve/{app} (public). */
export const ResolveSchema = z.looseObject({
  app_name: z.string(),
  status: z.string(),
  endpoint: z.string(),
  host_endpoint: z.string().nullable(),
  sealed: z.boolean().nullable(),
  network: z.string(),
  last_attest: z.string().nullable(),
  expires_at: z.string().nullable(),
  agents: z.number().int(),
});
export type Resolved = z.infer<typeof ResolveSchema>;

const IsoOrNull = z.string().nullable();

/** GET /health (public): liveness. `agents_routable` is absent on control planes from before it was added. */
export const HealthSchema = z.looseObject({
  status: z.string(),
  uptime_s: z.number(),
  agents_connected: z.number().int(),
  agents_routable: z.number().int().optional(),
  apps_known: z.number().int(),
});
export type Health = z.infer<typeof HealthSchema>;

export const AppSummarySchema = z.looseObject({
  app_name: z.string(),
  repo: z.string(),
  network: z.string(),
  status: z.string(),
  sealed: z.boolean(),
  agents_connected: z.number().int(),
  agents_routable: z.number().int(),
  expires_at: IsoOrNull,
  last_attest: IsoOrNull,
  created_at: IsoOrNull,
});
export type AppSummary = z.infer<typeof AppSummarySchema>;

/** GET /v1/apps (admin). */
export const AppsSchema = z.looseObject({ apps: z.array(AppSummarySchema) });
export type AppList = z.infer<typeof AppsSchema>;

/** GET /v1/apps/{app} (admin): registrations, agents and recent events. */
export const AppDetailSchema = z.looseObject({
  app_name: z.string(),
  repo: z.string(),
  network: z.string(),
  sealed: z.boolean(),
  status: z.string(),
  created_at: IsoOrNull,
  expires_at: IsoOrNull,
  last_attest: IsoOrNull,
  registrations: z.array(
    z.looseObject({ release_tag: z.string(), created_at: IsoOrNull, expires_at: IsoOrNull, status: z.string() }),
  ),
  agents: z.array(
    z.looseObject({
      agent_id: z.string(),
      release_tag: z.string(),
      connected: z.boolean(),
      status: z.string(),
      streams_active: z.number().int(),
      health: z.string().nullable(),
      last_health: IsoOrNull,
      attested: z.boolean(),
      last_attest: IsoOrNull,
      evidence_type: z.string().nullable(),
      attest_failure: z.string().nullable(),
    }),
  ),
  recent_attestations: z.array(
    z.looseObject({
      agent_id: z.string(),
      at: IsoOrNull,
      reason: z.string().nullable(),
      ok: z.boolean(),
      evidence_type: z.string().nullable(),
      failure: z.string().nullable(),
    }),
  ),
  recent_health_events: z.array(
    z.looseObject({ agent_id: z.string(), at: IsoOrNull, kind: z.string(), detail: z.string().nullable() }),
  ),
});
export type AppDetail = z.infer<typeof AppDetailSchema>;

/**
 * Evidence from GET /v1/attestation (the control plane itself) or GET /v1/apps/{app}/attestation (an app's
 * agent, which adds app, agent_id and network), as a tool reads either (or a file saved from one). Nothing in
 * it is trusted until verified.
 */
export const EvidenceSchema = z.looseObject({
  evidence_type: z.enum(['tdx', 'sandbox']),
  quote: base64,
  keyset: z.record(z.string(), z.unknown()),
  report_data: z.string().regex(/^[0-9a-fA-F]{128}$/, 'must be 128 hex characters'),
  nonce: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters'),
  sandbox: z.boolean(),
  measurements: z.object({ mrtd: hex(48), rtmr0: hex(48), rtmr1: hex(48), rtmr2: hex(48), rtmr3: hex(48) }).optional(),
  repo: z.string().min(1).max(256),
  release_tag: z.string().min(1).max(256),
  app: z.string().optional(),
  agent_id: z.string().optional(),
  network: z.string().optional(),
});
export type Evidence = z.infer<typeof EvidenceSchema>;
