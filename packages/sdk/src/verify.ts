// Local verification of evidence (an app's agent, or the control plane itself) with @easyenclave/attestation,
// the same code the control plane runs: sandbox quotes with SandboxVerifier, TDX quotes with DcapVerifier
// (DCAP chain, CRLs, TCB, the policy's measurement allowlist), both through EvidenceRouter, which re-checks
// the report_data binding to OUR nonce, the keyset and the evidence's purpose (an app's agent answers a relayed
// nonce in the relay domain, the control plane in the self domain; see report-data.ts), and refuses sandbox
// evidence where hardware is required.
//
// NODE-ONLY (node:crypto, Buffer, dcap-qvl): the client loads this module with a dynamic import only when it
// verifies, so code that never verifies (or a browser bundle that splits it out) does not load it.
import {
  DcapVerifier,
  EvidenceRouter,
  evaluateMeasurements,
  INTEL_PCS_URL,
  networkPolicy,
  normalizeCollateral,
  parseKeyset,
  parsePolicy,
  PccsCollateralSource,
  SandboxVerifier,
  StaticCollateralSource,
  type CollateralSource,
  type EvidenceVerifier,
  type Keyset,
  type Policy,
  type ReportDataDomain,
  type Verdict,
} from '@easyenclave/attestation';
import { useNodeSealCrypto } from '@easyenclave/protocol/seal-node';
import { AttestationError } from './errors.js';
import type { TrustOptions, VerifiedEvidence } from './trust.js';

// A client that verifies in Node (this module loads only there) also seals there: node:crypto's synchronous
// HKDF and AES-GCM under HPKE instead of WebCrypto's per-call promises (the agent does the same). The bytes are
// identical either way (test/src/seal/provider.test.ts); only the CPU per sealed request changes.
useNodeSealCrypto();

/** Evidence as received, plus what the client itself knows (its nonce, the network it was configured for). */
export interface EvidenceInput {
  /** What the evidence must be for: 'ee-relay-v1' for an app's agent, 'ee-self-v1' for the control plane. */
  domain: ReportDataDomain;
  /** The nonce WE chose (hex); the echoed one is only compared against it. */
  nonce_hex: string;
  echoed_nonce: string;
  quote_b64: string;
  report_data_hex: string;
  keyset: unknown;
  repo: string;
  release_tag: string;
  /** The network the evidence claims (agents), or null (the control plane itself). */
  network: string | null;
  app?: string;
  agent_id?: string;
}

export const NO_POLICY = 'no attestation policy given: TDX evidence cannot be checked against a measurement allowlist';

function rootDer(root: Uint8Array | string): Buffer {
  if (typeof root !== 'string') return Buffer.from(root);
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(root);
  if (m === null) throw new Error('root_ca: expected DER bytes or one PEM certificate');
  return Buffer.from(m[1]!.replace(/\s/g, ''), 'base64');
}

function collateralSource(trust: TrustOptions): CollateralSource {
  const c = trust.collateral;
  if (c !== undefined && typeof (c as { get?: unknown }).get === 'function') return c as CollateralSource;
  if (c !== undefined) return new StaticCollateralSource(normalizeCollateral(c));
  return new PccsCollateralSource({ url: trust.pccs_url ?? INTEL_PCS_URL });
}

/** A verifier for one set of trust options (keeps DCAP caches across calls). */
export class LocalVerifier {
  readonly policy: Policy | null;
  readonly #router: EvidenceRouter;

  constructor(
    readonly trust: TrustOptions,
    readonly configured_network: string | undefined,
  ) {
    this.policy = trust.policy === undefined ? null : parsePolicy(trust.policy);
    let tdx: EvidenceVerifier | undefined;
    if (this.policy !== null) {
      tdx = new DcapVerifier({
        collateral: collateralSource(trust),
        policy: this.policy,
        ...(trust.root_ca !== undefined
          ? { root_ca_der: rootDer(trust.root_ca), allow_non_intel_root: trust.allow_non_intel_root === true }
          : {}),
      });
    }
    this.#router = new EvidenceRouter({ sandbox: new SandboxVerifier(), ...(tdx ? { tdx } : {}) });
  }

  /** Sandbox evidence only when the client itself says so; never because the control plane claims sandbox. */
  private get sandboxAllowed(): boolean {
    if (this.trust.allow_sandbox !== undefined) return this.trust.allow_sandbox;
    return this.configured_network !== undefined && networkPolicy(this.configured_network)?.sealed === false;
  }

  /** Verifies or throws AttestationError with every reason found. */
  async verify(ev: EvidenceInput): Promise<VerifiedEvidence> {
    const reasons: string[] = [];
    const sealed_required = !this.sandboxAllowed;
    const network = ev.network ?? this.configured_network ?? (sealed_required ? 'forge-1' : 'sandbox-1');
    if (ev.echoed_nonce !== ev.nonce_hex) reasons.push('the evidence answers another nonce than ours');
    if (this.configured_network !== undefined && ev.network !== null && ev.network !== this.configured_network) {
      reasons.push(`the agent is on network "${ev.network}", not "${this.configured_network}"`);
    }
    const expect = this.trust.expect ?? {};
    if (expect.repo !== undefined && expect.repo !== ev.repo)
      reasons.push(`repo is "${ev.repo}", expected "${expect.repo}"`);
    if (expect.release_tag !== undefined && expect.release_tag !== ev.release_tag)
      reasons.push(`release_tag is "${ev.release_tag}", expected "${expect.release_tag}"`);
    if (expect.agent_id !== undefined && expect.agent_id !== ev.agent_id)
      reasons.push(`agent is "${ev.agent_id ?? '(none)'}", expected "${expect.agent_id}"`);
    let keyset: Keyset;
    try {
      keyset = parseKeyset(ev.keyset);
    } catch (err) {
      throw new AttestationError([...reasons, `the evidence carries no valid keyset: ${(err as Error).message}`]);
    }
    const quote = Buffer.from(ev.quote_b64, 'base64');
    const now_ms = this.trust.now_ms?.() ?? Date.now();
    const subject = {
      agent_id: ev.agent_id ?? 'control-plane',
      app_name: ev.app ?? 'control-plane',
      repo: ev.repo,
      release_tag: ev.release_tag,
      network,
    };
    const verdict: Verdict = await this.#router.verify({
      subject,
      domain: ev.domain,
      nonce: Buffer.from(ev.nonce_hex, 'hex'),
      keyset,
      quote,
      now_ms,
      sealed_required,
    });
    if (!verdict.ok) {
      const why = verdict.reasons.map((r) => (r === 'no TDX verifier configured' ? NO_POLICY : r));
      throw new AttestationError([...reasons, ...why]);
    }
    if (verdict.evidence_type === 'sandbox' && this.policy !== null) {
      // The sandbox verifier checks the measurements against the claimed release; the policy decides whether
      // that release is allowed at all.
      const m = verdict.measurements;
      const input = {
        ...m,
        td_attributes: null,
        xfam: null,
        tcb_status: null,
        advisory_ids: [],
        tcb_grace_start: null,
      };
      reasons.push(...evaluateMeasurements(this.policy, input, subject));
    }
    if (ev.report_data_hex !== verdict.report_data.toString('hex'))
      reasons.push('report_data beside the quote differs from the verified one');
    if (reasons.length > 0) throw new AttestationError(reasons);
    return {
      evidence_type: verdict.evidence_type,
      ...(ev.agent_id !== undefined ? { agent_id: ev.agent_id } : {}),
      ...(ev.app !== undefined ? { app: ev.app } : {}),
      repo: ev.repo,
      release_tag: ev.release_tag,
      network,
      measurements: verdict.measurements,
      keyset,
      policy_version: verdict.policy_version ?? this.policy?.version ?? null,
      ...(verdict.tcb_status !== undefined ? { tcb_status: verdict.tcb_status } : {}),
      evidence_hash: verdict.evidence_hash,
      nonce: ev.nonce_hex,
      verified_at_ms: now_ms,
    };
  }
}

export function createVerifier(trust: TrustOptions, configured_network: string | undefined): LocalVerifier {
  try {
    return new LocalVerifier(trust, configured_network);
  } catch (err) {
    // A bad policy or root is a refusal to verify, not a crash: nothing is sent either way.
    throw new AttestationError([`cannot set up verification: ${(err as Error).message}`]);
  }
}
