// GET /v1/attestation?nonce=<64 hex>: the control plane attests itself (DESIGN §3), so a client (the SDK) can
// verify the coordinator like any agent. The answer is the control plane's own evidence, bound to the caller's
// nonce and to this process's per-boot keyset by the one report_data scheme, in its own domain:
//
//   report_data = SHA-512("ee-self-v1" ‖ nonce ‖ SHA-256(canonical JSON of the keyset))
//
// The domain is what keeps this public route from being an oracle: a quote made here never verifies as an
// agent's answer to a challenge (ee-tunnel-v1) or to a relayed one (ee-relay-v1).
//
// The quote comes from configfs-tsm on TDX (EE_TSM_PATH), otherwise from the sandbox provider, and then says
// so: evidence_type 'sandbox' and sandbox: true. Quote generation is bounded (a few at a time) because the
// route is public.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Logger } from 'pino';
import {
  computeReportData,
  ConfigfsQuoteProvider,
  generateKeyset,
  hasConfigfsTsm,
  parseNonceHex,
  parseTdxQuote,
  publicKeyset,
  REPORT_DATA_DOMAINS,
  SandboxQuoteProvider,
  type AgentKeys,
  type Keyset,
  type Measurements,
  type QuoteProvider,
} from '@easyenclave/attestation';
import type { ControlPlaneConfig } from '../config.js';
import { apiFailure } from './error-catalogue.js';
import { Nonce, SelfAttestationView } from './routes-schemas.js';
import { coded, errorResponses } from './schemas.js';

/** What the control plane's sandbox evidence is measured as (sandboxMeasurements(repo, release_tag)). */
export const CONTROL_PLANE_REPO = 'easyenclave/control-plane';
export const CONTROL_PLANE_RELEASE = '0.1.0';
/** Quotes generated at once; more concurrent requests get 503. */
export const MAX_CONCURRENT_QUOTES = 8;
/** Longest wait for one configfs-tsm quote of the control plane itself. */
export const SELF_QUOTE_TIMEOUT_MS = 20_000;

export interface AttestationRoutesOptions {
  config: ControlPlaneConfig;
  log: Logger;
  /** For tests/embedders: the per-boot keyset and the quote provider (default: generated / chosen here). */
  keys?: AgentKeys;
  provider?: QuoteProvider;
}

export interface SelfAttestation {
  evidence_type: 'tdx' | 'sandbox';
  quote: string;
  report_data: string;
  keyset: Keyset;
  nonce: string;
  sandbox: boolean;
  measurements: Measurements;
  /** The subject the evidence is for (sandbox measurements are derived from it). */
  repo: string;
  release_tag: string;
}

export async function attestationRoutes(base: FastifyInstance, opts: AttestationRoutesOptions): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { config, log } = opts;
  const keys = opts.keys ?? generateKeyset();
  const keyset = publicKeyset(keys);
  let provider: QuoteProvider;
  if (opts.provider !== undefined) {
    provider = opts.provider;
  } else if (hasConfigfsTsm(config.tsm_path)) {
    provider = new ConfigfsQuoteProvider({ path: config.tsm_path, timeout_ms: SELF_QUOTE_TIMEOUT_MS });
    log.info({ tsm_path: config.tsm_path }, 'control plane self-attestation: TDX quotes through configfs-tsm');
  } else {
    provider = new SandboxQuoteProvider({ repo: CONTROL_PLANE_REPO, release_tag: CONTROL_PLANE_RELEASE });
    log.warn(
      { tsm_path: config.tsm_path },
      'control plane self-attestation: no TDX here, GET /v1/attestation serves SANDBOX evidence (labelled sandbox: true)',
    );
  }
  const sandbox = provider.evidence_type === 'sandbox';
  let inflight = 0;

  app.get(
    '/v1/attestation',
    {
      schema: {
        tags: ['attestation'],
        summary: "The control plane's own evidence over the caller's nonce (TDX, or sandbox: labelled)",
        querystring: z.object({ nonce: coded(Nonce, 'invalid_nonce') }),
        response: { 200: SelfAttestationView, ...errorResponses(400, 503) },
      },
    },
    async (req, reply) => {
      const nonce = parseNonceHex(req.query.nonce);
      if (inflight >= MAX_CONCURRENT_QUOTES)
        throw apiFailure('busy', 'too many attestation requests at once', { retry_after_s: 1 });
      inflight++;
      let quote: Buffer;
      const report_data = computeReportData(REPORT_DATA_DOMAINS.self, nonce, keyset);
      try {
        quote = await provider.getQuote(report_data);
      } catch (e) {
        req.log.error({ err: (e as Error).message }, 'control plane could not produce its own quote');
        throw apiFailure('quote_unavailable');
      } finally {
        inflight--;
      }
      let measurements: Measurements;
      if (sandbox) {
        measurements = { ...(provider as SandboxQuoteProvider).measurements };
      } else {
        const td = parseTdxQuote(quote).td;
        const hex = (b: Buffer) => b.toString('hex');
        measurements = {
          mrtd: hex(td.mrtd),
          rtmr0: hex(td.rtmr0),
          rtmr1: hex(td.rtmr1),
          rtmr2: hex(td.rtmr2),
          rtmr3: hex(td.rtmr3),
        };
      }
      const body: SelfAttestation = {
        evidence_type: sandbox ? 'sandbox' : 'tdx',
        quote: quote.toString('base64'),
        report_data: report_data.toString('hex'),
        keyset,
        nonce: nonce.toString('hex'),
        sandbox,
        measurements,
        repo: CONTROL_PLANE_REPO,
        release_tag: CONTROL_PLANE_RELEASE,
      };
      return reply.header('cache-control', 'no-store').send({ ...body, measurements: { ...body.measurements } });
    },
  );
}
