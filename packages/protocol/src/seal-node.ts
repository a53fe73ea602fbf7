// Node-only primitives for sealed messages (see seal/provider.ts): node:crypto's synchronous X25519 KEM
// (seal-node-kem.ts), HMAC, HKDF and AES-256-GCM under @hpke/core's key schedule, which itself is
// unchanged (only its HMAC runs here). Not reachable from the browser-safe graph: the agent (and any Node
// client) opts in with useNodeSealCrypto().
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { HkdfSha256 } from '@hpke/core';
import { NodeDhkemX25519HkdfSha256 } from './seal-node-kem.js';
import { setSealCrypto, type AesGcmKey, type SealCrypto } from './seal/provider.js';

const HASH_BYTES = 32;
const TAG_BYTES = 16;

const buf = (b: ArrayBuffer | Uint8Array): Buffer =>
  b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.from(b);
const arrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;

/** @hpke/core's HKDF-SHA256 with its two RFC 5869 steps on node:crypto; labels and schedule stay its own. */
class NodeHkdfSha256 extends HkdfSha256 {
  override async extract(salt: ArrayBuffer, ikm: ArrayBuffer): Promise<ArrayBuffer> {
    const s = salt.byteLength === 0 ? Buffer.alloc(HASH_BYTES) : buf(salt);
    if (s.length !== HASH_BYTES) throw new Error('The salt length must be the same as the hashSize');
    return arrayBuffer(createHmac('sha256', s).update(buf(ikm)).digest());
  }

  override async expand(prk: ArrayBuffer, info: ArrayBuffer, len: number): Promise<ArrayBuffer> {
    if (len > 255 * HASH_BYTES) throw new Error('Entropy limit reached');
    const key = buf(prk);
    const out = Buffer.alloc(len);
    let prev = Buffer.alloc(0);
    for (let i = 1, at = 0; at < len; i++) {
      prev = createHmac('sha256', key).update(prev).update(buf(info)).update(Buffer.of(i)).digest();
      at += prev.copy(out, at);
    }
    return arrayBuffer(out);
  }

  override async extractAndExpand(
    salt: ArrayBuffer,
    ikm: ArrayBuffer,
    info: ArrayBuffer,
    len: number,
  ): Promise<ArrayBuffer> {
    return hkdfSync('sha256', buf(ikm), buf(salt), buf(info), len);
  }
}

class NodeAesGcm implements AesGcmKey {
  constructor(private readonly key: KeyObject) {}

  async seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
    const c = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    c.setAAD(aad);
    const a = c.update(plaintext);
    const b = c.final();
    return Buffer.concat([a, b, c.getAuthTag()]);
  }

  async open(iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> {
    if (sealed.length < TAG_BYTES) throw new Error('shorter than its tag');
    const d = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const a = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    return Buffer.concat([a, d.final()]); // final() throws when the tag does not verify
  }
}

export const nodeSealCrypto: SealCrypto = {
  name: 'node:crypto',
  hpkeKdf: () => new NodeHkdfSha256(),
  hpkeKem: () => new NodeDhkemX25519HkdfSha256(),
  aesGcm: async (key) => new NodeAesGcm(createSecretKey(buf(key))),
  hkdf: async (salt, ikm, info, length) => new Uint8Array(hkdfSync('sha256', buf(ikm), buf(salt), buf(info), length)),
};

/** Seal and open with node:crypto in this process (same bytes as WebCrypto, far fewer round trips). */
export function useNodeSealCrypto(): void {
  setSealCrypto(nodeSealCrypto);
}
