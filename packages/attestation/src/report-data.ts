// The one report_data scheme (DESIGN §3), written down once and used by agents, the control plane and the SDK:
//
//   report_data = SHA-512( "ee-tunnel-v1" ‖ nonce ‖ SHA-256(canonicalJson(keyset)) )      → 64 bytes
//
// "ee-tunnel-v1" is the ASCII domain label, nonce is the raw 32 bytes, keyset is {hpke_public_key,
// receipt_public_key}. 64 bytes is exactly the TDX REPORTDATA field, so nothing is truncated or padded.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { keysetDigest } from './keyset.js';
import type { Keyset } from './keyset.js';

export const REPORT_DATA_DOMAIN = 'ee-tunnel-v1';
export const REPORT_DATA_LENGTH = 64;
export const NONCE_LENGTH = 32;

const NONCE_HEX = /^[0-9a-fA-F]{64}$/;

export function computeReportData(nonce: Buffer, keyset: Keyset): Buffer {
  if (!Buffer.isBuffer(nonce) || nonce.length !== NONCE_LENGTH) {
    throw new Error(`nonce must be ${NONCE_LENGTH} bytes`);
  }
  return createHash('sha512').update(REPORT_DATA_DOMAIN, 'utf8').update(nonce).update(keysetDigest(keyset)).digest();
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
