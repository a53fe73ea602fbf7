// TDX quote verification with Intel DCAP (DESIGN §3). Order of checks, cheapest first; every step fails
// closed and every reason is collected where later steps can still run:
//   1. size and header (quote.ts): ≤ 64 KiB, v4/v5, ECDSA-P256, TDX, Intel QE vendor id; TD attributes
//      (debug TD, reserved bits, SEPT_VE_DISABLE), MRSERVICETD
//   2. report_data binding: computeReportData(nonce, keyset) equals the quote's report_data (constant time)
//   3. measurement allowlist (policy.ts), if a policy is set
//   4. DCAP signature chain with collateral: @phala/dcap-qvl (PCK chain to the root, TCB info and QE
//      identity signatures and dates, QE report signature and hash, QE identity policy, quote signature,
//      TCB level) — plus our own check of the quote signature with node:crypto
//   5. our own chain-shape and CRL checks (crl.ts), which dcap-qvl 0.3.9 skips or gets wrong
//   6. TCB: TDX module identity (also skipped by dcap-qvl), then the policy's allowed statuses, OutOfDate
//      grace window and advisory deny-list
//   → accept, with evidence_hash = SHA-256(quote ‖ collateral digest) for the audit log.
//
// Performance: dcap-qvl re-parses and re-verifies everything (~25 ms) for every quote. Its verdict depends on
// the quote only through the header, the signature data minus the quote signature (attestation key, QE
// report and signature, QE auth data, PCK chain), TEE_TCB_SVN, the TD attributes and MRSERVICETD — all
// constant for one platform and TD configuration — plus the collateral, the root and the time. So its
// verdict is cached under a digest of exactly those inputs, with the time window in which all of its date
// checks hold; on a hit only the per-quote quote signature is checked (node:crypto, cached public key). The
// CRL checks are cached per (root, collateral, PCK chain), and their dates re-evaluated every call.
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { QuoteVerifier } from '@phala/dcap-qvl';
import type { AttestationSubject, EvidenceVerifier, Verdict, VerifyRequest } from './evidence.js';
import { normalizeCollateral } from './collateral.js';
import type { Collateral, CollateralSource, DcapCollateral, IsvTcbLevel, TcbInfo, TcbLevel } from './collateral.js';
import { checkRevocation, crlTimeReasons } from './crl.js';
import type { RevocationCheck } from './crl.js';
import type { Keyset } from './keyset.js';
import { parsePckCertificate } from './pck.js';
import type { PckCa, PckInfo } from './pck.js';
import { evaluateMeasurements, evaluateTcb, OUT_OF_DATE_STATUSES, tcbPolicyOf } from './policy.js';
import type { Policy } from './policy.js';
import { parseTdxQuote, QuoteParseError, tdReportReasons } from './quote.js';
import type { TdxQuote } from './quote.js';
import { computeReportData, reportDataMatches } from './report-data.js';
import { splitPemChain, x509 } from './x509.js';

/** Intel SGX Root CA (CN=Intel SGX Root CA, SHA-256 44A0196B2B99F889B8E149E95B807A350E7424964399E885A7CBB8CCFAB674D3). */
export const INTEL_SGX_ROOT_CA_DER: Buffer = Buffer.from(
  'MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIwaDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv' +
    'cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG' +
    'A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT' +
    'AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi71OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB' +
    'uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJMEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50' +
    'ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SVUr9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI' +
    'KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwgAiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=',
  'base64',
);

/** dcap-qvl's message for a bad quote signature; we report our own reason for it instead. */
const QVL_QUOTE_SIGNATURE_MESSAGE = 'ISV enclave report signature is invalid';

export const DCAP_REASONS = {
  reportData: 'report_data does not match the nonce and keyset',
  quoteSignature: 'quote signature does not verify with the attestation key',
  attestationKey: 'attestation key is not a valid P-256 public key',
  dcap: (msg: string) => `DCAP verification failed: ${msg}`,
  parserDisagreement: 'our quote parser and dcap-qvl disagree on the TD report',
  statusDisagreement: (ours: string, qvl: string) => `TCB status computed here (${ours}) disagrees with dcap-qvl (${qvl})`,
  noTcbLevel: 'no TCB level in the TCB info matches the platform',
  noQeLevel: 'QE ISVSVN is below every TCB level of the QE identity',
  tdxModuleMissing: (id: string) => `TDX module identity ${id} is not in the TCB info`,
  tdxModuleSigner: 'MRSIGNERSEAM does not match the TDX module identity in the TCB info',
  tdxModuleAttributes: 'SEAM attributes do not match the TDX module identity in the TCB info',
  tdxModuleSvn: 'TDX module SVN is below every TCB level of its module identity',
  tdxModuleRevoked: 'TDX module TCB level is Revoked',
  pck: (msg: string) => `PCK certificate: ${msg}`,
  collateral: (msg: string) => `collateral unavailable: ${msg}`,
  nonIntelRoot: "refusing a DCAP root CA that is not Intel's SGX Root CA (set allow_non_intel_root, in tests only)",
} as const;

export interface DcapLogger {
  warn(msg: string): void;
}

/** The detailed outcome of verifying one quote (the offline CLI prints this). Hex is lowercase, FMSPC upper. */
export interface QuoteReport {
  ok: boolean;
  /** Every reason found; empty iff ok. */
  reasons: string[];
  evidence_type: 'tdx' | 'unknown';
  quote_version: number | null;
  tcb_status: string | null;
  advisory_ids: string[];
  tdx_module_tcb_status: string | null;
  /** Start of the OutOfDate grace window (see policy.ts), when the status is OutOfDate. */
  tcb_grace_start: string | null;
  mrtd: string | null;
  rtmr0: string | null;
  rtmr1: string | null;
  rtmr2: string | null;
  rtmr3: string | null;
  report_data: string | null;
  mrseam: string | null;
  mrsignerseam: string | null;
  tee_tcb_svn: string | null;
  td_attributes: string | null;
  xfam: string | null;
  fmspc: string | null;
  ppid: string | null;
  pce_id: string | null;
  pcesvn: number | null;
  pck_ca: PckCa | null;
  collateral_digest: string | null;
  evidence_hash: string | null;
  policy_version: string | null;
}

interface RootOptions {
  root_ca_der?: Buffer;
  /** Accept a root other than Intel's. For tests only; logged loudly. */
  allow_non_intel_root?: boolean;
  logger?: DcapLogger;
  /** Entries per cache (default 1024). */
  cache_size?: number;
}

export interface DcapVerifierOptions extends RootOptions {
  collateral: CollateralSource;
  policy?: Policy;
}

export interface VerifyQuoteOptions extends RootOptions {
  policy?: Policy;
  /** With a policy: the measurement allowlist is checked only when the subject is given. */
  subject?: AttestationSubject;
  /** With nonce and keyset, the report_data binding is checked. */
  nonce?: Buffer;
  keyset?: Keyset;
}

// ---------------------------------------------------------------------------------------------------------

class Lru<K, V> {
  readonly #map = new Map<K, V>();
  constructor(readonly max: number) {}
  get(k: K): V | undefined {
    const v = this.#map.get(k);
    if (v !== undefined) {
      this.#map.delete(k);
      this.#map.set(k, v);
    }
    return v;
  }
  set(k: K, v: V): void {
    this.#map.delete(k);
    this.#map.set(k, v);
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as K);
  }
  delete(k: K): void {
    this.#map.delete(k);
  }
  get size(): number {
    return this.#map.size;
  }
}

interface DcapEntry {
  status: string;
  advisory_ids: string[];
  lo_ms: number;
  hi_ms: number;
}

interface DcapOutcome {
  reasons: string[];
  status: string | null;
  advisory_ids: string[];
}

const SEVERITY: Record<string, number> = {
  UpToDate: 0,
  SWHardeningNeeded: 1,
  ConfigurationNeeded: 2,
  ConfigurationAndSWHardeningNeeded: 3,
  OutOfDate: 4,
  OutOfDateConfigurationNeeded: 5,
  Revoked: 6,
};
const worse = (a: string, b: string): string => ((SEVERITY[b] ?? 100) > (SEVERITY[a] ?? 100) ? b : a);

const sha256 = (...parts: (Buffer | string)[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

function checkRoot(opts: RootOptions): Buffer {
  const der = opts.root_ca_der ?? INTEL_SGX_ROOT_CA_DER;
  if (!Buffer.isBuffer(der)) throw new Error('root_ca_der must be a Buffer');
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(der);
  } catch (err) {
    throw new Error(`root_ca_der is not an X.509 certificate: ${(err as Error).message}`);
  }
  if (!der.equals(INTEL_SGX_ROOT_CA_DER)) {
    if (opts.allow_non_intel_root !== true) throw new Error(DCAP_REASONS.nonIntelRoot);
    const warn = opts.logger !== undefined ? (m: string) => opts.logger?.warn(m) : (m: string) => console.warn(m);
    warn(
      `!!! DCAP VERIFICATION IS USING A NON-INTEL ROOT CA ("${cert.subject}", sha256 ${sha256(der).toString('hex')}). ` +
        'Quotes it accepts prove nothing about real TDX hardware. This must never happen in production. !!!',
    );
  }
  return der;
}

/** Everything per-root and cacheable. One per DcapVerifier; verifyQuote makes a fresh one per call. */
class DcapCore {
  readonly rootDer: Buffer;
  readonly #rootDigest: Buffer;
  readonly #qvl: QuoteVerifier;
  readonly #dcap: Lru<string, DcapEntry>;
  readonly #revocation: Lru<string, Promise<RevocationCheck>>;
  readonly #pck: Lru<string, PckInfo>;
  readonly #keys: Lru<string, KeyObject>;

  constructor(rootDer: Buffer, cacheSize: number) {
    this.rootDer = rootDer;
    this.#rootDigest = sha256(rootDer);
    this.#qvl = QuoteVerifier.newWithRootCa(rootDer);
    this.#dcap = new Lru(cacheSize);
    this.#revocation = new Lru(cacheSize);
    this.#pck = new Lru(cacheSize);
    this.#keys = new Lru(cacheSize);
  }

  pck(q: TdxQuote): PckInfo {
    const key = sha256(q.signature.pck_chain_pem).toString('hex');
    let info = this.#pck.get(key);
    if (info === undefined) {
      const leaf = q.signature.pck_chain_der[0];
      if (leaf === undefined) throw new Error('empty PCK chain');
      info = parsePckCertificate(leaf);
      this.#pck.set(key, info);
    }
    return info;
  }

  /** Our own check of the quote signature: attestation key over header [‖ body descriptor] ‖ TD report. */
  quoteSignature(q: TdxQuote): string | null {
    const hex = q.signature.attestation_key.toString('hex');
    let key = this.#keys.get(hex);
    if (key === undefined) {
      try {
        key = createPublicKey({
          key: {
            kty: 'EC',
            crv: 'P-256',
            x: q.signature.attestation_key.subarray(0, 32).toString('base64url'),
            y: q.signature.attestation_key.subarray(32, 64).toString('base64url'),
          },
          format: 'jwk',
        });
      } catch {
        return DCAP_REASONS.attestationKey;
      }
      this.#keys.set(hex, key);
    }
    const ok = cryptoVerify('sha256', q.signed_bytes, { key, dsaEncoding: 'ieee-p1363' }, q.signature.ecdsa_signature);
    return ok ? null : DCAP_REASONS.quoteSignature;
  }

  #dcapKey(q: TdxQuote, c: Collateral): string {
    return sha256(
      'ee-dcap-v1',
      this.#rootDigest,
      Buffer.from(c.digest, 'hex'),
      q.header,
      Buffer.from([q.body_type]),
      q.td.tee_tcb_svn,
      q.td.td_attributes,
      q.td.mrservicetd ?? Buffer.alloc(0),
      q.signature_data.subarray(64),
    ).toString('hex');
  }

  /** The window (ms, inclusive) in which every date check dcap-qvl makes holds for this quote and collateral. */
  #window(q: TdxQuote, c: Collateral): [number, number] {
    let lo = Math.max(Date.parse(c.tcb_info_parsed.issueDate), Date.parse(c.qe_identity_parsed.issueDate));
    let hi = Math.min(Date.parse(c.tcb_info_parsed.nextUpdate), Date.parse(c.qe_identity_parsed.nextUpdate));
    const certs = [...q.signature.pck_chain_der, ...splitPemChain(c.tcb_info_issuer_chain), ...splitPemChain(c.qe_identity_issuer_chain), this.rootDer];
    for (const der of certs) {
      const cert = new x509.X509Certificate(der);
      lo = Math.max(lo, cert.notBefore.getTime());
      hi = Math.min(hi, cert.notAfter.getTime());
    }
    return [lo, hi];
  }

  /** Step 4: dcap-qvl (or its cached verdict) plus our own quote-signature check. */
  dcap(raw: Buffer, q: TdxQuote, c: Collateral, now_ms: number): DcapOutcome {
    const reasons: string[] = [];
    const sigReason = this.quoteSignature(q);
    if (sigReason !== null) reasons.push(sigReason);
    const key = this.#dcapKey(q, c);
    const hit = this.#dcap.get(key);
    if (hit !== undefined && hit.lo_ms <= now_ms && now_ms <= hit.hi_ms) {
      return { reasons, status: hit.status, advisory_ids: [...hit.advisory_ids] };
    }
    let result: ReturnType<QuoteVerifier['verify']>;
    try {
      result = this.#qvl.verify(raw, c.qvl, now_ms / 1000);
    } catch (err) {
      const msg = errorText(err);
      // Our own signature reason already says it; don't repeat it in dcap-qvl's words.
      if (!(sigReason !== null && msg === QVL_QUOTE_SIGNATURE_MESSAGE)) reasons.push(DCAP_REASONS.dcap(msg));
      return { reasons, status: null, advisory_ids: [] };
    }
    const td = result.report.asTd10();
    const same = (a: Uint8Array | undefined, b: Buffer): boolean => a !== undefined && Buffer.from(a).equals(b);
    if (
      td === null ||
      !same(td.mrTd, q.td.mrtd) ||
      !same(td.rtMr0, q.td.rtmr0) ||
      !same(td.rtMr1, q.td.rtmr1) ||
      !same(td.rtMr2, q.td.rtmr2) ||
      !same(td.rtMr3, q.td.rtmr3) ||
      !same(td.reportData, q.td.report_data) ||
      !same(td.tdAttributes, q.td.td_attributes)
    ) {
      reasons.push(DCAP_REASONS.parserDisagreement);
      return { reasons, status: null, advisory_ids: [] };
    }
    if (sigReason === null) {
      try {
        const [lo, hi] = this.#window(q, c);
        if (lo <= now_ms && now_ms <= hi) this.#dcap.set(key, { status: result.status, advisory_ids: [...result.advisory_ids], lo_ms: lo, hi_ms: hi });
      } catch {
        // A certificate we cannot parse ourselves: the verdict stands, it is just not cached.
      }
    }
    return { reasons, status: result.status, advisory_ids: [...result.advisory_ids] };
  }

  /** Step 5: our chain-shape and CRL checks (cached), then their dates. */
  async revocation(q: TdxQuote, c: Collateral, now_ms: number): Promise<string[]> {
    const key = sha256('ee-crl-v1', this.#rootDigest, Buffer.from(c.digest, 'hex'), ...q.signature.pck_chain_der).toString('hex');
    let check = this.#revocation.get(key);
    if (check === undefined) {
      check = checkRevocation(this.rootDer, q.signature.pck_chain_der, c);
      this.#revocation.set(key, check);
      check.catch(() => this.#revocation.delete(key));
    }
    const r = await check;
    return [...r.reasons, ...crlTimeReasons(r, now_ms)];
  }
}

// ---------------------------------------------------------------------------------------------------------
// TCB level matching, the same algorithm as dcap-qvl 0.3.9 (so the statuses can be cross-checked), used for
// the grace-window start and the TDX module identity, which dcap-qvl does not look at.

function geq(actual: ArrayLike<number>, required: { svn: number }[]): boolean {
  if (actual.length !== required.length) return false;
  for (let i = 0; i < required.length; i++) if ((actual[i] as number) < (required[i] as { svn: number }).svn) return false;
  return true;
}

export function matchPlatformTcbLevel(info: TcbInfo, pck: Pick<PckInfo, 'cpusvn' | 'pcesvn'>, teeTcbSvn: Buffer): number {
  return info.tcbLevels.findIndex(
    (l) => pck.pcesvn >= l.tcb.pcesvn && geq(pck.cpusvn, l.tcb.sgxtcbcomponents) && geq(teeTcbSvn, l.tcb.tdxtcbcomponents ?? []),
  );
}

export function matchIsvTcbLevel(levels: IsvTcbLevel[], isvsvn: number): number {
  return levels.findIndex((l) => isvsvn >= l.tcb.isvsvn);
}

/** When a matched level stopped being current: the oldest tcbDate among the newer levels (policy.ts). */
function graceStart(levels: (TcbLevel | IsvTcbLevel)[], idx: number): number {
  const newer = levels.slice(0, idx).map((l) => Date.parse(l.tcbDate));
  return newer.length > 0 ? Math.min(...newer) : Date.parse((levels[idx] as TcbLevel | IsvTcbLevel).tcbDate);
}

interface TcbOutcome {
  reasons: string[];
  status: string;
  advisory_ids: string[];
  tdx_module_status: string | null;
  grace_start: string | null;
}

function tcbStep(q: TdxQuote, pck: PckInfo, c: Collateral, dcap: { status: string; advisory_ids: string[] }): TcbOutcome {
  const reasons: string[] = [];
  const info = c.tcb_info_parsed;
  const qe = c.qe_identity_parsed;
  const graceStarts: number[] = [];
  const isOod = (s: string): boolean => OUT_OF_DATE_STATUSES.includes(s);

  const p = matchPlatformTcbLevel(info, pck, q.td.tee_tcb_svn);
  const e = matchIsvTcbLevel(qe.tcbLevels, q.signature.qe_report_parsed.isvsvn);
  if (p < 0) reasons.push(DCAP_REASONS.noTcbLevel);
  if (e < 0) reasons.push(DCAP_REASONS.noQeLevel);
  if (p >= 0 && e >= 0) {
    const pl = info.tcbLevels[p] as TcbLevel;
    const el = qe.tcbLevels[e] as IsvTcbLevel;
    const ours = worse(pl.tcbStatus, el.tcbStatus);
    if (ours !== dcap.status) reasons.push(DCAP_REASONS.statusDisagreement(ours, dcap.status));
    if (isOod(pl.tcbStatus)) graceStarts.push(graceStart(info.tcbLevels, p));
    if (isOod(el.tcbStatus)) graceStarts.push(graceStart(qe.tcbLevels, e));
  }

  // TDX module identity: TEE_TCB_SVN[1] is the module's major version, [0] its SVN.
  let moduleStatus: string | null = null;
  const advisories = [...dcap.advisory_ids];
  const version = q.td.tee_tcb_svn[1] as number;
  const eqMasked = (actual: Buffer, expectedHex: string, maskHex: string): boolean => {
    const exp = Buffer.from(expectedHex, 'hex');
    const mask = Buffer.from(maskHex, 'hex');
    return actual.length === exp.length && actual.every((b, i) => (b & (mask[i] as number)) === ((exp[i] as number) & (mask[i] as number)));
  };
  if (version > 0 && info.tdxModuleIdentities !== undefined) {
    const id = `TDX_${version.toString(16).padStart(2, '0').toUpperCase()}`;
    const ident = info.tdxModuleIdentities.find((m) => m.id.toUpperCase() === id);
    if (ident === undefined) {
      reasons.push(DCAP_REASONS.tdxModuleMissing(id));
    } else {
      if (!Buffer.from(ident.mrsigner, 'hex').equals(q.td.mrsignerseam)) reasons.push(DCAP_REASONS.tdxModuleSigner);
      if (!eqMasked(q.td.seam_attributes, ident.attributes, ident.attributesMask)) reasons.push(DCAP_REASONS.tdxModuleAttributes);
      const m = matchIsvTcbLevel(ident.tcbLevels, q.td.tee_tcb_svn[0] as number);
      if (m < 0) {
        reasons.push(DCAP_REASONS.tdxModuleSvn);
      } else {
        const ml = ident.tcbLevels[m] as IsvTcbLevel;
        moduleStatus = ml.tcbStatus;
        if (moduleStatus === 'Revoked') reasons.push(DCAP_REASONS.tdxModuleRevoked);
        if (isOod(moduleStatus)) graceStarts.push(graceStart(ident.tcbLevels, m));
        for (const a of ml.advisoryIDs ?? []) if (!advisories.includes(a)) advisories.push(a);
      }
    }
  } else if (info.tdxModule !== undefined) {
    if (!Buffer.from(info.tdxModule.mrsigner, 'hex').equals(q.td.mrsignerseam)) reasons.push(DCAP_REASONS.tdxModuleSigner);
    if (!eqMasked(q.td.seam_attributes, info.tdxModule.attributes, info.tdxModule.attributesMask)) reasons.push(DCAP_REASONS.tdxModuleAttributes);
  }

  const status = moduleStatus === null ? dcap.status : worse(dcap.status, moduleStatus);
  const start = isOod(status) && graceStarts.length > 0 ? new Date(Math.min(...graceStarts)).toISOString() : null;
  return { reasons, status, advisory_ids: advisories, tdx_module_status: moduleStatus, grace_start: start };
}

// ---------------------------------------------------------------------------------------------------------

function emptyReport(policy: Policy | undefined): QuoteReport {
  return {
    ok: false,
    reasons: [],
    evidence_type: 'unknown',
    quote_version: null,
    tcb_status: null,
    advisory_ids: [],
    tdx_module_tcb_status: null,
    tcb_grace_start: null,
    mrtd: null,
    rtmr0: null,
    rtmr1: null,
    rtmr2: null,
    rtmr3: null,
    report_data: null,
    mrseam: null,
    mrsignerseam: null,
    tee_tcb_svn: null,
    td_attributes: null,
    xfam: null,
    fmspc: null,
    ppid: null,
    pce_id: null,
    pcesvn: null,
    pck_ca: null,
    collateral_digest: null,
    evidence_hash: null,
    policy_version: policy?.version ?? null,
  };
}

interface PipelineContext {
  policy?: Policy;
  subject?: AttestationSubject;
  nonce?: Buffer;
  keyset?: Keyset;
  /** True when the caller requires the binding (the verifier always does). */
  bind: boolean;
}

async function pipeline(
  core: DcapCore,
  quote: Buffer,
  getCollateral: (pck: PckInfo) => Promise<Collateral>,
  now_ms: number,
  ctx: PipelineContext,
): Promise<QuoteReport> {
  const report = emptyReport(ctx.policy);
  const reasons: string[] = [];
  const finish = (): QuoteReport => {
    report.reasons = [...new Set(reasons)];
    if (report.reasons.length === 0 && report.evidence_type !== 'tdx') report.reasons = ['quote was not verified'];
    report.ok = report.reasons.length === 0;
    return report;
  };

  // 1. Size and header.
  let q: TdxQuote;
  try {
    q = parseTdxQuote(quote);
  } catch (err) {
    if (err instanceof QuoteParseError) {
      reasons.push(...err.reasons);
      report.evidence_type = err.tdx ? 'tdx' : 'unknown';
    } else {
      reasons.push(`malformed quote: ${errorText(err)}`);
    }
    return finish();
  }
  report.evidence_type = 'tdx';
  report.quote_version = q.version;
  const hex = (b: Buffer): string => b.toString('hex');
  Object.assign(report, {
    mrtd: hex(q.td.mrtd),
    rtmr0: hex(q.td.rtmr0),
    rtmr1: hex(q.td.rtmr1),
    rtmr2: hex(q.td.rtmr2),
    rtmr3: hex(q.td.rtmr3),
    report_data: hex(q.td.report_data),
    mrseam: hex(q.td.mrseam),
    mrsignerseam: hex(q.td.mrsignerseam),
    tee_tcb_svn: hex(q.td.tee_tcb_svn),
    td_attributes: hex(q.td.td_attributes),
    xfam: hex(q.td.xfam),
  });
  reasons.push(...tdReportReasons(q.td));

  // 2. report_data binding.
  if (ctx.bind || ctx.nonce !== undefined || ctx.keyset !== undefined) {
    try {
      const expected = computeReportData(ctx.nonce as Buffer, ctx.keyset as Keyset);
      if (!reportDataMatches(expected, q.td.report_data)) reasons.push(DCAP_REASONS.reportData);
    } catch (err) {
      reasons.push(`cannot check the report_data binding: ${errorText(err)}`);
    }
  }

  // 3. Measurement allowlist.
  if (ctx.policy !== undefined && ctx.subject !== undefined) reasons.push(...evaluateMeasurements(ctx.policy, report, ctx.subject));

  // 4. DCAP signature chain with collateral.
  let pck: PckInfo;
  try {
    pck = core.pck(q);
  } catch (err) {
    reasons.push(DCAP_REASONS.pck(errorText(err)));
    return finish();
  }
  Object.assign(report, {
    fmspc: pck.fmspc.toString('hex').toUpperCase(),
    ppid: hex(pck.ppid),
    pce_id: hex(pck.pce_id),
    pcesvn: pck.pcesvn,
    pck_ca: pck.ca,
  });
  let collateral: Collateral;
  try {
    collateral = await getCollateral(pck);
  } catch (err) {
    reasons.push(DCAP_REASONS.collateral(errorText(err)));
    return finish();
  }
  report.collateral_digest = collateral.digest;
  report.evidence_hash = sha256(quote, Buffer.from(collateral.digest, 'hex')).toString('hex');
  const dcap = core.dcap(quote, q, collateral, now_ms);
  reasons.push(...dcap.reasons);

  // 5. Our own chain-shape and CRL checks.
  try {
    reasons.push(...(await core.revocation(q, collateral, now_ms)));
  } catch (err) {
    reasons.push(`CRL check failed: ${errorText(err)}`);
  }

  // 6. TCB status and policy.
  if (dcap.status !== null) {
    const tcb = tcbStep(q, pck, collateral, { status: dcap.status, advisory_ids: dcap.advisory_ids });
    reasons.push(...tcb.reasons);
    report.tcb_status = tcb.status;
    report.advisory_ids = tcb.advisory_ids;
    report.tdx_module_tcb_status = tcb.tdx_module_status;
    report.tcb_grace_start = tcb.grace_start;
    reasons.push(...evaluateTcb(tcbPolicyOf(ctx.policy), report, now_ms));
  }
  return finish();
}

/** Fail closed: an unexpected exception anywhere in the pipeline becomes a rejection with its message. */
async function guarded(policy: Policy | undefined, run: () => Promise<QuoteReport>): Promise<QuoteReport> {
  try {
    return await run();
  } catch (err) {
    const report = emptyReport(policy);
    report.reasons = [`verifier error: ${errorText(err)}`];
    return report;
  }
}

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
  static newWithRootCa(root_der: Buffer, opts: Omit<DcapVerifierOptions, 'root_ca_der' | 'allow_non_intel_root'>): DcapVerifier {
    return new DcapVerifier({ ...opts, root_ca_der: root_der, allow_non_intel_root: true });
  }

  get policy_version(): string | null {
    return this.#policy?.version ?? null;
  }

  get root_ca_der(): Buffer {
    return Buffer.from(this.#core.rootDer);
  }

  /** The detailed report for one quote, with collateral from this verifier's source. */
  async report(quote: Buffer, now_ms: number, ctx: { subject?: AttestationSubject; nonce?: Buffer; keyset?: Keyset } = {}): Promise<QuoteReport> {
    return guarded(this.#policy, () => pipeline(this.#core, quote, (pck) => this.#getCollateral(pck), now_ms, { ...ctx, policy: this.#policy, bind: false }));
  }

  async #getCollateral(pck: PckInfo): Promise<Collateral> {
    return normalizeCollateral(await this.#collateral.get(pck.fmspc.toString('hex').toUpperCase(), pck.ca));
  }

  async verify(req: VerifyRequest): Promise<Verdict> {
    const report = await guarded(this.#policy, () =>
      pipeline(this.#core, req.quote, (pck) => this.#getCollateral(pck), req.now_ms, {
        policy: this.#policy,
        subject: req.subject,
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
    };
  }
}

/**
 * Verifies one quote against the given collateral at `now_s` (unix seconds) and returns the detailed report.
 * Self-contained: no state survives the call (the offline CLI's entry point).
 */
export async function verifyQuote(quote: Buffer, collateral: DcapCollateral | Collateral, now_s: number, opts: VerifyQuoteOptions = {}): Promise<QuoteReport> {
  const core = new DcapCore(checkRoot(opts), 16);
  const ctx: PipelineContext = { bind: false };
  if (opts.policy !== undefined) ctx.policy = opts.policy;
  if (opts.subject !== undefined) ctx.subject = opts.subject;
  if (opts.nonce !== undefined) ctx.nonce = opts.nonce;
  if (opts.keyset !== undefined) ctx.keyset = opts.keyset;
  return guarded(opts.policy, () => pipeline(core, quote, async () => normalizeCollateral(collateral), now_s * 1000, ctx));
}
