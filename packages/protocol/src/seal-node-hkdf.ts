// HKDF-SHA256 (RFC 5869) on node:crypto's HMAC, synchronously: createHmac costs about a quarter of one
// hkdfSync call, and a sealed request runs a dozen of these. Node-only (seal-node.ts, seal-node-kem.ts).
import { createHmac } from 'node:crypto';

const HASH_BYTES = 32;
const ZERO_SALT = Buffer.alloc(HASH_BYTES);
const EMPTY = Buffer.alloc(0);

const buf = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** HMAC-SHA256 over the concatenation of parts. */
const hmac = (key: Buffer, ...parts: Buffer[]): Buffer => {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
};

/** RFC 5869 HKDF-Expand on createHmac. */
export function expandSync(prk: Buffer, info: Buffer, len: number): Buffer {
  if (len > 255 * HASH_BYTES) throw new Error('Entropy limit reached');
  if (len <= HASH_BYTES) return hmac(prk, info, Buffer.of(1)).subarray(0, len);
  const out = Buffer.allocUnsafe(len);
  let prev: Buffer = EMPTY;
  for (let i = 1, at = 0; at < len; i++) {
    prev = hmac(prk, prev, info, Buffer.of(i));
    at += prev.copy(out, at);
  }
  return out;
}

/** RFC 5869 HKDF-Extract on createHmac (an empty salt is HashLen zero bytes). */
export function extractSync(salt: Buffer, ikm: Buffer): Buffer {
  return hmac(salt.length === 0 ? ZERO_SALT : salt, ikm);
}

/** HKDF-SHA256 (RFC 5869), extract then expand, synchronously. */
export function hkdfSha256(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, len: number): Buffer {
  return expandSync(extractSync(buf(salt), buf(ikm)), buf(info), len);
}
