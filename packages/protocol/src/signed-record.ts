// Signed records: Ed25519 signatures over the RFC 8785 canonical JSON of a record, with a domain label, so a
// usage receipt and a launcher's usage record (or any later kind) can never be taken for one another.
//
//   signed bytes = "easyenclave signed record v1" ‖ 0x00 ‖ domain ‖ 0x00 ‖ JCS(record)      (UTF-8)
//
// Browser-safe (WebCrypto Ed25519: Node 20 and current browsers), so the control plane, the agent, the
// launcher and the SDK verify with the same code. Records are plain JSON with integer numbers only: amounts
// are integer micro-USD, and integers print the same in every language's JCS (floats are where they differ).
import canonicalize from 'canonicalize';
import { fromHex, subtle, toHex, utf8, type CryptoKey, type JsonWebKey } from './seal/bytes.js';

export const RECORD_SIGNATURE_LABEL = 'easyenclave signed record v1';
/** Largest canonical record a signer signs or a verifier checks. */
export const MAX_RECORD_BYTES = 64 * 1024;
const MAX_RECORD_DEPTH = 16;
const DOMAIN_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const ED25519 = { name: 'Ed25519' } as const;
const SIGNATURE_HEX_RE = /^[0-9a-f]{128}$/;
const PUBLIC_KEY_HEX_RE = /^[0-9a-f]{64}$/;

export type RecordValue = null | boolean | number | string | RecordValue[] | { [key: string]: RecordValue };

function check(value: unknown, path: string, depth: number): void {
  if (depth > MAX_RECORD_DEPTH) throw new TypeError(`record nested deeper than ${MAX_RECORD_DEPTH} at ${path}`);
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`record numbers must be safe integers (at ${path})`);
    return;
  }
  if (typeof value !== 'object') throw new TypeError(`record holds a ${typeof value} at ${path}`);
  if (Array.isArray(value)) {
    value.forEach((v, i) => check(v, `${path}[${i}]`, depth + 1));
    return;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw new TypeError(`record holds a non-plain object at ${path}`);
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) throw new TypeError(`record field ${path}.${k} is undefined`);
    check(v, `${path}.${k}`, depth + 1);
  }
}

/** RFC 8785 canonical JSON of a record (an object of plain JSON, integers only); throws on anything else. */
export function canonicalRecordJson(record: unknown): string {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new TypeError('a record is a JSON object');
  }
  check(record, '$', 0);
  const s = canonicalize(record);
  if (typeof s !== 'string') throw new TypeError('record does not canonicalize');
  return s;
}

/** The exact bytes an Ed25519 signature covers. */
export function recordSigningBytes(domain: string, record: unknown): Uint8Array {
  if (typeof domain !== 'string' || !DOMAIN_RE.test(domain)) {
    throw new TypeError('a record domain is 1-64 characters of [a-z0-9._-], starting with a letter or digit');
  }
  return signingBytesOfCanonical(domain, canonicalRecordJson(record));
}

/** recordSigningBytes from a record's canonical JSON (canonicalRecordJson's output), when it is at hand. */
export function signingBytesOfCanonical(domain: string, canonical: string): Uint8Array {
  if (typeof domain !== 'string' || !DOMAIN_RE.test(domain)) {
    throw new TypeError('a record domain is 1-64 characters of [a-z0-9._-], starting with a letter or digit');
  }
  const json = utf8(canonical);
  if (json.length > MAX_RECORD_BYTES) throw new TypeError(`record over ${MAX_RECORD_BYTES} bytes`);
  const label = utf8(`${RECORD_SIGNATURE_LABEL}\u0000${domain}\u0000`);
  const out = new Uint8Array(label.length + json.length);
  out.set(label, 0);
  out.set(json, label.length);
  return out;
}

/** Signs a record; the signature is 64 bytes as 128 lowercase hex characters. */
export async function signRecord(privateKey: CryptoKey, record: unknown, domain: string): Promise<string> {
  const sig = await subtle().sign(ED25519, privateKey, recordSigningBytes(domain, record));
  return toHex(new Uint8Array(sig));
}

/** True only for a valid signature by `publicKeyHex` (raw Ed25519 key, 64 lowercase hex) over this record in
 *  this domain. A malformed key or signature is false, never an exception; a record that is not plain JSON
 *  throws (it cannot have been signed by signRecord). */
export async function verifyRecord(
  publicKeyHex: string,
  record: unknown,
  signatureHex: string,
  domain: string,
): Promise<boolean> {
  const bytes = recordSigningBytes(domain, record);
  if (typeof publicKeyHex !== 'string' || !PUBLIC_KEY_HEX_RE.test(publicKeyHex)) return false;
  if (typeof signatureHex !== 'string' || !SIGNATURE_HEX_RE.test(signatureHex)) return false;
  let key: CryptoKey;
  try {
    key = await subtle().importKey('raw', fromHex(publicKeyHex), ED25519, false, ['verify']);
  } catch {
    return false;
  }
  return subtle().verify(ED25519, key, fromHex(signatureHex), bytes);
}

/** An Ed25519 signing key from its private JWK (e.g. a Node KeyObject's export), not extractable. */
export async function importSigningKey(jwk: JsonWebKey): Promise<CryptoKey> {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string') {
    throw new TypeError('expected the JWK of an Ed25519 private key (kty OKP, crv Ed25519, d and x)');
  }
  return subtle().importKey('jwk', { kty: 'OKP', crv: 'Ed25519', d: jwk.d, x: jwk.x }, ED25519, false, ['sign']);
}

/** A fresh Ed25519 key pair: the private CryptoKey and the public key as 64 lowercase hex characters. */
export async function generateSigningKey(): Promise<{ privateKey: CryptoKey; publicKeyHex: string }> {
  const pair = (await subtle().generateKey(ED25519, false, ['sign', 'verify'])) as {
    privateKey: CryptoKey;
    publicKey: CryptoKey;
  };
  const raw = new Uint8Array(await subtle().exportKey('raw', pair.publicKey));
  return { privateKey: pair.privateKey, publicKeyHex: toHex(raw) };
}
