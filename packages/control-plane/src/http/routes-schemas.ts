// Response schemas of the operator API (routes.ts) and of the attestation endpoints, for /openapi.json.
import { z } from 'zod';
import { attestationFields } from '@easyenclave/protocol/attestation-wire';
import { IsoTime } from './schemas.js';

const AppStatus = z.enum(['active', 'expiring', 'offline', 'draining', 'unattested', 'expired', 'unhealthy']);

/** Characters of an app name in a path: longer than any valid name, so a long one is an unknown app, not a 400. */
const MAX_APP_PARAM_CHARS = 100;

/** An app name in a path (anything else is simply no app: 404 unknown_app). */
export const AppParams = z.object({ app: z.string().max(MAX_APP_PARAM_CHARS) });

export const HealthView = z.looseObject({
  status: z.enum(['ok', 'draining', 'degraded']).meta({ description: 'degraded: the database is unavailable' }),
  uptime_s: z.number().int(),
  agents_connected: z.number().int(),
  agents_routable: z.number().int(),
  apps_known: z.number().int(),
  store: z.enum(['ok', 'unavailable']).meta({ description: 'as last seen by a request or a probe (no query here)' }),
  store_error: z.string().optional().meta({ description: "the last fault's code, while unavailable" }),
});

export const ReadyView = z.looseObject({
  ready: z.boolean(),
  store: z.enum(['ok', 'unavailable']),
  draining: z.boolean(),
});

export const ResolveView = z.looseObject({
  app_name: z.string(),
  status: AppStatus,
  endpoint: z.string(),
  host_endpoint: z.string().nullable(),
  sealed: z.boolean().nullable(),
  network: z.string(),
  last_attest: IsoTime.nullable(),
  expires_at: IsoTime.nullable(),
  agents: z.number().int(),
});

export const AppsView = z.looseObject({
  apps: z.array(
    z.looseObject({
      app_name: z.string(),
      repo: z.string(),
      network: z.string(),
      status: AppStatus,
      sealed: z.boolean(),
      agents_connected: z.number().int(),
      agents_routable: z.number().int(),
      expires_at: IsoTime.nullable(),
      last_attest: IsoTime.nullable(),
      created_at: IsoTime.nullable(),
    }),
  ),
});

export const AppDetailView = z.looseObject({
  app_name: z.string(),
  repo: z.string(),
  network: z.string(),
  sealed: z.boolean(),
  status: AppStatus,
  registrations: z.array(z.looseObject({ release_tag: z.string(), status: z.string() })),
  agents: z.array(z.looseObject({ agent_id: z.string(), connected: z.boolean(), status: z.string() })),
  recent_attestations: z.array(z.looseObject({ agent_id: z.string(), at: IsoTime.nullable() })),
  recent_health_events: z.array(z.looseObject({ agent_id: z.string(), at: IsoTime.nullable(), kind: z.string() })),
});

const Nonce = z
  .string({ error: 'query parameter "nonce" is required: 64 hex characters (32 random bytes)' })
  .regex(/^[0-9a-fA-F]{64}$/, 'nonce must be exactly 64 hex characters')
  .meta({ description: 'the caller’s 32 random bytes, 64 hex characters' });

export { Nonce };

// Evidence fields as the agents and the verifier produce them, documented (not re-validated on the way out: an
// agent's evidence is relayed as produced and the client's verifier judges it).
const NonceOut = z.string().meta({ description: 'the caller’s nonce, 64 hex characters', pattern: '^[0-9a-f]{64}$' });
const ReportDataOut = z
  .string()
  .meta({ description: 'the quote’s report data, 128 hex characters', pattern: '^[0-9a-f]{128}$' });

const PublicKeyOut = z
  .string()
  .meta({ description: 'a 32-byte public key, 64 hex characters', pattern: '^[0-9a-f]{64}$' });
/** The evidence fields, shared with the SDK (protocol/attestation-wire.ts), documented on the way out. */
const evidence = attestationFields({
  nonce: NonceOut,
  quote: z.string().meta({ description: 'base64' }),
  report_data: ReportDataOut,
  public_key: PublicKeyOut,
});

export const SelfAttestationView = z.looseObject(evidence.self);

export const AppAttestationView = z.looseObject({ ...evidence.app, quote: z.string() });
