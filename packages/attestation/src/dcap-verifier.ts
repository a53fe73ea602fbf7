// The TDX/DCAP EvidenceVerifier: the pipeline of dcap-pipeline.ts with long-lived caches and a collateral source.
import type { AttestationSubject, EvidenceVerifier, Verdict, VerifyRequest } from './evidence.js';
import { normalizeCollateral } from './collateral-normalize.js';
import type { Collateral } from './collateral-normalize.js';
import type { CollateralSource } from './collateral-source.js';
import { checkRoot, DcapCore } from './dcap-core.js';
import type { DcapVerifierOptions } from './dcap-options.js';
import { guarded, pipeline } from './dcap-pipeline.js';
import type { Keyset } from './keyset.js';
import type { PckInfo } from './pck.js';
import type { Policy } from './policy.js';
import type { QuoteReport } from './quote-report.js';
import type { ReportDataDomain } from './report-data.js';

/**
 * The TDX/DCAP EvidenceVerifier. Collateral comes from `collateral` (a PCCS client or a file), never from
 * the agent. Refuses any root CA but Intel's unless `allow_non_intel_root` is set (tests; logged loudly).
 */
export class DcapVerifier implements EvidenceVerifier {
  readonly #core: DcapCore;
  readonly #collateral: CollateralSource;
  readonly #policy: Policy | undefined;

  constructor(opts: DcapVerifierOptions) {
    if (opts === undefined || opts.collateral === undefined || typeof opts.collateral.get !== 'function') {
      throw new Error('DcapVerifier needs a collateral source');
    }
    this.#core = new DcapCore(checkRoot(opts), opts.cache_size ?? 1024);
    this.#collateral = opts.collateral;
    this.#policy = opts.policy;
  }

  /**
   * For tests: a verifier anchored at a test root of trust, through dcap-qvl's QuoteVerifier.newWithRootCa
   * (the same code path as production). This is the explicit override; it logs loudly for a non-Intel root.
   */
  static newWithRootCa(
    root_der: Buffer,
    opts: Omit<DcapVerifierOptions, 'root_ca_der' | 'allow_non_intel_root'>,
  ): DcapVerifier {
    return new DcapVerifier({ ...opts, root_ca_der: root_der, allow_non_intel_root: true });
  }

  get policy_version(): string | null {
    return this.#policy?.version ?? null;
  }

  get root_ca_der(): Buffer {
    return Buffer.from(this.#core.rootDer);
  }

  /** The detailed report for one quote, with collateral from this verifier's source. */
  async report(
    quote: Buffer,
    now_ms: number,
    ctx: { subject?: AttestationSubject; domain?: ReportDataDomain; nonce?: Buffer; keyset?: Keyset } = {},
  ): Promise<QuoteReport> {
    return guarded(this.#policy, () =>
      pipeline(this.#core, quote, (pck) => this.#getCollateral(pck), now_ms, {
        ...ctx,
        policy: this.#policy,
        bind: false,
      }),
    );
  }

  async #getCollateral(pck: PckInfo): Promise<Collateral> {
    return normalizeCollateral(await this.#collateral.get(pck.fmspc.toString('hex').toUpperCase(), pck.ca));
  }

  async verify(req: VerifyRequest): Promise<Verdict> {
    const report = await guarded(this.#policy, () =>
      pipeline(this.#core, req.quote, (pck) => this.#getCollateral(pck), req.now_ms, {
        policy: this.#policy,
        subject: req.subject,
        domain: req.domain,
        nonce: req.nonce,
        keyset: req.keyset,
        bind: true,
      }),
    );
    if (!report.ok) return { ok: false, evidence_type: report.evidence_type, reasons: report.reasons };
    return {
      ok: true,
      evidence_type: 'tdx',
      measurements: {
        mrtd: report.mrtd as string,
        rtmr0: report.rtmr0 as string,
        rtmr1: report.rtmr1 as string,
        rtmr2: report.rtmr2 as string,
        rtmr3: report.rtmr3 as string,
      },
      report_data: Buffer.from(report.report_data as string, 'hex'),
      evidence_hash: report.evidence_hash as string,
      policy_version: report.policy_version,
      tcb_status: report.tcb_status as string,
      ...(typeof report.ppid === 'string' ? { ppid: report.ppid } : {}),
    };
  }
}
