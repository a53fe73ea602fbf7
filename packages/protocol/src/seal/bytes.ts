// Byte helpers for the sealing module (browser-safe: Uint8Array, TextEncoder, WebCrypto; no Buffer).
import type { webcrypto } from 'node:crypto';

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type JsonWebKey = webcrypto.JsonWebKey;

const encoder = new TextEncoder();

/** WebCrypto's SubtleCrypto (Node 20 and browsers); a clear error where there is none (plain-HTTP pages). */
export function subtle(): webcrypto.SubtleCrypto {
  const c = (globalThis as { crypto?: webcrypto.Crypto }).crypto;
  if (c?.subtle === undefined) throw new Error('WebCrypto (crypto.subtle) is not available');
  return c.subtle;
}

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  (globalThis as { crypto: webcrypto.Crypto }).crypto.getRandomValues(out);
  return out;
}

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** A fresh copy in its own ArrayBuffer. (Not `.slice()`: on a Node Buffer that is a view, not a copy.) */
export function copyOf(b: Uint8Array): Uint8Array {
  const c = new Uint8Array(b.length);
  c.set(b);
  return c;
}

/** An exact ArrayBuffer of these bytes (a view's `.buffer` may be a larger, shared one). */
export function bufferOf(b: Uint8Array): ArrayBuffer {
  return copyOf(b).buffer as ArrayBuffer;
}

/** A plain Uint8Array view of the same bytes (no copy), so Buffer's own semantics never apply downstream. */
export function plainView(b: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(b) === Uint8Array.prototype ? b : new Uint8Array(b.buffer, b.byteOffset, b.length);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += (b < 16 ? '0' : '') + b.toString(16);
  return s;
}

const HEX_RE = /^(?:[0-9a-f]{2})*$/;

/** Lowercase hex only: one spelling per value, so ids compare as strings. */
export function fromHex(hex: string, bytes?: number): Uint8Array {
  if (typeof hex !== 'string' || !HEX_RE.test(hex) || (bytes !== undefined && hex.length !== bytes * 2)) {
    throw new TypeError(`expected ${bytes === undefined ? '' : `${bytes} bytes of `}lowercase hex`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_RE = /^[A-Za-z0-9_-]*$/;

/** base64url without padding (RFC 4648 §5): safe in an HTTP header value. */
export function toBase64Url(bytes: Uint8Array): string {
  let s = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    s += B64URL[n >>> 18]! + B64URL[(n >>> 12) & 63]! + B64URL[(n >>> 6) & 63]! + B64URL[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    s += B64URL[n >>> 18]! + B64URL[(n >>> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    s += B64URL[n >>> 18]! + B64URL[(n >>> 12) & 63]! + B64URL[(n >>> 6) & 63]!;
  }
  return s;
}

/** Strict base64url: no padding, no other alphabet, no length that cannot occur, no non-zero spare bits. */
export function fromBase64Url(s: string): Uint8Array {
  if (typeof s !== 'string' || !B64URL_RE.test(s) || s.length % 4 === 1) throw new TypeError('invalid base64url');
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let at = 0;
  for (let i = 0; i < s.length; i++) {
    acc = (acc << 6) | B64URL.indexOf(s[i]!);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >>> bits) & 0xff;
      acc &= (1 << bits) - 1;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new TypeError('invalid base64url (non-zero padding bits)');
  return out;
}

/** Constant-time equality of two byte strings of the same public length. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
