// Shared pieces of the attestation end-to-end tests: a test root of trust written to files the control plane
// reads (root CA, collateral, policy), TDX answers for the raw protocol client, and a tiny fake configfs-tsm
// "kernel" that fills outblob with a quote from the test root of trust for whatever report_data was written.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { computeReportData, normalizeCollateral, type DcapCollateral, type Keyset } from '@easyenclave/attestation';
import { TEST_PLATFORM, TestRootOfTrust, type QuoteOptions } from '@easyenclave/attestation/testing/root-of-trust';
import type { AttestResponseMessage, RegisterMessage } from '@easyenclave/protocol';
import { onCleanup, type CpEnv } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import type { BindingOptions, Challenge, RawAgent } from '../lifecycle/raw-agent.js';

export const m48 = (s: string): Buffer => createHash('sha384').update(s).digest();

/** The measurements of the release the default policy allows (acme/demo@v1.0.0, the raw agent's default). */
export const GOOD = {
  mrtd: m48('e2e mrtd v1'),
  rtmr0: m48('e2e rtmr0'),
  rtmr1: m48('e2e rtmr1'),
  rtmr2: m48('e2e rtmr2'),
  rtmr3: Buffer.alloc(48),
};
/** Another build: allowed only by the policies that list it. */
export const OTHER = {
  mrtd: m48('e2e mrtd v2'),
  rtmr0: m48('e2e rtmr0'),
  rtmr1: m48('e2e rtmr1'),
  rtmr2: m48('e2e rtmr2'),
  rtmr3: Buffer.alloc(48),
};
export type Build = typeof GOOD;

export const buildQuote = (b: Build): QuoteOptions => ({
  mrtd: b.mrtd,
  rtmr0: b.rtmr0,
  rtmr1: b.rtmr1,
  rtmr2: b.rtmr2,
  rtmr3: b.rtmr3,
});

export interface PolicyRelease {
  repo?: string;
  release_tag?: string;
  build: Build;
}

export function policyJson(version: string, releases: PolicyRelease[] = [{ build: GOOD }]): Record<string, unknown> {
  return {
    version,
    measurements: releases.map((r) => ({
      repo: r.repo ?? 'acme/demo',
      release_tag: r.release_tag ?? 'v1.0.0',
      mrtd: r.build.mrtd.toString('hex'),
      rtmr0: r.build.rtmr0.toString('hex'),
      rtmr1: r.build.rtmr1.toString('hex'),
      rtmr2: r.build.rtmr2.toString('hex'),
    })),
    tcb: { allowed_statuses: ['UpToDate', 'SWHardeningNeeded'], out_of_date_grace_days: 0 },
    advisory_deny: [],
    networks: { 'forge-1': { sealed: true }, 'sandbox-1': { sealed: false } },
  };
}

export interface TrustFiles {
  rot: TestRootOfTrust;
  collateral: DcapCollateral;
  dir: string;
  root_pem: string;
  root_der: string;
  collateral_file: string;
  policy_file: string;
  /** Environment for startCp/spawnCp: this root (with the override), the collateral file and the policy file. */
  env: CpEnv;
  writePolicy(json: unknown): void;
  /** The evidence hash the control plane records for a quote: SHA-256(quote ‖ collateral digest). */
  evidenceHash(quote: Buffer): string;
}

let shared: Promise<{ rot: TestRootOfTrust; collateral: DcapCollateral }> | null = null;

/** One root of trust per test process (generating one takes a while); fresh files per call. */
export async function trustFiles(policy: unknown | null = policyJson('e2e-1')): Promise<TrustFiles> {
  shared ??= (async () => {
    const rot = await TestRootOfTrust.create();
    return { rot, collateral: await rot.collateral() };
  })();
  const { rot, collateral } = await shared;
  const dir = tmpDir('ee-e2e-');
  const root_pem = join(dir, 'root.pem');
  const root_der = join(dir, 'root.der');
  const collateral_file = join(dir, 'collateral.json');
  const policy_file = join(dir, 'policy.json');
  writeFileSync(root_pem, rot.root.pem);
  writeFileSync(root_der, rot.root.der);
  writeFileSync(collateral_file, JSON.stringify(collateral));
  const writePolicy = (json: unknown) =>
    writeFileSync(policy_file, typeof json === 'string' ? json : JSON.stringify(json, null, 2));
  if (policy !== null) writePolicy(policy);
  const digest = Buffer.from(normalizeCollateral(collateral).digest, 'hex');
  return {
    rot,
    collateral,
    dir,
    root_pem,
    root_der,
    collateral_file,
    policy_file,
    env: {
      EE_ATTEST_ROOT_CA_FILE: root_pem,
      EE_ATTEST_ALLOW_NON_INTEL_ROOT: '1',
      EE_COLLATERAL_FILE: collateral_file,
      EE_ALLOWLIST_ASSET: policy_file,
    },
    writePolicy,
    evidenceHash: (quote) => createHash('sha256').update(quote).update(digest).digest('hex'),
  };
}

export interface TdxAnswerOptions extends BindingOptions {
  quote?: QuoteOptions;
  /** Bind report_data to this keyset instead of the one sent. */
  keyset_for_report_data?: Keyset;
  nonce_hex?: string;
}

/** An attest_response carrying a TDX quote from the test root of trust, bound to the challenge's nonce. */
export function tdxAnswer(
  raw: RawAgent,
  rot: TestRootOfTrust,
  req: Challenge,
  build: Build = GOOD,
  o: TdxAnswerOptions = {},
): AttestResponseMessage {
  const report_data = computeReportData(
    raw.domainFor(req, o),
    Buffer.from(String(req.nonce), 'hex'),
    o.keyset_for_report_data ?? raw.keyset,
  );
  const quote = rot.quote({ ...buildQuote(build), report_data, ...o.quote });
  return {
    type: 'attest_response',
    nonce: o.nonce_hex ?? String(req.nonce),
    quote: quote.toString('base64'),
    report_data: report_data.toString('hex'),
    measurements: { mrtd: build.mrtd.toString('hex') },
    keyset: raw.keyset,
    ...raw.possession(req, o),
  };
}

export function sendTdx(
  raw: RawAgent,
  rot: TestRootOfTrust,
  req: Challenge,
  build: Build = GOOD,
  o: TdxAnswerOptions = {},
): AttestResponseMessage {
  const msg = tdxAnswer(raw, rot, req, build, o);
  raw.sendJson(msg);
  return msg;
}

/** register → attest with a TDX quote → ok → health pass. */
export async function attestTdx(
  raw: RawAgent,
  rot: TestRootOfTrust,
  build: Build = GOOD,
  o: { register?: Partial<RegisterMessage>; answer?: TdxAnswerOptions } = {},
): Promise<{ request: Record<string, unknown>; response: AttestResponseMessage }> {
  raw.register(o.register);
  await raw.next('registered');
  const request = await raw.next('attest_request');
  const response = sendTdx(raw, rot, request, build, o.answer);
  const result = await raw.next('attest_result');
  if (result.ok !== true) throw new Error(`TDX attestation refused: ${JSON.stringify(result)}`);
  raw.health('pass');
  return { request, response };
}

/**
 * Another TDX machine under the same root of trust: its own PCK leaf (same FMSPC and TCB, another PPID). Quotes
 * built with `quote` carry that leaf and have their QE report signed by its key, so they verify with its PPID.
 */
export async function otherPlatform(rot: TestRootOfTrust): Promise<{ ppid: string; quote: QuoteOptions }> {
  const ppid = randomBytes(16);
  const leaf = await rot.issuePck('platform', {
    ppid,
    cpusvn: [...TEST_PLATFORM.cpusvn],
    pcesvn: TEST_PLATFORM.pcesvn,
    pce_id: Buffer.from('0000', 'hex'),
    fmspc: Buffer.from(rot.fmspc, 'hex'),
    sgx_type: 1,
    platform_instance_id: randomBytes(16),
  });
  return {
    ppid: ppid.toString('hex'),
    quote: { pck_chain_pem: rot.pckChainPem('platform', leaf), qe_report_signer: leaf.private },
  };
}

// ---------- A fake configfs-tsm ----------

export interface FakeKernelOptions {
  /** Quote options (measurements etc.) for every quote. */
  quote?: QuoteOptions;
  /** The first `race` entries get a quote for other report_data, as if another writer got in between. */
  race?: number;
  /** What the `provider` attribute reads (default tdx_guest). */
  provider?: string;
}

/**
 * Stands in for the kernel: creates the report directory, and for every entry whose inblob holds 64 bytes and
 * which has no outblob yet, writes provider and generation, then the quote into outblob (atomically, by rename).
 */
export class FakeTsm {
  readonly path: string;
  readonly seen = new Set<string>();
  quotes = 0;
  readonly #served = new Set<string>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly rot: TestRootOfTrust,
    readonly opts: FakeKernelOptions = {},
  ) {
    this.path = join(tmpDir('ee-tsm-'), 'report');
    mkdirSync(this.path, { recursive: true });
    this.#timer = setInterval(() => this.#tick(), 2);
    onCleanup(() => this.stop());
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Entries still present (the provider removes its entries after use). */
  entries(): string[] {
    return existsSync(this.path) ? readdirSync(this.path) : [];
  }

  #tick(): void {
    let names: string[];
    try {
      names = readdirSync(this.path);
    } catch {
      return;
    }
    for (const name of names) {
      const entry = join(this.path, name);
      if (this.#served.has(name)) continue; // written once, never again (the provider is removing it)
      try {
        if (!this.seen.has(name)) {
          this.seen.add(name);
          writeFileSync(join(entry, 'provider'), `${this.opts.provider ?? 'tdx_guest'}\n`);
        }
        const inblob = join(entry, 'inblob');
        if (!existsSync(inblob) || statSync(inblob).size !== 64) continue;
        this.#served.add(name);
        const report_data = readFileSync(inblob);
        const racing = this.quotes < (this.opts.race ?? 0);
        const quote = this.rot.quote({
          ...this.opts.quote,
          report_data: racing ? Buffer.alloc(64, 0xee) : report_data,
        });
        this.quotes++;
        writeFileSync(join(entry, 'generation'), '1\n');
        writeFileSync(join(entry, '.outblob.tmp'), quote);
        renameSync(join(entry, '.outblob.tmp'), join(entry, 'outblob'));
      } catch {
        // the entry went away under us: fine
      }
    }
  }
}

// ---------- Logs ----------

/** A pino logger that keeps its JSON lines, to assert on what was logged. */
export function memoryLogger(level = 'info'): {
  logger: Logger;
  lines: () => Array<Record<string, unknown>>;
  text: () => string;
} {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = pino({ level }, stream);
  const text = () => chunks.join('');
  const lines = () =>
    text()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, text };
}
