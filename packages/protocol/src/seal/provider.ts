// The symmetric primitives under sealed messages (HKDF, AES-256-GCM), swappable so a Node process can use
// node:crypto's synchronous calls instead of WebCrypto's per-call round trips (seal-node.ts, Node-only; it
// cuts an agent's cost per sealed request several-fold). The default is WebCrypto: browsers, and Node when
// nothing is configured. Both give the same bytes (test/src/seal/provider.test.ts checks them against each
// other); nothing on the wire depends on which one ran.
import { DhkemX25519HkdfSha256, HkdfSha256, type KemInterface } from '@hpke/core';
import { subtle, type CryptoKey } from './bytes.js';

/** AES-256-GCM under one key. `sealFrame` returns header ‖ ciphertext ‖ 16-byte tag, the header being the
 *  additional data; `open` takes ciphertext ‖ tag and throws (or rejects) if authentication fails. A provider
 *  may answer synchronously (node:crypto does), saving a promise per frame. */
export interface AesGcmKey {
  sealFrame(iv: Uint8Array, header: Uint8Array, plaintext: Uint8Array): Uint8Array | Promise<Uint8Array>;
  open(iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

export interface SealCrypto {
  readonly name: string;
  /** The KDF HPKE's key schedule and exports run on (an @hpke/core HKDF-SHA256). */
  hpkeKdf(): HkdfSha256;
  /** DHKEM(X25519, HKDF-SHA256) for HPKE's encap/decap (RFC 9180 §4.1). */
  hpkeKem(): KemInterface;
  aesGcm(key: Uint8Array): Promise<AesGcmKey>;
  /** HKDF-SHA256 (RFC 5869), extract then expand. */
  hkdf(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array>;
}

class WebAesGcm implements AesGcmKey {
  constructor(private readonly key: CryptoKey) {}
  async sealFrame(iv: Uint8Array, header: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
    const p = { name: 'AES-GCM', iv, additionalData: header, tagLength: 128 };
    const ct = new Uint8Array(await subtle().encrypt(p, this.key, plaintext));
    const out = new Uint8Array(header.length + ct.length);
    out.set(header, 0);
    out.set(ct, header.length);
    return out;
  }
  async open(iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> {
    const p = { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 };
    return new Uint8Array(await subtle().decrypt(p, this.key, sealed));
  }
}

export const webSealCrypto: SealCrypto = {
  name: 'webcrypto',
  hpkeKdf: () => new HkdfSha256(),
  hpkeKem: () => new DhkemX25519HkdfSha256(),
  async aesGcm(key) {
    return new WebAesGcm(await subtle().importKey('raw', key, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']));
  },
  async hkdf(salt, ikm, info, length) {
    const k = await subtle().importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
    return new Uint8Array(await subtle().deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, k, length * 8));
  },
};

let current: SealCrypto = webSealCrypto;

export function sealCrypto(): SealCrypto {
  return current;
}

/** Chooses the primitives for this process (null: back to WebCrypto). Call at start-up, before sealing. */
export function setSealCrypto(provider: SealCrypto | null): void {
  current = provider ?? webSealCrypto;
}
