// SANDBOX ATTESTATION — DEVELOPMENT ONLY. NOT A SECURITY BOUNDARY.
//
// A software "quote" for unsealed networks (sandbox-1). It is signed by a key the provider generates itself
// at boot, so it proves nothing about the machine: anyone can mint one. It exists so the whole attestation
// flow (nonce → report_data → quote → verify) runs without TDX hardware. Sealed networks reject it, always.
//
// Layout (fixed 416 bytes, every field raw bytes):
//   offset  size  field
//        0    16  magic: ASCII "ee-sandbox-v1" + 3 NUL bytes
//       16    64  report_data
//       80    48  mrtd      ┐
//      128    48  rtmr0     │ declared measurements, derived from repo@release_tag
//      176    48  rtmr1     │ (sandboxMeasurements): stable, and obviously not real
//      224    48  rtmr2     │
//      272    48  rtmr3     ┘
//      320    32  Ed25519 signing public key (per boot)
//      352    64  Ed25519 signature over bytes [0, 352)
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { EvidenceVerifier, Measurements, QuoteProvider, Verdict, VerifyRequest } from './evidence.js';
import { ed25519Verify, parseKeyset, rawPublicKey } from './keyset.js';
import type { Keyset } from './keyset.js';
import { computeReportData, NONCE_LENGTH, REPORT_DATA_LENGTH, reportDataMatches } from './report-data.js';

export const SANDBOX_FORMAT = 'ee-sandbox-v1';
export const SANDBOX_MAGIC: Buffer = Buffer.concat([Buffer.from(SANDBOX_FORMAT, 'ascii'), Buffer.alloc(3)]);
export const SANDBOX_QUOTE_LENGTH = 416;
/** Hard cap checked before anything else, so an oversized input is rejected without further work. */
export const SANDBOX_QUOTE_MAX_BYTES = 4096;

const MEASUREMENT_LENGTH = 48;
const MEASUREMENT_FIELDS = ['mrtd', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'] as const;
const OFF_REPORT_DATA = 16;
const OFF_MEASUREMENTS = OFF_REPORT_DATA + REPORT_DATA_LENGTH; // 80
const OFF_PUBLIC_KEY = OFF_MEASUREMENTS + MEASUREMENT_FIELDS.length * MEASUREMENT_LENGTH; // 320
const OFF_SIGNATURE = OFF_PUBLIC_KEY + 32; // 352

/** Rejection reasons, exported so callers and tests match on them rather than on copies of the text. */
export const SANDBOX_REASONS = {
  sealed: 'sandbox evidence is not accepted on a sealed network',
  notSandbox: 'not a sandbox quote',
  badSignature: 'sandbox quote signature is invalid',
  reportDataMismatch: 'report_data does not match the nonce and keyset',
  measurementMismatch: 'sandbox measurements do not match the subject repo@release_tag',
} as const;

export interface SandboxQuote {
  report_data: Buffer;
  measurements: Measurements;
  signing_public_key: Buffer;
  signature: Buffer;
  /** The bytes the signature covers: everything before it. */
  signed_bytes: Buffer;
}

/**
 * mrtd = SHA-384("ee-sandbox-mrtd" ‖ repo ‖ "@" ‖ release_tag), rtmrN = SHA-384("ee-sandbox-rtmrN" ‖ …).
 * Unambiguous because a GitHub "owner/name" cannot contain "@" (the provider refuses one that does).
 */
export function sandboxMeasurements(repo: string, release_tag: string): Measurements {
  const m = (label: string): string =>
    createHash('sha384').update(`ee-sandbox-${label}${repo}@${release_tag}`, 'utf8').digest('hex');
  return { mrtd: m('mrtd'), rtmr0: m('rtmr0'), rtmr1: m('rtmr1'), rtmr2: m('rtmr2'), rtmr3: m('rtmr3') };
}

/** Cheap routing check: does this look like a sandbox quote at all? (Magic only; parse does the rest.) */
export function isSandboxQuote(buf: Buffer): boolean {
  return (
    Buffer.isBuffer(buf) &&
    buf.length >= SANDBOX_MAGIC.length &&
    buf.subarray(0, SANDBOX_MAGIC.length).equals(SANDBOX_MAGIC)
  );
}

/** Strict parse: exact magic and length, or it throws. Does not check the signature (the verifier does). */
export function parseSandboxQuote(buf: Buffer): SandboxQuote {
  if (!Buffer.isBuffer(buf)) throw new Error('sandbox quote must be a Buffer');
  if (buf.length > SANDBOX_QUOTE_MAX_BYTES) {
    throw new Error(`sandbox quote is too large: ${buf.length} bytes (max ${SANDBOX_QUOTE_MAX_BYTES})`);
  }
  if (!isSandboxQuote(buf)) throw new Error(SANDBOX_REASONS.notSandbox);
  if (buf.length !== SANDBOX_QUOTE_LENGTH) {
    throw new Error(`sandbox quote has the wrong length: ${buf.length} bytes (expected ${SANDBOX_QUOTE_LENGTH})`);
  }
  // Copies, so the parsed quote does not alias (and cannot be changed through) the caller's buffer.
  const field = (start: number, len: number): Buffer => Buffer.from(buf.subarray(start, start + len));
  const hex = (i: number): string =>
    field(OFF_MEASUREMENTS + i * MEASUREMENT_LENGTH, MEASUREMENT_LENGTH).toString('hex');
  return {
    report_data: field(OFF_REPORT_DATA, REPORT_DATA_LENGTH),
    measurements: { mrtd: hex(0), rtmr0: hex(1), rtmr1: hex(2), rtmr2: hex(3), rtmr3: hex(4) },
    signing_public_key: field(OFF_PUBLIC_KEY, 32),
    signature: field(OFF_SIGNATURE, 64),
    signed_bytes: field(0, OFF_SIGNATURE),
  };
}

export interface SandboxQuoteProviderOptions {
  repo: string;
  release_tag: string;
}

/** Agent side. One instance per boot: its signing key lives only in memory. */
export class SandboxQuoteProvider implements QuoteProvider {
  readonly evidence_type = 'sandbox' as const;
  readonly measurements: Measurements;
  readonly #signingKey: KeyObject;
  readonly #publicKey: Buffer;

  constructor(opts: SandboxQuoteProviderOptions) {
    if (typeof opts.repo !== 'string' || opts.repo.length === 0 || opts.repo.includes('@')) {
      throw new Error('sandbox quote provider: repo must be a non-empty "owner/name" without "@"');
    }
    if (typeof opts.release_tag !== 'string' || opts.release_tag.length === 0) {
      throw new Error('sandbox quote provider: release_tag must be a non-empty string');
    }
    this.measurements = sandboxMeasurements(opts.repo, opts.release_tag);
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    this.#signingKey = privateKey;
    this.#publicKey = rawPublicKey(publicKey);
  }

  async getQuote(report_data: Buffer): Promise<Buffer> {
    if (!Buffer.isBuffer(report_data) || report_data.length !== REPORT_DATA_LENGTH) {
      throw new Error(`report_data must be ${REPORT_DATA_LENGTH} bytes`);
    }
    const body = Buffer.concat([
      SANDBOX_MAGIC,
      report_data,
      ...MEASUREMENT_FIELDS.map((f) => Buffer.from(this.measurements[f], 'hex')),
      this.#publicKey,
    ]);
    return Buffer.concat([body, sign(null, body, this.#signingKey)]);
  }
}

/**
 * Control-plane/SDK side. Runs every check that still makes sense after a failure and reports all of
 * the failures, so a developer sees the whole problem at once.
 */
export class SandboxVerifier implements EvidenceVerifier {
  async verify(req: VerifyRequest): Promise<Verdict> {
    const reasons: string[] = [];
    if (req.sealed_required) reasons.push(SANDBOX_REASONS.sealed);

    if (!isSandboxQuote(req.quote)) {
      reasons.push(SANDBOX_REASONS.notSandbox);
      return { ok: false, evidence_type: 'unknown', reasons };
    }
    let quote: SandboxQuote;
    try {
      quote = parseSandboxQuote(req.quote);
    } catch (err) {
      reasons.push(`malformed sandbox quote: ${(err as Error).message}`);
      return { ok: false, evidence_type: 'sandbox', reasons };
    }

    if (!ed25519Verify(quote.signing_public_key, quote.signed_bytes, quote.signature)) {
      reasons.push(SANDBOX_REASONS.badSignature);
    }

    // report_data binding: only meaningful with a well-formed nonce and keyset.
    let keyset: Keyset | undefined;
    try {
      keyset = parseKeyset(req.keyset);
    } catch (err) {
      reasons.push((err as Error).message);
    }
    if (!Buffer.isBuffer(req.nonce) || req.nonce.length !== NONCE_LENGTH) {
      reasons.push(`invalid nonce: must be ${NONCE_LENGTH} bytes`);
    } else if (
      keyset !== undefined &&
      !reportDataMatches(computeReportData(req.domain, req.nonce, keyset), quote.report_data)
    ) {
      reasons.push(SANDBOX_REASONS.reportDataMismatch);
    }

    // The declared measurements must be the ones for what the agent says it runs.
    const expected = sandboxMeasurements(req.subject.repo, req.subject.release_tag);
    if (MEASUREMENT_FIELDS.some((f) => expected[f] !== quote.measurements[f])) {
      reasons.push(SANDBOX_REASONS.measurementMismatch);
    }

    if (reasons.length > 0) return { ok: false, evidence_type: 'sandbox', reasons };
    return {
      ok: true,
      evidence_type: 'sandbox',
      measurements: quote.measurements,
      report_data: quote.report_data,
      evidence_hash: createHash('sha256').update(req.quote).digest('hex'),
      policy_version: null,
    };
  }
}
