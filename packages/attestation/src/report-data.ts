// The one report_data scheme (DESIGN §3), written down once and used by agents, the control plane and the SDK:
//
//   report_data = SHA-512( domain ‖ nonce ‖ SHA-256(canonicalJson(keyset)) )      → 64 bytes
//
// domain is the ASCII label of what the evidence is FOR, nonce is the raw 32 bytes, keyset is
// {hpke_public_key, receipt_public_key}. 64 bytes is exactly the TDX REPORTDATA field, so nothing is truncated
// or padded. Three domains, so evidence made for one purpose never verifies for another:
//
//   ee-tunnel-v1  the control plane's challenge of an agent on its tunnel (attest_request, reason ≠ client)
//   ee-relay-v1   a challenge an HTTP client chose, relayed to an agent (attest_request, reason = client)
//   ee-self-v1    the control plane's own evidence (GET /v1/attestation)
//
// Without this, anyone could ask an agent (through the public relay) or the control plane (GET
// /v1/attestation) to quote over the nonce of a challenge the control plane had just sent to someone else.
// The labels have different lengths and nonce and digest are fixed-length, so no two (domain, nonce, keyset)
// inputs of different domains are the same byte string.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { keysetDigest } from './keyset.js';
import type { Keyset } from './keyset.js';

export const REPORT_DATA_DOMAINS = {
  /** The control plane's challenge of an agent on its tunnel. */
  tunnel: 'ee-tunnel-v1',
  /** A client-chosen nonce relayed to an agent (GET /v1/apps/{app}/attestation). */
  relay: 'ee-relay-v1',
  /** The control plane's own evidence (GET /v1/attestation). */
  self: 'ee-self-v1',
} as const;
export type ReportDataDomain = (typeof REPORT_DATA_DOMAINS)[keyof typeof REPORT_DATA_DOMAINS];

export const REPORT_DATA_LENGTH = 64;
export const NONCE_LENGTH = 32;

const NONCE_HEX = /^[0-9a-fA-F]{64}$/;
const DOMAIN_LABELS: readonly string[] = Object.values(REPORT_DATA_DOMAINS);

export function isReportDataDomain(value: unknown): value is ReportDataDomain {
  return typeof value === 'string' && DOMAIN_LABELS.includes(value);
}

export function computeReportData(domain: ReportDataDomain, nonce: Buffer, keyset: Keyset): Buffer {
  if (!isReportDataDomain(domain)) throw new Error(`unknown report_data domain "${String(domain).slice(0, 40)}"`);
  if (!Buffer.isBuffer(nonce) || nonce.length !== NONCE_LENGTH) {
    throw new Error(`nonce must be ${NONCE_LENGTH} bytes`);
  }
  return createHash('sha512').update(domain, 'ascii').update(nonce).update(keysetDigest(keyset)).digest();
}

/**
 * Constant-time comparison. Both sides must be exactly 64 bytes: a length mismatch (including two empty
 * buffers) is a mismatch, never a match.
 */
export function reportDataMatches(expected: Buffer, actual: Buffer): boolean {
  if (expected.length !== REPORT_DATA_LENGTH || actual.length !== REPORT_DATA_LENGTH) return false;
  return timingSafeEqual(expected, actual);
}

/** A fresh challenge nonce. The caller stores it server-side and accepts it once, before its deadline. */
export function newNonce(): Buffer {
  return randomBytes(NONCE_LENGTH);
}

/** Parses the wire form of a nonce: exactly 64 hex characters (either case), nothing else. */
export function parseNonceHex(s: string): Buffer {
  if (typeof s !== 'string' || !NONCE_HEX.test(s)) {
    throw new Error(`nonce must be exactly ${NONCE_LENGTH * 2} hex characters`);
  }
  return Buffer.from(s, 'hex');
}
