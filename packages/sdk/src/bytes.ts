// Randomness and hex through WebCrypto (globalThis.crypto: Node 20 and browsers), so the core stays browser-safe.

type WebCrypto = { getRandomValues<T extends Uint8Array>(a: T): T; randomUUID?: () => string };

function webCrypto(): WebCrypto {
  const c = (globalThis as { crypto?: WebCrypto }).crypto;
  if (c === undefined || typeof c.getRandomValues !== 'function')
    throw new Error('WebCrypto (globalThis.crypto) is not available');
  return c;
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** A fresh 32-byte challenge nonce, as 64 lowercase hex characters. */
export function newNonceHex(): string {
  return toHex(webCrypto().getRandomValues(new Uint8Array(32)));
}

/** A fresh Idempotency-Key (a random UUID). */
export function newIdempotencyKey(): string {
  const c = webCrypto();
  if (typeof c.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
