// Recipient keys: an X25519 key pair as WebCrypto keys, with the key id that sealed messages name.
// key id = SHA-256(raw 32-byte X25519 public key): public, fixed-length, and a receiver compares it with its
// own before doing any cryptography, so a message sealed to another key is refused without being opened.
import { KEY_ID_BYTES, X25519_PUBLIC_KEY_BYTES } from './constants.js';
import { fromHex, subtle, toHex, type CryptoKey, type CryptoKeyPair, type JsonWebKey } from './bytes.js';

export interface RecipientKey {
  /** Private key (deriveBits, not extractable) and its public key, as @hpke/core takes them. */
  readonly keyPair: CryptoKeyPair;
  /** Raw X25519 public key, 32 bytes. */
  readonly publicKey: Uint8Array;
  /** SHA-256 of publicKey, 32 bytes; keyIdHex is its lowercase hex. */
  readonly keyId: Uint8Array;
  readonly keyIdHex: string;
}

const X25519 = { name: 'X25519' } as const;

export async function keyIdOf(publicKey: Uint8Array): Promise<Uint8Array> {
  if (publicKey.length !== X25519_PUBLIC_KEY_BYTES) throw new TypeError('an X25519 public key is 32 bytes');
  const id = new Uint8Array(await subtle().digest('SHA-256', publicKey));
  if (id.length !== KEY_ID_BYTES) throw new Error('unexpected digest length');
  return id;
}

/** The key id (lowercase hex) of a raw public key given as bytes or as 64 lowercase hex characters. */
export async function keyIdHexOf(publicKey: Uint8Array | string): Promise<string> {
  return toHex(await keyIdOf(publicKeyBytes(publicKey)));
}

export function publicKeyBytes(publicKey: Uint8Array | string): Uint8Array {
  if (typeof publicKey === 'string') return fromHex(publicKey, X25519_PUBLIC_KEY_BYTES);
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== X25519_PUBLIC_KEY_BYTES) {
    throw new TypeError('an X25519 public key is 32 raw bytes');
  }
  return publicKey;
}

export async function importX25519PublicKey(raw: Uint8Array): Promise<CryptoKey> {
  // Public keys stay extractable: HPKE serializes pkR into its key schedule.
  return subtle().importKey('raw', publicKeyBytes(raw), X25519, true, []);
}

/** Distinct recipient public keys whose import and key id are remembered (a client seals many requests to
 *  the same few agents; each import and digest is a WebCrypto round trip). */
export const PUBLIC_KEY_CACHE_MAX = 64;
export interface SealTarget {
  readonly key: CryptoKey;
  readonly keyId: Uint8Array;
}
const targets = new Map<string, Promise<SealTarget>>();

/** The imported public key and key id of a raw X25519 public key (bytes, or its lowercase hex), from a
 *  small cache: a client names the same key for every request, so hex in, no conversion per request. */
export function sealTarget(publicKey: Uint8Array | string): Promise<SealTarget> {
  const hex = typeof publicKey === 'string' ? publicKey : toHex(publicKeyBytes(publicKey));
  let t = targets.get(hex);
  if (t === undefined) {
    const raw = publicKeyBytes(publicKey);
    t = Promise.all([importX25519PublicKey(raw), keyIdOf(raw)]).then(([key, keyId]) => ({ key, keyId }));
    if (targets.size >= PUBLIC_KEY_CACHE_MAX) targets.delete(targets.keys().next().value!);
    targets.set(hex, t);
    t.catch(() => targets.delete(hex));
  }
  return t;
}

/** A recipient key from the private key's JWK (`{kty:'OKP', crv:'X25519', d, x}`), e.g. exported from a
 *  Node KeyObject. The private CryptoKey is not extractable. */
export async function recipientKeyFromJwk(jwk: JsonWebKey): Promise<RecipientKey> {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'X25519' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string') {
    throw new TypeError('expected the JWK of an X25519 private key (kty OKP, crv X25519, d and x)');
  }
  const privateKey = await subtle().importKey('jwk', { kty: 'OKP', crv: 'X25519', d: jwk.d, x: jwk.x }, X25519, false, [
    'deriveBits',
  ]);
  const publicKey = await subtle().importKey('jwk', { kty: 'OKP', crv: 'X25519', x: jwk.x }, X25519, true, []);
  return recipientKeyFromPair({ privateKey, publicKey });
}

export async function recipientKeyFromPair(keyPair: CryptoKeyPair): Promise<RecipientKey> {
  const raw = new Uint8Array(await subtle().exportKey('raw', keyPair.publicKey));
  const keyId = await keyIdOf(raw);
  return Object.freeze({ keyPair, publicKey: raw, keyId, keyIdHex: toHex(keyId) });
}

/** A fresh X25519 recipient key (e.g. a client's key for results sealed back to it). The private key is
 *  extractable only when asked, so it can be stored; by default it never leaves WebCrypto. */
export async function generateRecipientKey(extractable = false): Promise<RecipientKey> {
  const pair = (await subtle().generateKey(X25519, extractable, ['deriveBits'])) as CryptoKeyPair;
  return recipientKeyFromPair(pair);
}
