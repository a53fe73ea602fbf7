// An agent's per-boot keyset (DESIGN §6): an X25519 key for HPKE and an Ed25519 key for usage receipts.
// Both public keys are bound into report_data (see report-data.ts), so a verified quote vouches for them.
import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/** The public half of an agent's keyset, as it travels on the wire and is hashed into report_data. */
export interface Keyset {
  /** X25519 public key, lowercase hex of the raw 32 bytes. */
  hpke_public_key: string;
  /** Ed25519 public key, lowercase hex of the raw 32 bytes. */
  receipt_public_key: string;
}

/**
 * The private keyset, alive for one boot only. Holds KeyObjects, which never expose key material when
 * logged or inspected; `toJSON` yields only the public keyset so an accidental JSON.stringify cannot leak.
 */
export interface AgentKeys {
  readonly hpke: { readonly publicKey: KeyObject; readonly privateKey: KeyObject };
  readonly receipt: { readonly publicKey: KeyObject; readonly privateKey: KeyObject };
  toJSON(): Keyset;
}

const KEYSET_FIELDS = ['hpke_public_key', 'receipt_public_key'] as const;
const RAW_KEY_HEX = /^[0-9a-f]{64}$/;

/** Raw 32-byte public key of an OKP (X25519/Ed25519) KeyObject. JWK is the one export that gives raw bytes. */
export function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('not an OKP public key');
  const raw = Buffer.from(jwk.x, 'base64url');
  if (raw.length !== 32) throw new Error(`unexpected public key length ${raw.length}`);
  return raw;
}

/** Ed25519 signature check with a raw 32-byte public key; an unusable key or signature is just `false`. */
export function ed25519Verify(publicKey: Buffer, data: Buffer, signature: Buffer): boolean {
  try {
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.toString('base64url') },
      format: 'jwk',
    });
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}

export function generateKeyset(): AgentKeys {
  const hpke = generateKeyPairSync('x25519');
  const receipt = generateKeyPairSync('ed25519');
  const keys: AgentKeys = {
    hpke: { publicKey: hpke.publicKey, privateKey: hpke.privateKey },
    receipt: { publicKey: receipt.publicKey, privateKey: receipt.privateKey },
    toJSON: () => publicKeyset(keys),
  };
  return Object.freeze(keys);
}

export function publicKeyset(keys: AgentKeys): Keyset {
  return {
    hpke_public_key: rawPublicKey(keys.hpke.publicKey).toString('hex'),
    receipt_public_key: rawPublicKey(keys.receipt.publicKey).toString('hex'),
  };
}

/**
 * Validates an untrusted keyset. Strict on purpose: exactly the two fields, lowercase hex, because the
 * digest is over the canonical JSON and an unbound extra field or a second spelling of a key must not exist.
 */
export function parseKeyset(value: unknown): Keyset {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('invalid keyset: expected an object');
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(KEYSET_FIELDS as readonly string[]).includes(key)) {
      throw new Error(`invalid keyset: unexpected field "${key}"`);
    }
  }
  for (const field of KEYSET_FIELDS) {
    const v = record[field];
    if (typeof v !== 'string' || !RAW_KEY_HEX.test(v)) {
      throw new Error(`invalid keyset: ${field} must be 64 lowercase hex characters (a raw 32-byte key)`);
    }
  }
  return { hpke_public_key: record.hpke_public_key as string, receipt_public_key: record.receipt_public_key as string };
}

/**
 * Deterministic JSON for hashing: object keys sorted (UTF-16 code unit order, as RFC 8785), no whitespace.
 * Only plain JSON data is accepted; anything JSON.stringify would silently change (undefined in arrays,
 * NaN, bigint, Dates, Buffers, class instances) throws, so two parties cannot hash different things.
 * Object properties whose value is undefined are omitted, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, '$');
}

function encode(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`canonicalJson: non-finite number at ${path}`);
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new Error(`canonicalJson: unsupported ${typeof value} at ${path}`);
  }
  if (Array.isArray(value)) {
    return `[${value.map((item, i) => encode(item, `${path}[${i}]`)).join(',')}]`;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new Error(`canonicalJson: not a plain object at ${path}`);
  }
  const record = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(record).sort()) {
    const v = record[key];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${encode(v, `${path}.${key}`)}`);
  }
  return `{${parts.join(',')}}`;
}

/** SHA-256 of the canonical JSON of a validated keyset: the keyset's contribution to report_data. */
export function keysetDigest(keyset: Keyset): Buffer {
  const k = parseKeyset(keyset);
  return createHash('sha256').update(canonicalJson(k), 'utf8').digest();
}
