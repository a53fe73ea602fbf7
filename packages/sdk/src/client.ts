// The SDK's entry point: `new EasyEnclave({ url, apiKey?, adminToken?, policy? })`. Long (~520 lines) because it is
// the whole public API, one short method per call delegating to ledger.ts, market.ts, jobs.ts, reservations.ts.
//
// - connect(app, { verify }): a client for an app behind the control plane's proxy. With verification (the
//   default unless the app is on a sandbox network) it first fetches the app's agent's evidence over a fresh
//   nonce of ours (GET /v1/apps/{app}/attestation, relayed by the control plane) and verifies it locally against
//   the policy; if that fails it throws AttestationError and no request is ever sent to the app.
// - verifyControlPlane(): the same check of the control plane's own evidence (GET /v1/attestation).
// - Ledger calls (ledger.ts), market calls (market.ts) and a few read calls (resolve, apps).
// connect() is in client-connect.ts. Browser-safe except verification, which is loaded lazily from ./verify.js (Node-only; see docs/sdk.md).
import type { AppClient } from './app-client.js';
import type { ConfidentialAppClient } from './confidential.js';
import { checkApp, connectApp, type ConnectOptions } from './client-connect.js';
import { newNonceHex } from './bytes.js';
import { AttestationError } from './errors.js';
import { Transport, type CallOptions, type TransportOptions } from './http.js';
import { callJson } from './json.js';
import type { Auth, IdempotentOptions } from './calls.js';
import * as ledger from './ledger.js';
import * as market from './market.js';
import * as reservations from './reservations.js';
import * as jobs from './jobs.js';
import * as deployments from './deployments.js';
import {
  AppAttestationSchema,
  AppsSchema,
  ResolveSchema,
  SelfAttestationSchema,
  type AppAttestation,
  type AppSummary,
  type Resolved,
  type SelfAttestation,
} from './schemas.js';
import type { TrustOptions, VerifiedEvidence } from './trust.js';
import type { EvidenceInput, LocalVerifier } from './verify.js';

export interface EasyEnclaveOptions extends Omit<TransportOptions, 'base_url'> {
  /** The control plane's API, e.g. https://control.example.com (the /v1/... paths are added). */
  url: string;
  /** An account's API key (ledger calls as that account). */
  apiKey?: string;
  /** The operator's admin token (admin calls). */
  adminToken?: string;
  /** The launcher's token (EE_LAUNCHER_TOKEN): files abuse reports. */
  launcherToken?: string;
  /** Attestation policy (control plane format) used whenever the SDK verifies evidence. */
  policy?: unknown;
  /** Collateral, root of trust and other verification options (see TrustOptions). */
  trust?: Omit<TrustOptions, 'policy'>;
  /**
   * The network you expect (e.g. 'forge-1'). Decides whether verification is on by default and whether
   * sandbox evidence may be accepted, from YOUR configuration instead of what the control plane says.
   */
  network?: string;
  /** Default account for balance(); without it, the account the API key belongs to (the key names it). */
  account?: string;
}

export type { ConnectOptions } from './client-connect.js';

export class EasyEnclave {
  readonly transport: Transport;
  readonly #o: EasyEnclaveOptions;
  #base: Promise<LocalVerifier> | undefined;
  readonly #byOverride = new WeakMap<TrustOptions, Promise<LocalVerifier>>();

  constructor(options: EasyEnclaveOptions) {
    if (typeof options?.url !== 'string' || !/^https?:\/\//.test(options.url))
      throw new TypeError('url must be an http(s) URL of the control plane');
    this.#o = options;
    this.transport = new Transport({ ...options, base_url: options.url });
  }

  get network(): string | undefined {
    return this.#o.network;
  }

  private get auth(): Auth {
    const o = this.#o;
    return {
      ...(o.apiKey !== undefined ? { api_key: o.apiKey } : {}),
      ...(o.adminToken !== undefined ? { admin_token: o.adminToken } : {}),
      ...(o.launcherToken !== undefined ? { launcher_token: o.launcherToken } : {}),
    };
  }

  /** The client's trust options merged with per-call ones; verifiers (and their DCAP caches) are kept per
   *  options object, so reusing one object (as AppClient.verify does) reuses its verifier. */
  private verifier(override?: TrustOptions): Promise<LocalVerifier> {
    const cached = override === undefined ? this.#base : this.#byOverride.get(override);
    if (cached !== undefined) return cached;
    const trust: TrustOptions = {
      ...this.#o.trust,
      ...(this.#o.policy !== undefined ? { policy: this.#o.policy } : {}),
      ...override,
    };
    // Node-only code, loaded only now (see the header comment).
    const v = import('./verify.js').then((m) => m.createVerifier(trust, this.#o.network));
    if (override === undefined) this.#base = v;
    else this.#byOverride.set(override, v);
    v.catch(() => (override === undefined ? (this.#base = undefined) : this.#byOverride.delete(override)));
    return v;
  }

  // ---- Apps ----

  /** GET /v1/resolve/{app}: where the app is served and on which network (typed errors when it is not). */
  async resolve(app: string, o: CallOptions = {}): Promise<Resolved> {
    return (
      await callJson(this.transport, { ...o, method: 'GET', path: `/v1/resolve/${checkApp(app)}` }, ResolveSchema)
    ).data;
  }

  /** GET /v1/apps (admin). */
  async apps(o: CallOptions = {}): Promise<AppSummary[]> {
    const headers = new Headers(o.headers);
    if (this.#o.adminToken !== undefined) headers.set('authorization', `Bearer ${this.#o.adminToken}`);
    return (await callJson(this.transport, { ...o, headers, method: 'GET', path: '/v1/apps' }, AppsSchema)).data.apps;
  }

  /** GET /v1/apps/{app}/attestation: an agent's evidence over `nonce` (default a fresh one), unverified. */
  async appEvidence(app: string, o: CallOptions & { nonce?: string; agent?: string } = {}): Promise<AppAttestation> {
    const q = new URLSearchParams({ nonce: o.nonce ?? newNonceHex() });
    if (o.agent !== undefined) q.set('agent', o.agent);
    return (
      await callJson(
        this.transport,
        { ...o, method: 'GET', path: `/v1/apps/${checkApp(app)}/attestation?${q}` },
        AppAttestationSchema,
      )
    ).data;
  }

  /** Fetches and verifies an agent of the app; throws AttestationError with the reasons when it fails. */
  async verifyApp(
    app: string,
    o: CallOptions & { agent?: string; trust?: TrustOptions } = {},
  ): Promise<VerifiedEvidence> {
    const verifier = this.verifier(o.trust);
    const nonce = newNonceHex();
    const ev = await this.appEvidence(app, { ...o, nonce });
    const input: EvidenceInput = {
      domain: 'ee-relay-v1', // a client's nonce relayed to the agent (never the control plane's own challenges)
      nonce_hex: nonce,
      echoed_nonce: ev.nonce,
      quote_b64: ev.quote,
      report_data_hex: ev.report_data,
      keyset: ev.keyset,
      repo: ev.repo,
      release_tag: ev.release_tag,
      network: ev.network,
      app: ev.app,
      agent_id: ev.agent_id,
    };
    if (ev.app !== app) throw new AttestationError([`the evidence is for app "${ev.app}", not "${app}"`]);
    return (await verifier).verify(input);
  }

  // ---- Private jobs (docs/workloads.md) ----

  /** Where a job of this size would run now: the node and the launcher to seal its env to. */
  jobPlacement(vcpus = 1, memory_mib = 256, o: CallOptions = {}): Promise<jobs.Placement> {
    return jobs.placement(this.transport, this.auth, vcpus, memory_mib, o);
  }

  /**
   * Places a job, verifies its launcher's evidence over our own nonce (unless `verify` is false), seals the env
   * to the attested key and submits it. Keep `result_key` to open the result and the logs.
   */
  async submitPrivateJob(
    p: jobs.PrivateJobParams & { verify?: boolean | TrustOptions },
    o: CallOptions = {},
  ): Promise<jobs.SubmittedJob> {
    const target = await this.launcherTarget(p.vcpus ?? 1, p.memory_mib ?? 256, p.verify, o);
    return jobs.submitJob(this.transport, this.auth, p, target, o);
  }

  /** The placement's launcher, its evidence verified over our own nonce (unless `verify` is false). */
  private async launcherTarget(
    vcpus: number,
    memory_mib: number,
    verify: boolean | TrustOptions | undefined,
    o: CallOptions,
  ): Promise<{ hpke_public_key: string; receipt_public_key: string | null }> {
    const place = await this.jobPlacement(vcpus, memory_mib, o);
    return this.verifiedLauncher(place.launcher.agent_id, place.hpke_public_key, verify, o);
  }

  /** A launcher's keys, its evidence verified over our own nonce: it must attest `hpke_public_key`. */
  private async verifiedLauncher(
    agent_id: string | null,
    hpke_public_key: string,
    verify: boolean | TrustOptions | undefined,
    o: CallOptions,
  ): Promise<{ hpke_public_key: string; receipt_public_key: string | null }> {
    if (verify === false) return { hpke_public_key, receipt_public_key: null };
    if (agent_id === null) throw new AttestationError(["the job's new launcher is not connected: nothing to verify"]);
    const v = await this.verifyApp(jobs.LAUNCHER_APP, {
      ...o,
      agent: agent_id,
      ...(typeof verify === 'object' ? { trust: verify } : {}),
    });
    if (v.keyset.hpke_public_key !== hpke_public_key)
      throw new AttestationError(['the control plane names a launcher key the launcher did not attest']);
    return v.keyset;
  }

  /**
   * Waits for a submitted job's end. A job retried on another node (`retry_on_node_loss`) waits for its env:
   * the new launcher is verified like the first, the env sealed to it again, and its receipt key is the one the
   * usage record is checked against. Returns the ended job with the submission's keys, ready for openJobResult.
   */
  async waitPrivateJob(
    s: jobs.SubmittedJob,
    p: Pick<jobs.PrivateJobParams, 'env' | 'onState'> & { verify?: boolean | TrustOptions },
    o: CallOptions = {},
  ): Promise<jobs.SubmittedJob> {
    let receipt_public_key = s.receipt_public_key;
    const onEnvRequired = async (job: jobs.Job): Promise<void> => {
      const need = job.env_required!;
      if (need.launcher.agent_id === null) return; // its launcher is not connected yet: asked again next poll
      const target = await this.verifiedLauncher(need.launcher.agent_id, need.hpke_public_key, p.verify, o);
      await jobs.resealJob(this.transport, this.auth, job.job_id, p.env ?? {}, target.hpke_public_key, o);
      receipt_public_key = target.receipt_public_key;
    };
    const job = await jobs.waitJob(this.transport, this.auth, s.job.job_id, p.onState, o, onEnvRequired);
    return { ...s, job, receipt_public_key };
  }

  // ---- Deployments (docs/workloads.md §3) ----

  /**
   * Deploys an app: the launcher chosen by placement is verified, the env sealed to its attested key, a lease
   * created on its node; waits until the app serves through its agent (state running), or failed.
   */
  async deploy(
    p: deployments.DeployParams & { verify?: boolean | TrustOptions },
    o: CallOptions = {},
  ): Promise<deployments.Deployment> {
    const target = await this.launcherTarget(p.vcpus ?? 1, p.memory_mib ?? 256, p.verify, o);
    const d = await deployments.createDeployment(this.transport, this.auth, p, target.hpke_public_key, o);
    return deployments.waitDeployment(this.transport, this.auth, d.deployment_id, ['running'], o);
  }

  deployment(id: string, o: CallOptions = {}): Promise<deployments.Deployment> {
    return deployments.getDeployment(this.transport, this.auth, id, o);
  }

  /**
   * Rolling restart onto a new image and/or a new env (what is not given carries over); waits until the new
   * generation serves. A new env is sealed to the deployment's launcher after verifying its evidence (unless
   * `verify` is false), exactly as at creation.
   */
  async updateDeployment(
    id: string,
    update: string | { image?: string; env?: Record<string, string>; verify?: boolean | TrustOptions },
    o: CallOptions = {},
  ): Promise<deployments.Deployment> {
    const u = typeof update === 'string' ? { image: update } : update;
    const patch: deployments.DeploymentPatch = u.image !== undefined ? { image: u.image } : {};
    if (u.env !== undefined) {
      const l = (await this.deployment(id, o)).launcher;
      if (!l) throw new AttestationError(["the deployment's launcher is not connected: nothing to seal the env to"]);
      const target = await this.verifiedLauncher(
        l.agent_id,
        l.hpke_public_key,
        'verify' in u ? u.verify : undefined,
        o,
      );
      patch.sealed_env = await deployments.sealDeploymentEnv(u.env, target.hpke_public_key, id);
      patch.env_key = target.hpke_public_key;
    }
    await deployments.updateDeployment(this.transport, this.auth, id, patch, o);
    return deployments.waitDeployment(this.transport, this.auth, id, ['running'], o);
  }

  /** Stops it (container and agent) and ends its lease; waits until it is stopped. */
  async stopDeployment(id: string, o: CallOptions = {}): Promise<deployments.Deployment> {
    await deployments.stopDeployment(this.transport, this.auth, id, o);
    return deployments.waitDeployment(this.transport, this.auth, id, ['stopped'], o);
  }

  /** `submitPrivateJob`, then waits for the end and opens the sealed result: the decrypted result. */
  async runPrivateJob(
    p: jobs.PrivateJobParams & { verify?: boolean | TrustOptions },
    o: CallOptions = {},
  ): Promise<jobs.PrivateJobOutcome> {
    const s = await this.submitPrivateJob(p, o);
    return jobs.openJobResult(await this.waitPrivateJob(s, p, o));
  }

  job(id: string, o: CallOptions = {}): Promise<jobs.Job> {
    return jobs.getJob(this.transport, this.auth, id, o);
  }

  waitJob(id: string, onState?: (job: jobs.Job) => void, o: CallOptions = {}): Promise<jobs.Job> {
    return jobs.waitJob(this.transport, this.auth, id, onState, o);
  }

  cancelJob(id: string, o: CallOptions = {}): Promise<jobs.Job> {
    return jobs.cancelJob(this.transport, this.auth, id, o);
  }

  /** The job's output as it is written, opened with the job's result key (streaming variant). */
  jobLogs(id: string, result_key: jobs.SubmittedJob['result_key'], o: CallOptions = {}) {
    return jobs.jobLogs(this.transport, this.auth, id, result_key, o);
  }

  /** A client for `app`; verified first unless verification is off (see ConnectOptions.verify). */
  async connect(app: string, o: ConnectOptions & { confidential: true }): Promise<ConfidentialAppClient>;
  async connect(app: string, o?: ConnectOptions): Promise<AppClient>;
  async connect(app: string, o: ConnectOptions = {}): Promise<AppClient> {
    return connectApp(
      {
        transport: this.transport,
        auth: this.auth,
        network: this.#o.network,
        resolve: (a, c) => this.resolve(a, c),
        verifyApp: (a, c) => this.verifyApp(a, c),
      },
      app,
      o,
    );
  }

  // ---- Reservations (docs/confidential.md) ----

  createReservation(p: reservations.CreateReservationParams, o?: IdempotentOptions) {
    return reservations.createReservation(this.transport, this.auth, p, o);
  }

  reservation(id: string, o?: CallOptions) {
    return reservations.reservation(this.transport, this.auth, id, o);
  }

  cancelReservation(id: string, o?: CallOptions) {
    return reservations.cancelReservation(this.transport, this.auth, id, o);
  }

  setUnitPrices(node: string, prices: reservations.UnitPrices, o?: CallOptions) {
    return reservations.setUnitPrices(this.transport, this.auth, node, prices, o);
  }

  // ---- The control plane itself ----

  /** GET /v1/attestation: the control plane's own evidence over `nonce` (default a fresh one), unverified. */
  async controlPlaneEvidence(o: CallOptions & { nonce?: string } = {}): Promise<SelfAttestation> {
    return (
      await callJson(
        this.transport,
        { ...o, method: 'GET', path: `/v1/attestation?nonce=${o.nonce ?? newNonceHex()}` },
        SelfAttestationSchema,
      )
    ).data;
  }

  /** Verifies the control plane's own evidence; throws AttestationError with the reasons when it fails. */
  async verifyControlPlane(o: CallOptions & TrustOptions = {}): Promise<VerifiedEvidence> {
    const { signal, timeout_ms, max_retries, headers, ...trust } = o;
    const call = {
      ...(signal ? { signal } : {}),
      ...(timeout_ms !== undefined ? { timeout_ms } : {}),
      ...(max_retries !== undefined ? { max_retries } : {}),
      ...(headers ? { headers } : {}),
    };
    const verifier = this.verifier(Object.keys(trust).length > 0 ? trust : undefined);
    const nonce = newNonceHex();
    const ev = await this.controlPlaneEvidence({ ...call, nonce });
    return (await verifier).verify({
      domain: 'ee-self-v1', // the control plane's own evidence, never an agent's
      nonce_hex: nonce,
      echoed_nonce: ev.nonce,
      quote_b64: ev.quote,
      report_data_hex: ev.report_data,
      keyset: ev.keyset,
      repo: ev.repo,
      release_tag: ev.release_tag,
      network: null,
    });
  }

  // ---- Ledger ----

  createAccount(a: { kind: 'user' | 'provider'; name: string }, o?: IdempotentOptions) {
    return ledger.createAccount(this.transport, this.auth, a, o);
  }

  purchaseCredits(p: { account: string; amount: ledger.Amount; payment_ref: string }, o?: IdempotentOptions) {
    return ledger.purchaseCredits(this.transport, this.auth, p, o);
  }

  transferCredits(p: { to: string; amount: ledger.Amount; from?: string; memo?: string }, o?: IdempotentOptions) {
    return ledger.transferCredits(this.transport, this.auth, p, o);
  }

  /** Every user and provider account, newest first (admin), optionally of one kind. */
  accounts(p?: { limit?: number; kind?: 'user' | 'provider' }, o?: CallOptions) {
    return ledger.accounts(this.transport, this.auth, p, o);
  }

  /**
   * A new API key for the account (default: the API key's own), shown once; the older keys keep working for
   * `grace_ms` (default 24 h, 0: refused at once). Uses the API key, else the admin token.
   */
  rotateApiKey(account?: string, p?: { grace_ms?: number }, o?: IdempotentOptions) {
    return ledger.rotateApiKey(this.transport, this.auth, this.accountFor(account, 'rotateApiKey()'), p, o);
  }

  /** The account an API key belongs to: keys are `ee_{kind}_{20 hex id}_{secret}`. */
  get keyAccount(): string | undefined {
    const m = /^ee_(user|provider)_([0-9a-f]{20})_/.exec(this.#o.apiKey ?? '');
    return m ? `${m[1]}:${m[2]}` : undefined;
  }

  /** The account a call names, else the client's default (`account` option, else the API key's). */
  private accountFor(account: string | undefined, call: string): string {
    const a = account ?? this.#o.account ?? this.keyAccount;
    if (a === undefined)
      throw new TypeError(`${call} needs an account (or \`account\` / \`apiKey\` in the EasyEnclave options)`);
    return a;
  }

  balance(account?: string, o?: CallOptions) {
    return ledger.balance(this.transport, this.auth, this.accountFor(account, 'balance()'), o);
  }

  /** The account's history, every page; checked when called (a TypeError), not when first iterated. */
  transfers(p: { account?: string; limit?: number } = {}, o?: CallOptions) {
    const account = this.accountFor(p.account, 'transfers()');
    if (p.limit !== undefined && (!Number.isSafeInteger(p.limit) || p.limit < 1))
      throw new TypeError('transfers(): limit must be a positive integer (the page size)');
    return ledger.transfers(this.transport, this.auth, { ...p, account }, o);
  }

  // ---- Market (market.ts has the routes and who may call them) ----

  registerNode(p: market.RegisterNodeParams, o?: IdempotentOptions) {
    return market.registerNode(this.transport, this.auth, p, o);
  }

  node(id: string, o?: CallOptions) {
    return market.node(this.transport, this.auth, id, o);
  }

  /** Nodes, newest first, every page: all (admin token), or with `{ mine: true }` the provider's own (its API key). */
  nodes(p?: { limit?: number; mine?: boolean }, o?: CallOptions) {
    return market.nodes(this.transport, this.auth, p, o);
  }

  /** Leases, newest first, every page: a user's own, those on a provider's nodes, or all (admin). */
  leases(p?: { limit?: number }, o?: CallOptions) {
    return market.leases(this.transport, this.auth, p, o);
  }

  /** Payouts, newest first, every page: a provider's own, or all (admin). */
  payouts(p?: { limit?: number }, o?: CallOptions) {
    return market.payouts(this.transport, this.auth, p, o);
  }

  /** Abuse reports, newest first, every page, optionally of one node (admin). */
  abuseReports(p?: { limit?: number; node?: string }, o?: CallOptions) {
    return market.abuseReports(this.transport, this.auth, p, o);
  }

  stake(node: string, amount: ledger.Amount, o?: IdempotentOptions) {
    return market.stake(this.transport, this.auth, node, amount, o);
  }

  unstake(node: string, amount?: ledger.Amount, o?: IdempotentOptions) {
    return market.unstake(this.transport, this.auth, node, amount, o);
  }

  createLease(p: market.CreateLeaseParams, o?: IdempotentOptions) {
    return market.createLease(this.transport, this.auth, p, o);
  }

  lease(id: string, o?: CallOptions) {
    return market.lease(this.transport, this.auth, id, o);
  }

  cancelLease(id: string, o?: CallOptions) {
    return market.cancelLease(this.transport, this.auth, id, o);
  }

  settlement(period: market.Period, o?: CallOptions) {
    return market.settlement(this.transport, this.auth, period, o);
  }

  finalizeSettlement(period: market.Period, o?: IdempotentOptions) {
    return market.finalizeSettlement(this.transport, this.auth, period, o);
  }

  reportAbuse(p: market.AbuseReportParams, o?: IdempotentOptions) {
    return market.reportAbuse(this.transport, this.auth, p, o);
  }

  abuseReport(id: string, o?: CallOptions) {
    return market.abuseReport(this.transport, this.auth, id, o);
  }

  authorizeAbuseReport(id: string, o?: IdempotentOptions) {
    return market.authorizeAbuseReport(this.transport, this.auth, id, o);
  }

  createPayout(p: { provider: string; amount: ledger.Amount; reference?: string }, o?: IdempotentOptions) {
    return market.createPayout(this.transport, this.auth, p, o);
  }

  payout(id: string, o?: CallOptions) {
    return market.payout(this.transport, this.auth, id, o);
  }

  confirmPayout(id: string, o?: IdempotentOptions) {
    return market.resolvePayout(this.transport, this.auth, id, true, o);
  }

  cancelPayout(id: string, o?: IdempotentOptions) {
    return market.resolvePayout(this.transport, this.auth, id, false, o);
  }
}
