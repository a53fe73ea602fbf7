// One Ed25519 check on node:crypto with the parsed public keys cached (one per agent boot), shared by the
// verification workers and the main thread's fallback.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';

const MAX_CACHED_KEYS = 4096;
const keys = new Map<string, KeyObject>();

function keyOf(hex: string): KeyObject {
  let k = keys.get(hex);
  if (k === undefined) {
    k = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(hex, 'hex').toString('base64url') },
      format: 'jwk',
    });
    if (keys.size >= MAX_CACHED_KEYS) keys.delete(keys.keys().next().value!);
    keys.set(hex, k);
  }
  return k;
}

/** False (never an exception) for a malformed key or signature. */
export function verifySignature(key_hex: string, bytes: Uint8Array, sig_hex: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(key_hex) || !/^[0-9a-f]{128}$/.test(sig_hex)) return false;
  try {
    return verify(null, bytes, keyOf(key_hex), Buffer.from(sig_hex, 'hex'));
  } catch {
    return false;
  }
}
