// Proof of possession on the tunnel. A quote proves that a TD holding some keyset answered a nonce; it does
// not prove that the socket presenting it is that TD: evidence can be carried from one connection to another.
// So with every answer to a control-plane challenge the agent also signs, with the keyset's receipt key,
//
//   pop message = "ee-pop-v1" ‖ nonce (32 raw bytes) ‖ session_id (32 raw bytes) ‖ SHA-256(canonicalJson(keyset))
//
// where session_id is a random value the control plane sent on this connection only (in `registered`). Only
// the holder of the attested keyset's private key can produce it, and only for this connection.
import { randomBytes, sign } from 'node:crypto';
import { ed25519Verify, keysetDigest, parseKeyset, publicKeyset } from './keyset.js';
import type { AgentKeys, Keyset } from './keyset.js';
import { NONCE_LENGTH } from './report-data.js';

export const POP_DOMAIN = 'ee-pop-v1';
export const SESSION_ID_LENGTH = 32;
export const POP_SIGNATURE_LENGTH = 64;
/** "ee-pop-v1" (9) + nonce (32) + session_id (32) + keyset digest (32). */
export const POP_MESSAGE_LENGTH = POP_DOMAIN.length + NONCE_LENGTH + SESSION_ID_LENGTH + 32;

/** Why a control plane refuses an answer's proof of possession; exported so tests match on these, not copies. */
export const POSSESSION_REASONS = {
  missing: 'attest_response carries no pop_signature (proof of possession of the keyset on this connection)',
  invalid: "pop_signature is not the keyset's signature over this nonce and this connection's session id",
} as const;

const HEX_32 = /^[0-9a-f]{64}$/;
const SIGNATURE_HEX = /^[0-9a-f]{128}$/;

/** 32 raw bytes, or their 64-character lowercase hex. */
export type Bytes32 = Buffer | string;

function raw32(value: Bytes32, what: string): Buffer {
  if (Buffer.isBuffer(value) && value.length === 32) return value;
  if (typeof value === 'string' && HEX_32.test(value)) return Buffer.from(value, 'hex');
  throw new Error(`${what} must be 32 bytes (or 64 lowercase hex characters)`);
}

/** A fresh per-connection session id, lowercase hex. */
export function newSessionId(): string {
  return randomBytes(SESSION_ID_LENGTH).toString('hex');
}

/** The bytes the proof of possession signs. Throws on a malformed nonce, session id or keyset. */
export function popMessage(nonce: Bytes32, session_id: Bytes32, keyset: Keyset): Buffer {
  const message = Buffer.concat([
    Buffer.from(POP_DOMAIN, 'ascii'),
    raw32(nonce, 'nonce'),
    raw32(session_id, 'session_id'),
    keysetDigest(keyset),
  ]);
  if (message.length !== POP_MESSAGE_LENGTH) throw new Error('proof of possession message has the wrong length');
  return message;
}

/** Agent side: the pop_signature (lowercase hex) with the keyset's receipt key. */
export function signPossession(keys: AgentKeys, nonce: Bytes32, session_id: Bytes32): string {
  return sign(null, popMessage(nonce, session_id, publicKeyset(keys)), keys.receipt.privateKey).toString('hex');
}

/**
 * Verifier side: true only for a valid Ed25519 signature by `keyset.receipt_public_key` over
 * popMessage(nonce, session_id, keyset). Never throws: any malformed input (checked at run time whatever the
 * static types say: these come off the wire) is simply `false`.
 */
export function verifyPossession(keyset: Keyset, nonce: Bytes32, session_id: Bytes32, signature_hex: string): boolean {
  try {
    if (typeof signature_hex !== 'string' || !SIGNATURE_HEX.test(signature_hex)) return false;
    const k = parseKeyset(keyset);
    const message = popMessage(nonce, session_id, k);
    return ed25519Verify(Buffer.from(k.receipt_public_key, 'hex'), message, Buffer.from(signature_hex, 'hex'));
  } catch {
    return false;
  }
}
