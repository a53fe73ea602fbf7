// The attestation answers of the control plane's API as they travel (GET /v1/attestation, GET
// /v1/apps/{app}/attestation): one list of fields per answer, shared by the control plane (which documents them
// in OpenAPI without re-validating relayed evidence) and the SDK (which checks each field's form before its
// verifier judges the evidence). Each side brings its codecs for the evidence fields, as in market-wire.ts.
// Free of Node built-ins; imported by path (@easyenclave/protocol/attestation-wire).
import { z } from 'zod';

export interface AttestationCodecs<N extends z.ZodType, Q extends z.ZodType, R extends z.ZodType, K extends z.ZodType> {
  /** The caller's 32-byte nonce, hex. */
  readonly nonce: N;
  /** The quote, base64. */
  readonly quote: Q;
  /** The quote's 64 bytes of report data, hex. */
  readonly report_data: R;
  /** A 32-byte public key of the attested keyset, hex. */
  readonly public_key: K;
}

export function attestationFields<N extends z.ZodType, Q extends z.ZodType, R extends z.ZodType, K extends z.ZodType>(
  c: AttestationCodecs<N, Q, R, K>,
) {
  const keyset = z.object({ hpke_public_key: c.public_key, receipt_public_key: c.public_key });
  return {
    keyset,
    /** GET /v1/attestation: the control plane's own evidence over the caller's nonce. */
    self: {
      evidence_type: z.enum(['tdx', 'sandbox']),
      quote: c.quote,
      report_data: c.report_data,
      keyset,
      nonce: c.nonce,
      sandbox: z.boolean(),
      measurements: z.record(z.string(), z.string()),
      repo: z.string(),
      release_tag: z.string(),
    },
    /** GET /v1/apps/{app}/attestation: an agent's fresh evidence over the caller's nonce, relayed as produced. */
    app: {
      app: z.string(),
      agent_id: z.string(),
      network: z.string(),
      sealed: z.boolean(),
      repo: z.string(),
      release_tag: z.string(),
      evidence_type: z.enum(['tdx', 'sandbox']),
      sandbox: z.boolean(),
      nonce: c.nonce,
      quote: c.quote,
      report_data: c.report_data,
      keyset: keyset.nullable(),
      measurements: z.record(z.string(), z.string()),
    },
  };
}
