// Attestation latency and verdicts around whichever verifier the control plane runs (the DCAP verifier, or an
// injected one in tests): the tunnel asks this wrapper, which times each verification.
import type { EvidenceVerifier, Verdict, VerifyRequest } from '@easyenclave/attestation';
import type { ControlPlaneMetrics } from '../metrics.js';

export function timedVerifier(inner: EvidenceVerifier, metrics: ControlPlaneMetrics): EvidenceVerifier {
  return {
    async verify(req: VerifyRequest): Promise<Verdict> {
      const start_ms = performance.now();
      let result = 'failed';
      try {
        const verdict = await inner.verify(req);
        if (verdict.ok) result = 'ok';
        return verdict;
      } finally {
        metrics.attestation_duration.labels(result).observe((performance.now() - start_ms) / 1000);
      }
    },
  };
}
