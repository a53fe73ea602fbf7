// Node-only primitives for sealed messages (see seal/provider.ts): node:crypto's synchronous X25519 KEM
// (seal-node-kem.ts), HMAC, HKDF and AES-256-GCM under @hpke/core's key schedule, which itself is
// unchanged (only its HMAC runs here). Not reachable from the browser-safe graph: the agent (and any Node
// client) opts in with useNodeSealCrypto().
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { HkdfSha256 } from '@hpke/core';
import { NodeDhkemX25519HkdfSha256 } from './seal-node-kem.js';
import { expandSync, extractSync, hkdfSha256 } from './seal-node-hkdf.js';
import { setSealCrypto, type AesGcmKey, type SealCrypto } from './seal/provider.js';

const HASH_BYTES = 32;
const TAG_BYTES = 16;
/** Remembered psk_id_hash / info_hash results (distinct request paths and keys in use at once). */
const MAX_PUBLIC_HASHES = 256;
/** Longer inputs (a request with large additional data) are hashed each time, not kept. */
const MAX_PUBLIC_HASH_INPUT_BYTES = 1024;
const PUBLIC_LABELS = [Buffer.from('psk_id_hash'), Buffer.from('info_hash')];
const isPublicLabel = (label: Uint8Array): boolean => PUBLIC_LABELS.some((l) => l.equals(buf(label)));

const buf = (b: ArrayBuffer | Uint8Array): Buffer =>
  b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.from(b);
const arrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;

/**
 * @hpke/core's HKDF-SHA256 with its RFC 5869 steps on node:crypto's HMAC; the labels and the key schedule
 * (RFC 9180 §5.1) stay the library's own. The schedule derives its exporter secret, key and base nonce with
 * three ExtractAndExpand calls over one (shared secret, labelled psk): their common Extract runs once (the
 * PRK is kept per shared-secret buffer, in a WeakMap, so it goes with that buffer).
 */
class NodeHkdfSha256 extends HkdfSha256 {
  private readonly prks = new WeakMap<ArrayBuffer, { salt: Buffer; ikm: Buffer; prk: Buffer }>();

  private readonly publicHashes = new Map<string, ArrayBuffer>();

  /** psk_id_hash and info_hash (RFC 9180 §5.1) hash public inputs (the PSK id, empty here, and the info,
   *  which repeats for every request to one path and key): their results are remembered, a few hundred. */
  override async labeledExtract(salt: ArrayBuffer, label: Uint8Array, ikm: Uint8Array): Promise<ArrayBuffer> {
    if (salt.byteLength !== 0 || ikm.length > MAX_PUBLIC_HASH_INPUT_BYTES || !isPublicLabel(label)) {
      return super.labeledExtract(salt, label, ikm);
    }
    const k = `${label.length}:${buf(label).toString('latin1')}${buf(ikm).toString('latin1')}`;
    let h = this.publicHashes.get(k);
    if (h === undefined) {
      h = await super.labeledExtract(salt, label, ikm);
      if (this.publicHashes.size >= MAX_PUBLIC_HASHES) this.publicHashes.delete(this.publicHashes.keys().next().value!);
      this.publicHashes.set(k, h);
    }
    return h.slice(0);
  }

  override async extract(salt: ArrayBuffer, ikm: ArrayBuffer): Promise<ArrayBuffer> {
    const s = buf(salt);
    if (s.length !== 0 && s.length !== HASH_BYTES) throw new Error('The salt length must be the same as the hashSize');
    return arrayBuffer(extractSync(s, buf(ikm)));
  }

  override async expand(prk: ArrayBuffer, info: ArrayBuffer, len: number): Promise<ArrayBuffer> {
    return arrayBuffer(expandSync(buf(prk), buf(info), len));
  }

  override async extractAndExpand(
    salt: ArrayBuffer,
    ikm: ArrayBuffer,
    info: ArrayBuffer,
    len: number,
  ): Promise<ArrayBuffer> {
    const ikmBytes = buf(ikm);
    let prk: Buffer;
    const saltBytes = buf(salt);
    const known = salt instanceof ArrayBuffer ? this.prks.get(salt) : undefined;
    if (known !== undefined && known.salt.equals(saltBytes) && known.ikm.equals(ikmBytes)) prk = known.prk;
    else {
      prk = extractSync(saltBytes, ikmBytes);
      if (salt instanceof ArrayBuffer)
        this.prks.set(salt, { salt: Buffer.from(saltBytes), ikm: Buffer.from(ikmBytes), prk });
    }
    return arrayBuffer(expandSync(prk, buf(info), len));
  }
}

/** Synchronous (no promise per frame) and with one copy per frame: the header, ciphertext and tag are
 *  joined once. The key stays a private Buffer copy: a KeyObject per message (four per request) cost more
 *  than the frames it keys. */
class NodeAesGcm implements AesGcmKey {
  constructor(private readonly key: Buffer) {}

  sealFrame(iv: Uint8Array, header: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const c = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    c.setAAD(header);
    const ct = c.update(plaintext);
    c.final(); // GCM emits nothing here
    return Buffer.concat([header, ct, c.getAuthTag()]);
  }

  open(iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
    if (sealed.length < TAG_BYTES) throw new Error('shorter than its tag');
    const d = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const pt = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    d.final(); // throws when the tag does not verify; GCM emits nothing here
    return pt;
  }
}

export const nodeSealCrypto: SealCrypto = {
  name: 'node:crypto',
  hpkeKdf: () => new NodeHkdfSha256(),
  hpkeKem: () => new NodeDhkemX25519HkdfSha256(),
  aesGcm: async (key) => new NodeAesGcm(Buffer.from(key)),
  hkdf: async (salt, ikm, info, length) => {
    const b = hkdfSha256(salt, ikm, info, length);
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  },
};

/** Seal and open with node:crypto in this process (same bytes as WebCrypto, far fewer round trips). */
export function useNodeSealCrypto(): void {
  setSealCrypto(nodeSealCrypto);
}
