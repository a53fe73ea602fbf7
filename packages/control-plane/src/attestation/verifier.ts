// The control plane's evidence verifier, built from its configuration (DESIGN §3):
//
//   EvidenceRouter({ sandbox: SandboxVerifier, tdx: DcapVerifier })
//
// - Collateral for DCAP comes from a PCCS (EE_PCCS_URL; Intel's PCS when unset), fetched and cached by the
//   control plane, or from a file (EE_COLLATERAL_FILE, offline). Never from the agents being verified.
// - The attestation policy (measurement allowlist, TCB rules) comes from EE_ALLOWLIST_ASSET. Without it, sealed
//   networks reject every agent with NO_POLICY_REASON (fail closed); the sandbox network still works.
// - The DCAP root is Intel's SGX Root CA. EE_ATTEST_ROOT_CA_FILE names another root for tests and is refused
//   unless EE_ATTEST_ALLOW_NON_INTEL_ROOT=1, which is logged loudly at every start (and by every DcapVerifier).
// - reload() (ControlPlane.reloadPolicy, or a change in the policy/collateral file's directory seen by fs.watch,
//   debounced) re-reads the policy and the collateral file. A policy that fails to read or parse is logged loudly
//   and the one in force stays. Each change bumps `generation` and tells the listeners (the tunnel hub re-attests
//   every connected agent, reason 'policy'). SIGHUP restarts the process instead (see handoff.ts); the successor
//   reads the policy at start-up, and a bad one makes it fail while this process keeps serving.
// Reading the configuration at start-up is verifier-sources.ts; watching the files, policy-watch.ts.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import {
  DcapVerifier,
  EvidenceRouter,
  SandboxVerifier,
  type EvidenceVerifier,
  type Policy,
  type Verdict,
  type VerifyRequest,
} from '@easyenclave/attestation';
import type { ControlPlaneConfig } from '../config.js';
import { PolicyWatch } from './policy-watch.js';
import {
  collateralFromText,
  loadCollateral,
  loadPolicyFile,
  loadRootOfTrust,
  NO_POLICY_REASON,
  parsePolicyText,
  type Collateral,
  type RootOfTrust,
} from './verifier-sources.js';

export { NO_POLICY_REASON, readCertificateFile } from './verifier-sources.js';
/** How long file changes must settle before a reload (editors write in several steps). */
export const POLICY_WATCH_DEBOUNCE_MS = 200;

export interface ReloadResult {
  /** False when the reload failed (the configuration in force stays). */
  ok: boolean;
  /** True when the policy or collateral in force changed (agents are re-attested). */
  changed: boolean;
  policy_version: string | null;
  error?: string;
}

export interface VerifierFactoryOptions {
  /** Watch the policy (and collateral) file for changes (default true). */
  watch?: boolean;
  debounce_ms?: number;
}

/** Rejects everything on TDX: the stand-in for the DCAP verifier while no policy is loaded. */
const noPolicyVerifier: EvidenceVerifier = {
  verify: async (): Promise<Verdict> => ({ ok: false, evidence_type: 'unknown', reasons: [NO_POLICY_REASON] }),
};

export class ControlPlaneVerifier implements EvidenceVerifier {
  readonly policy_path: string;
  readonly collateral_path: string | undefined;
  /** Bumped on every change of policy or collateral. */
  generation = 0;
  readonly #log: Logger;
  readonly #root: RootOfTrust;
  #policy: Policy | null;
  #policyText: string | null;
  #collateral: Collateral;
  #router: EvidenceRouter;
  readonly #listeners: Array<(r: ReloadResult) => void> = [];
  #watch: PolicyWatch | null = null;
  #reloading: Promise<ReloadResult> = Promise.resolve({ ok: true, changed: false, policy_version: null });
  #lastFailure: string | null = null;

  private constructor(init: {
    log: Logger;
    root: RootOfTrust;
    policy_path: string;
    policy: Policy | null;
    policy_text: string | null;
    collateral: Collateral;
    collateral_path: string | undefined;
  }) {
    this.#log = init.log;
    this.#root = init.root;
    this.policy_path = init.policy_path;
    this.#policy = init.policy;
    this.#policyText = init.policy_text;
    this.#collateral = init.collateral;
    this.collateral_path = init.collateral_path;
    this.#router = this.#build();
  }

  /** Builds the verifier from the configuration; configuration problems throw ConfigError naming the variable. */
  static create(config: ControlPlaneConfig, log: Logger, opts: VerifierFactoryOptions = {}): ControlPlaneVerifier {
    const root = loadRootOfTrust(config, log);
    const collateral = loadCollateral(config, log);
    const policy = loadPolicyFile(config, log);
    const v = new ControlPlaneVerifier({
      log,
      root,
      policy_path: policy.path,
      policy: policy.policy,
      policy_text: policy.text,
      collateral,
      collateral_path: config.collateral_file,
    });
    if (opts.watch !== false) {
      const files = [v.policy_path, ...(v.collateral_path !== undefined ? [resolve(v.collateral_path)] : [])];
      const debounce_ms = opts.debounce_ms ?? POLICY_WATCH_DEBOUNCE_MS;
      v.#watch = new PolicyWatch(files, debounce_ms, () => void v.reload('file change'), log);
    }
    return v;
  }

  get policy(): Policy | null {
    return this.#policy;
  }

  get policy_version(): string | null {
    return this.#policy?.version ?? null;
  }

  #build(): EvidenceRouter {
    const tdx =
      this.#policy === null
        ? noPolicyVerifier
        : new DcapVerifier({
            collateral: this.#collateral.value,
            policy: this.#policy,
            root_ca_der: this.#root.der,
            allow_non_intel_root: !this.#root.intel,
            logger: { warn: (m) => this.#log.warn(m) },
          });
    return new EvidenceRouter({ sandbox: new SandboxVerifier(), tdx });
  }

  async verify(req: VerifyRequest): Promise<Verdict> {
    const router = this.#router;
    const policy = this.#policy;
    const verdict = await router.verify(req);
    if (policy === null && req.sealed_required) {
      // Fail closed, whatever else was found: say first that no policy is loaded.
      const others = verdict.ok ? [] : verdict.reasons.filter((r) => r !== NO_POLICY_REASON);
      return { ok: false, evidence_type: verdict.evidence_type, reasons: [NO_POLICY_REASON, ...others] };
    }
    return verdict;
  }

  /** Called after every reload that changed the policy or collateral. */
  onChange(fn: (r: ReloadResult) => void): void {
    this.#listeners.push(fn);
  }

  /** Re-reads the policy (and the collateral file). Serialized: concurrent calls run one after another. */
  reload(trigger = 'reload'): Promise<ReloadResult> {
    const run = this.#reloading.then(() => this.#reload(trigger));
    this.#reloading = run.catch(() => ({ ok: false, changed: false, policy_version: this.policy_version }));
    return run;
  }

  async #reload(trigger: string): Promise<ReloadResult> {
    const log = this.#log;
    const old = this.policy_version;
    const failed = (error: string): ReloadResult => {
      // The watcher may fire again for the same broken file: say it once until something changes.
      const repeat = trigger === 'file change' && error === this.#lastFailure;
      this.#lastFailure = error;
      if (repeat) return { ok: false, changed: false, policy_version: old, error };
      log.error(
        { trigger, policy_file: this.policy_path, error, policy_version_in_force: old },
        `!!! ATTESTATION POLICY RELOAD FAILED: ${error}. The policy in force (${old ?? NO_POLICY_REASON}) stays. !!!`,
      );
      return { ok: false, changed: false, policy_version: old, error };
    };

    let text: string;
    try {
      text = await readFile(this.policy_path, 'utf8');
    } catch (err) {
      return failed(`cannot read ${this.policy_path}: ${(err as Error).message}`);
    }
    let policy = this.#policy;
    const policyChanged = text !== this.#policyText;
    if (policyChanged) {
      try {
        policy = parsePolicyText(text);
      } catch (err) {
        return failed(`${this.policy_path} is not a valid attestation policy: ${(err as Error).message}`);
      }
    }

    let collateral = this.#collateral;
    if (this.collateral_path !== undefined) {
      try {
        const ctext = await readFile(this.collateral_path, 'utf8');
        if (ctext !== collateral.text) collateral = collateralFromText(ctext);
      } catch (err) {
        return failed(`collateral file ${this.collateral_path} cannot be used: ${(err as Error).message}`);
      }
    }
    const collateralChanged = collateral !== this.#collateral;
    this.#lastFailure = null;
    if (!policyChanged && !collateralChanged) {
      log[trigger === 'file change' ? 'debug' : 'info'](
        { trigger, policy_version: old },
        'attestation policy unchanged',
      );
      return { ok: true, changed: false, policy_version: old };
    }

    this.#policy = policy;
    this.#policyText = text;
    this.#collateral = collateral;
    this.#router = this.#build();
    this.generation++;
    const now = this.policy_version;
    if (policyChanged && old !== null && old === now) {
      log.warn(
        { policy_version: now },
        'attestation policy content changed but its version did not: bump "version" so attestation records tell them apart',
      );
    }
    log.warn(
      {
        trigger,
        from: old,
        to: now,
        policy_changed: policyChanged,
        collateral_changed: collateralChanged,
        generation: this.generation,
      },
      'attestation policy reloaded: re-attesting every connected agent',
    );
    const result: ReloadResult = { ok: true, changed: true, policy_version: now };
    for (const fn of this.#listeners) {
      try {
        fn(result);
      } catch (err) {
        log.error({ err }, 'policy change listener failed');
      }
    }
    return result;
  }

  close(): void {
    this.#watch?.close();
  }
}

/** The verifier factory: see the header comment. */
export function createVerifier(
  config: ControlPlaneConfig,
  log: Logger,
  opts: VerifierFactoryOptions = {},
): ControlPlaneVerifier {
  return ControlPlaneVerifier.create(config, log, opts);
}
