// DHKEM(X25519, HKDF-SHA256) (RFC 9180 §4.1, base mode) on node:crypto's synchronous X25519 and HKDF, as an
// @hpke/core KemInterface. Hand-written because @hpke/core's KEM runs every step (key generation, export,
// DH, the HKDF) as a WebCrypto job on the thread pool: six round trips per sealed request, the largest cost
// of a small one. Same bytes on the wire: test/src/seal/provider.test.ts seals with either KEM and opens
// with the other. Node-only (seal-node.ts opts in); anything outside base mode goes to @hpke/core's KEM.
import { createPublicKey, diffieHellman, generateKeyPairSync, KeyObject } from 'node:crypto';
import { DhkemX25519HkdfSha256, type KemInterface, type RecipientContextParams } from '@hpke/core';
import type { SenderContextParams } from '@hpke/core';
import type { CryptoKey, CryptoKeyPair, JsonWebKey } from './seal/bytes.js';
import { hkdfSha256 } from './seal-node-hkdf.js';

const X25519_BYTES = 32;
const SECRET_BYTES = 32;
const HPKE_V1 = Buffer.from('HPKE-v1');
/** suite_id = "KEM" ‖ I2OSP(0x0020, 2) */
const KEM_SUITE_ID = Buffer.from([0x4b, 0x45, 0x4d, 0x00, 0x20]);
const LABEL_EAE_PRK = Buffer.from('eae_prk');
/** I2OSP(Nsecret, 2) ‖ "HPKE-v1" ‖ suite_id ‖ "shared_secret": the fixed part of LabeledExpand's info. */
const SHARED_SECRET_INFO_PREFIX = Buffer.concat([
  Buffer.from([0, SECRET_BYTES]),
  HPKE_V1,
  KEM_SUITE_ID,
  Buffer.from('shared_secret'),
]);
const EMPTY = Buffer.alloc(0);

type KeyLike = Parameters<typeof KeyObject.from>[0];

/** generateKeyPairSync with only the public half encoded (as a JWK); @types/node's overloads want both. */
const generateEphemeral = generateKeyPairSync as unknown as (
  type: 'x25519',
  options: { publicKeyEncoding: { format: 'jwk' } },
) => { publicKey: { x?: string }; privateKey: KeyObject };

// A CryptoKey's KeyObject and raw public key never change: look them up once (recipient keys are reused).
const keyObjects = new WeakMap<object, KeyObject>();
const rawPublicKeys = new WeakMap<object, Buffer>();

function keyObjectOf(k: KeyLike): KeyObject {
  let o = keyObjects.get(k);
  if (o === undefined) {
    o = KeyObject.from(k);
    if (o.asymmetricKeyType !== 'x25519') throw new TypeError('expected an X25519 key');
    keyObjects.set(k, o);
  }
  return o;
}

// JWK, not DER: OpenSSL 3 decodes a DER public key about 8x slower than it imports the same key as JWK.
function rawPublic(k: KeyObject): Buffer {
  const raw = Buffer.from(k.export({ format: 'jwk' }).x ?? '', 'base64url');
  if (raw.length !== X25519_BYTES) throw new Error('unexpected X25519 public key length');
  return raw;
}

function rawPublicOf(k: KeyLike): Buffer {
  let r = rawPublicKeys.get(k);
  if (r === undefined) {
    r = rawPublic(keyObjectOf(k));
    rawPublicKeys.set(k, r);
  }
  return r;
}

function bytes(b: ArrayBufferLike | ArrayBufferView): Buffer {
  return ArrayBuffer.isView(b) ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.from(b);
}

function arrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
}

/** ExtractAndExpand(dh, enc ‖ pkRm) of RFC 9180 §4.1, with its labels. OpenSSL's X25519 refuses an all-zero
 *  DH output (a low-order point), so diffieHellman throws where the RFC requires a failure. */
function sharedSecret(dh: Buffer, enc: Buffer, pkRm: Buffer): ArrayBuffer {
  const ikm = Buffer.concat([HPKE_V1, KEM_SUITE_ID, LABEL_EAE_PRK, dh]);
  const info = Buffer.concat([SHARED_SECRET_INFO_PREFIX, enc, pkRm]);
  return arrayBuffer(hkdfSha256(EMPTY, ikm, info, SECRET_BYTES));
}

export class NodeDhkemX25519HkdfSha256 implements KemInterface {
  private readonly web = new DhkemX25519HkdfSha256();
  readonly id = this.web.id;
  readonly secretSize = this.web.secretSize;
  readonly encSize = this.web.encSize;
  readonly publicKeySize = this.web.publicKeySize;
  readonly privateKeySize = this.web.privateKeySize;

  async encap(params: SenderContextParams): Promise<{ sharedSecret: ArrayBuffer; enc: ArrayBuffer }> {
    // Auth mode and fixed test ephemerals are not used here: the library's code handles them.
    if (params.senderKey !== undefined || params.ekm !== undefined) return this.web.encap(params);
    const pkR = keyObjectOf(params.recipientPublicKey);
    // The public half comes back as a JWK from the key-generation job itself. Exporting it afterwards from
    // its KeyObject deadlocked Node 20 now and then: the export holds the key's mutex while it allocates, and
    // a GC there runs the finished job's destructor, which takes the same mutex.
    const ephemeral = generateEphemeral('x25519', { publicKeyEncoding: { format: 'jwk' } });
    const enc = Buffer.from(ephemeral.publicKey.x ?? '', 'base64url');
    if (enc.length !== X25519_BYTES) throw new Error('unexpected X25519 public key length');
    const dh = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: pkR });
    return { enc: arrayBuffer(enc), sharedSecret: sharedSecret(dh, enc, rawPublicOf(params.recipientPublicKey)) };
  }

  async decap(params: RecipientContextParams): Promise<ArrayBuffer> {
    const pair = params.recipientKey as { privateKey?: KeyLike; publicKey?: KeyLike };
    if (params.senderPublicKey !== undefined || pair.privateKey === undefined || pair.publicKey === undefined) {
      return this.web.decap(params);
    }
    const enc = bytes(params.enc);
    if (enc.length !== X25519_BYTES) throw new Error('an X25519 enc is 32 bytes');
    const jwk = { kty: 'OKP', crv: 'X25519', x: enc.toString('base64url') };
    const pkE = createPublicKey({ key: jwk, format: 'jwk' });
    const dh = diffieHellman({ privateKey: keyObjectOf(pair.privateKey), publicKey: pkE });
    return sharedSecret(dh, enc, rawPublicOf(pair.publicKey));
  }

  serializePublicKey(key: CryptoKey): Promise<ArrayBuffer> {
    return this.web.serializePublicKey(key);
  }
  deserializePublicKey(key: ArrayBufferLike | ArrayBufferView): Promise<CryptoKey> {
    return this.web.deserializePublicKey(key);
  }
  serializePrivateKey(key: CryptoKey): Promise<ArrayBuffer> {
    return this.web.serializePrivateKey(key);
  }
  deserializePrivateKey(key: ArrayBufferLike | ArrayBufferView): Promise<CryptoKey> {
    return this.web.deserializePrivateKey(key);
  }
  importKey(format: 'raw' | 'jwk', key: ArrayBuffer | JsonWebKey, isPublic?: boolean): Promise<CryptoKey> {
    return this.web.importKey(format, key, isPublic);
  }
  generateKeyPair(): Promise<CryptoKeyPair> {
    return this.web.generateKeyPair();
  }
  deriveKeyPair(ikm: ArrayBufferLike | ArrayBufferView): Promise<CryptoKeyPair> {
    return this.web.deriveKeyPair(ikm);
  }
}
