// The per-root verification state and its caches (steps 4 and 5 of dcap-pipeline.ts).
//
// Performance: dcap-qvl re-parses and re-verifies everything (~25 ms) for every quote. Its verdict depends on
// the quote only through the header, the signature data minus the quote signature (attestation key, QE
// report and signature, QE auth data, PCK chain), TEE_TCB_SVN, the TD attributes and MRSERVICETD — all
// constant for one platform and TD configuration — plus the collateral, the root and the time. So its
// verdict is cached under a digest of exactly those inputs, with the time window in which all of its date
// checks hold; on a hit only the per-quote quote signature is checked (node:crypto, cached public key). The
// CRL checks are cached per (root, collateral, PCK chain), and their dates re-evaluated every call.
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { QuoteVerifier } from '@phala/dcap-qvl';
import type { Collateral } from './collateral-normalize.js';
import { checkRevocation, crlTimeReasons } from './crl.js';
import type { RevocationCheck } from './crl.js';
import type { RootOptions } from './dcap-options.js';
import { DCAP_REASONS } from './dcap-reasons.js';
import { errorText, sha256 } from './hash-and-errors.js';
import { INTEL_SGX_ROOT_CA_DER } from './intel-root-ca.js';
import { Lru } from './lru.js';
import { parsePckCertificate } from './pck.js';
import type { PckInfo } from './pck.js';
import type { TdxQuote } from './quote.js';
import { splitPemChain, x509 } from './x509.js';

/** dcap-qvl's message for a bad quote signature; we report our own reason for it instead. */
const QVL_QUOTE_SIGNATURE_MESSAGE = 'ISV enclave report signature is invalid';

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

export function checkRoot(opts: RootOptions): Buffer {
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
export class DcapCore {
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
    const certs = [
      ...q.signature.pck_chain_der,
      ...splitPemChain(c.tcb_info_issuer_chain),
      ...splitPemChain(c.qe_identity_issuer_chain),
      this.rootDer,
    ];
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
        if (lo <= now_ms && now_ms <= hi)
          this.#dcap.set(key, { status: result.status, advisory_ids: [...result.advisory_ids], lo_ms: lo, hi_ms: hi });
      } catch {
        // A certificate we cannot parse ourselves: the verdict stands, it is just not cached.
      }
    }
    return { reasons, status: result.status, advisory_ids: [...result.advisory_ids] };
  }

  /** Step 5: our chain-shape and CRL checks (cached), then their dates. */
  async revocation(q: TdxQuote, c: Collateral, now_ms: number): Promise<string[]> {
    const key = sha256(
      'ee-crl-v1',
      this.#rootDigest,
      Buffer.from(c.digest, 'hex'),
      ...q.signature.pck_chain_der,
    ).toString('hex');
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
