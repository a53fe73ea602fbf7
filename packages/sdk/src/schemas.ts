// zod schemas of the control plane's answers the SDK reads (attestation and admin/app views). The SDK
// validates every response with these instead of trusting its shape. Ledger answers are in ledger.ts, market answers in market-schemas.ts.
import { z } from 'zod';

const hex = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `must be ${bytes} bytes of lowercase hex`);
const base64 = z
  .string()
  .min(1)
  .max(40_000)
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64');

export const KeysetSchema = z.object({ hpke_public_key: hex(32), receipt_public_key: hex(32) });
export type Keyset = z.infer<typeof KeysetSchema>;

/** GET /v1/apps/{app}/attestation: an agent's fresh evidence over the caller's nonce, relayed as produced. */
export const AppAttestationSchema = z.object({
  app: z.string(),
  agent_id: z.string(),
  network: z.string(),
  sealed: z.boolean(),
  repo: z.string(),
  release_tag: z.string(),
  evidence_type: z.enum(['tdx', 'sandbox']),
  sandbox: z.boolean(),
  nonce: hex(32),
  quote: base64,
  report_data: hex(64),
  keyset: KeysetSchema.nullable(),
  measurements: z.record(z.string(), z.string()),
});
export type AppAttestation = z.infer<typeof AppAttestationSchema>;

/** GET /v1/attestation: the control plane's own evidence over the caller's nonce. */
export const SelfAttestationSchema = z.object({
  evidence_type: z.enum(['tdx', 'sandbox']),
  quote: base64,
  report_data: hex(64),
  keyset: KeysetSchema,
  nonce: hex(32),
  sandbox: z.boolean(),
  measurements: z.record(z.string(), z.string()),
  repo: z.string(),
  release_tag: z.string(),
});
export type SelfAttestation = z.infer<typeof SelfAttestationSchema>;

/** GET /v1/resolve/{app} (public). */
export const ResolveSchema = z.object({
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

/** GET /v1/apps (admin): the fields the SDK types; the rest pass through. */
export const AppsSchema = z.object({
  apps: z.array(z.looseObject({ app_name: z.string(), repo: z.string(), network: z.string(), status: z.string() })),
});
export type AppSummary = z.infer<typeof AppsSchema>['apps'][number];
