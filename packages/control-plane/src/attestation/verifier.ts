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
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import {
  DcapVerifier,
  EvidenceRouter,
  INTEL_PCS_URL,
  INTEL_SGX_ROOT_CA_DER,
  normalizeCollateral,
  parsePolicy,
  PccsCollateralSource,
  SandboxVerifier,
  StaticCollateralSource,
  type CollateralSource,
  type EvidenceVerifier,
  type Policy,
  type Verdict,
  type VerifyRequest,
} from '@easyenclave/attestation';
import { certificateDer, x509 } from '@easyenclave/attestation/x509';
import { ConfigError, type ControlPlaneConfig } from '../config.js';

export const NO_POLICY_REASON = 'no allowlist policy loaded';
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

interface Source {
  text: string;
  value: CollateralSource;
}

const sha256hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A DER or PEM file holding exactly one certificate, as DER. */
export function readCertificateFile(path: string): Buffer {
  return certificateDer(readFileSync(path));
}

function readCollateralFile(path: string): Source {
  const text = readFileSync(path, 'utf8');
  return { text, value: new StaticCollateralSource(normalizeCollateral(JSON.parse(text))) };
}

function parsePolicyText(text: string): Policy {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`);
  }
  return parsePolicy(json);
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
  readonly #root: { der: Buffer; intel: boolean };
  #policy: Policy | null;
  #policyText: string | null;
  #collateral: Source;
  #router: EvidenceRouter;
  readonly #listeners: Array<(r: ReloadResult) => void> = [];
  readonly #watchers: FSWatcher[] = [];
  #debounce: NodeJS.Timeout | null = null;
  #reloading: Promise<ReloadResult> = Promise.resolve({ ok: true, changed: false, policy_version: null });
  #closed = false;
  #lastFailure: string | null = null;

  private constructor(init: {
    log: Logger;
    root: { der: Buffer; intel: boolean };
    policy_path: string;
    policy: Policy | null;
    policy_text: string | null;
    collateral: Source;
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
    // Root of trust.
    let root: { der: Buffer; intel: boolean } = { der: INTEL_SGX_ROOT_CA_DER, intel: true };
    if (config.attest_root_ca_file !== undefined) {
      let der: Buffer;
      try {
        der = readCertificateFile(config.attest_root_ca_file);
      } catch (err) {
        throw new ConfigError(
          'EE_ATTEST_ROOT_CA_FILE',
          `EE_ATTEST_ROOT_CA_FILE must be a DER or PEM certificate file: ${config.attest_root_ca_file}: ${(err as Error).message}`,
        );
      }
      const intel = der.equals(INTEL_SGX_ROOT_CA_DER);
      if (!intel && !config.attest_allow_non_intel_root) {
        throw new ConfigError(
          'EE_ATTEST_ALLOW_NON_INTEL_ROOT',
          `EE_ATTEST_ALLOW_NON_INTEL_ROOT must be 1 to use EE_ATTEST_ROOT_CA_FILE=${config.attest_root_ca_file}: it is not Intel's SGX Root CA ` +
            "(only Intel's root proves real TDX hardware; a non-Intel root is for tests only)",
        );
      }
      root = { der, intel };
      if (!intel) {
        const cert = new x509.X509Certificate(der);
        log.warn(
          {
            root_ca_file: config.attest_root_ca_file,
            subject: cert.subject,
            sha256: sha256hex(der),
            EE_ATTEST_ALLOW_NON_INTEL_ROOT: '1',
          },
          "!!! ATTESTATION OVERRIDE: DCAP quotes are verified against a root CA that is NOT Intel's SGX Root CA. " +
            'TDX evidence accepted by this control plane proves nothing about real hardware. Tests only: never run production like this. !!!',
        );
      }
    }

    // Collateral: a file (offline) or a PCCS (Intel's PCS by default). Never from agents.
    let collateral: Source;
    if (config.collateral_file !== undefined) {
      try {
        collateral = readCollateralFile(config.collateral_file);
      } catch (err) {
        throw new ConfigError(
          'EE_COLLATERAL_FILE',
          `EE_COLLATERAL_FILE must be a DCAP collateral JSON file: ${config.collateral_file}: ${(err as Error).message}`,
        );
      }
      log.info({ collateral_file: config.collateral_file }, 'DCAP collateral from a file (offline)');
    } else {
      const url = config.pccs_url ?? INTEL_PCS_URL;
      collateral = { text: '', value: new PccsCollateralSource({ url, logger: { warn: (m) => log.warn(m) } }) };
      log.info({ pccs_url: url }, 'DCAP collateral from a PCCS');
    }

    // Policy.
    const policy_path = resolve(config.allowlist_asset);
    let policy: Policy | null = null;
    let policy_text: string | null = null;
    try {
      policy_text = readFileSync(policy_path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new ConfigError(
          'EE_ALLOWLIST_ASSET',
          `EE_ALLOWLIST_ASSET must be a readable attestation policy file: ${policy_path}: ${(err as Error).message}`,
        );
      }
    }
    if (policy_text !== null) {
      try {
        policy = parsePolicyText(policy_text);
      } catch (err) {
        throw new ConfigError(
          'EE_ALLOWLIST_ASSET',
          `EE_ALLOWLIST_ASSET must be a valid attestation policy: ${policy_path}: ${(err as Error).message}`,
        );
      }
      log.info(
        { policy_file: policy_path, policy_version: policy.version, releases: policy.measurements.length },
        'attestation policy loaded',
      );
    } else {
      log.warn(
        { policy_file: policy_path },
        `${NO_POLICY_REASON}: ${policy_path} does not exist, so sealed networks (forge-1) reject every agent; the sandbox network still works. ` +
          'Create the file (it is picked up when written) or set EE_ALLOWLIST_ASSET.',
      );
    }

    const v = new ControlPlaneVerifier({
      log,
      root,
      policy_path,
      policy,
      policy_text,
      collateral,
      collateral_path: config.collateral_file,
    });
    if (opts.watch !== false) v.#watch(opts.debounce_ms ?? POLICY_WATCH_DEBOUNCE_MS);
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
        if (ctext !== collateral.text)
          collateral = { text: ctext, value: new StaticCollateralSource(normalizeCollateral(JSON.parse(ctext))) };
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

  #watch(debounce_ms: number): void {
    const files = [this.policy_path, ...(this.collateral_path !== undefined ? [resolve(this.collateral_path)] : [])];
    // Directories, not files: editors replace files by rename, the policy file may not exist yet, and mounted
    // Kubernetes config maps swap a `..data` symlink rather than the file. A reload does nothing when the
    // contents are unchanged.
    const names = new Set(files.map((f) => basename(f)));
    const relevant = (f: string | Buffer | null) =>
      f === null || names.has(f.toString()) || f.toString().startsWith('..');
    for (const dir of new Set(files.map((f) => dirname(f)))) {
      let w: FSWatcher;
      try {
        w = watch(dir, { persistent: false }, (_event, filename) => {
          if (relevant(filename)) this.#schedule(debounce_ms);
        });
      } catch (err) {
        this.#log.warn(
          { dir, err: (err as Error).message },
          'cannot watch the attestation policy directory: changes apply after a restart (SIGHUP)',
        );
        continue;
      }
      w.on('error', (err) =>
        this.#log.warn(
          { dir, err: err.message },
          'attestation policy watcher failed: changes apply after a restart (SIGHUP)',
        ),
      );
      this.#watchers.push(w);
    }
  }

  #schedule(debounce_ms: number): void {
    if (this.#closed) return;
    if (this.#debounce !== null) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = null;
      if (!this.#closed) void this.reload('file change');
    }, debounce_ms);
    this.#debounce.unref();
  }

  close(): void {
    this.#closed = true;
    if (this.#debounce !== null) clearTimeout(this.#debounce);
    for (const w of this.#watchers) w.close();
    this.#watchers.length = 0;
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
