// JSON control messages carried as WebSocket text frames. The seed's four messages (`register`,
// `attest_request`, `attest_response`, `health`) keep their exact field names; we add optional fields and a
// few messages of our own (`registered`, `attest_result`, `error`). Strict objects: unknown fields are rejected
// so a typo never silently changes meaning.

import { z } from 'zod';
import { MAX_CONTROL_MESSAGE_BYTES } from './limits.js';

/** Receipts per `receipts` message: ~700 bytes each keeps a full message well inside the control-message limit. */
export const MAX_RECEIPTS_PER_MESSAGE = 48;

const hex = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `must be ${bytes} bytes of lowercase hex`);

import { AppName } from './names.js';
export { APP_NAME_RE, AppName } from './names.js';
/** `owner/repo`, as on GitHub. */
export const RepoName = z
  .string()
  .max(200)
  .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'repo must look like owner/name');
export const AgentId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'agent_id must be 8-64 characters of A-Z a-z 0-9 _ -');

export const Keyset = z.strictObject({ hpke_public_key: hex(32), receipt_public_key: hex(32) });

export const RegisterMessage = z.strictObject({
  type: z.literal('register'),
  repo: RepoName,
  release_tag: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[\x21-\x7e]+$/, 'release_tag must be printable ASCII without spaces'),
  app_name: AppName,
  network: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'network must be a short lowercase name like forge-1'),
  agent_id: AgentId,
  /** Ours: the agent's software version, for operators. */
  agent_version: z.string().max(64).optional(),
  /** Ours: the token of the market node this agent runs on (EE_NODE_TOKEN; docs/market.md). */
  node_token: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[\x21-\x7e]+$/, 'node_token must be printable ASCII')
    .optional(),
});

export const AttestRequestMessage = z.strictObject({
  type: z.literal('attest_request'),
  nonce: hex(32),
  deadline_s: z.number().int().positive(),
  reason: z.enum(['register', 'interval', 'policy', 'client']),
});

export const AttestResponseMessage = z.strictObject({
  type: z.literal('attest_response'),
  nonce: hex(32),
  quote: z
    .string()
    .min(1)
    .max(40_000)
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'quote must be base64'),
  report_data: hex(64),
  measurements: z
    .record(z.string().max(32), z.string().max(256))
    .refine((m) => Object.keys(m).length <= 16, 'at most 16 measurements'),
  /** Ours: the per-boot keyset bound into report_data (docs/design.md §3). */
  keyset: Keyset.optional(),
  /** Ours: proof of possession of the keyset on this connection (docs/protocol.md, Proof of possession); required by
   *  the control plane in answers to its own challenges, absent in answers to relayed (`client`) ones. */
  pop_signature: hex(64).optional(),
});

export const HealthMessage = z.strictObject({
  type: z.literal('health'),
  status: z.enum(['pass', 'fail']),
  /** Ours: why it failed, e.g. "backend unreachable: ECONNREFUSED". */
  detail: z.string().max(512).optional(),
});

export const RegisteredMessage = z.strictObject({
  type: z.literal('registered'),
  app_name: AppName,
  agent_id: AgentId,
  expires_at: z.string(),
  status: z.string(),
  /** Ours: 32 random bytes for this connection only, signed into every pop_signature. */
  session_id: hex(32),
});

export const AttestResultMessage = z.strictObject({
  type: z.literal('attest_result'),
  nonce: hex(32),
  ok: z.boolean(),
  reasons: z.array(z.string().max(512)).max(32),
});

export const ErrorMessage = z.strictObject({
  type: z.literal('error'),
  code: z.string().max(64),
  message: z.string().max(1024),
});

/** Ours: signed usage receipts in a batch (docs/confidential.md, Receipts). Each element is checked on its own
 *  by the control plane (shape, amount, signature, attested key), so one bad receipt never fails the rest. */
export const ReceiptsMessage = z.strictObject({
  type: z.literal('receipts'),
  receipts: z.array(z.unknown()).min(1).max(MAX_RECEIPTS_PER_MESSAGE),
});

/** Ours: the control plane's verdict on each receipt of a `receipts` message, by (key, seq). Final: an
 *  agent forgets a receipt once it has one; a receipt without one is sent again. */
export const ReceiptsResultMessage = z.strictObject({
  type: z.literal('receipts_result'),
  results: z
    .array(
      z.strictObject({
        key: z.string().max(64),
        seq: z.number().int().min(0),
        ok: z.boolean(),
        code: z.string().max(64).optional(),
      }),
    )
    .max(MAX_RECEIPTS_PER_MESSAGE),
});

export const AgentToControl = z.discriminatedUnion('type', [
  RegisterMessage,
  AttestResponseMessage,
  HealthMessage,
  ReceiptsMessage,
]);
export const ControlToAgent = z.discriminatedUnion('type', [
  AttestRequestMessage,
  RegisteredMessage,
  AttestResultMessage,
  ErrorMessage,
  ReceiptsResultMessage,
]);

export type RegisterMessage = z.infer<typeof RegisterMessage>;
export type AttestRequestMessage = z.infer<typeof AttestRequestMessage>;
export type AttestResponseMessage = z.infer<typeof AttestResponseMessage>;
export type HealthMessage = z.infer<typeof HealthMessage>;
export type RegisteredMessage = z.infer<typeof RegisteredMessage>;
export type AttestResultMessage = z.infer<typeof AttestResultMessage>;
export type ErrorMessage = z.infer<typeof ErrorMessage>;
export type ReceiptsMessage = z.infer<typeof ReceiptsMessage>;
export type ReceiptsResultMessage = z.infer<typeof ReceiptsResultMessage>;
export type AgentToControl = z.infer<typeof AgentToControl>;
export type ControlToAgent = z.infer<typeof ControlToAgent>;

export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: string };

function parseWith<T>(schema: z.ZodType<T>, text: string): ParseResult<T> {
  if (Buffer.byteLength(text, 'utf8') > MAX_CONTROL_MESSAGE_BYTES)
    return { ok: false, error: `control message exceeds ${MAX_CONTROL_MESSAGE_BYTES} bytes` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, error: 'control message is not valid JSON' };
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    // Unknown keys are peer-supplied text: name the first one, bounded and reduced to printable ASCII.
    const what =
      issue?.code === 'unrecognized_keys'
        ? `unknown field "${closeReason([...issue.path, String((issue as { keys?: unknown[] }).keys?.[0] ?? '')].join('.')).slice(0, 60)}"`
        : `${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`;
    return { ok: false, error: closeReason(`invalid control message: ${what}`) };
  }
  return { ok: true, message: r.data };
}

export const parseAgentMessage = (text: string) => parseWith(AgentToControl, text);
export const parseControlMessage = (text: string) => parseWith(ControlToAgent, text);

/** A WebSocket close reason: at most 123 UTF-8 bytes by RFC 6455 (ws throws beyond that), printable
 *  ASCII only so a peer-supplied string can never smuggle anything into logs or break the limit. */
export function closeReason(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 120);
}

/** WebSocket close codes we use (4000-4999 is the application range). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL: 1011,
  REGISTRATION_REFUSED: 4001,
  ATTESTATION_FAILED: 4002,
  NOT_REGISTERED: 4003,
  DEAD_PEER: 4004,
  REPLACED: 4005,
} as const;
