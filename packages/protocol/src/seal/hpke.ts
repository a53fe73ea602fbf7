// The HPKE (RFC 9180) part: base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM via @hpke/core
// (WebCrypto underneath, so the same code runs in Node 20 and browsers). Sealed messages use HPKE for key
// encapsulation and its secret export (§5.3): the body keys, and the response key, are exported secrets.
import { Aes256Gcm, CipherSuite } from '@hpke/core';
import { ENC_BYTES } from './constants.js';
import { bufferOf, copyOf, utf8 } from './bytes.js';
import type { CryptoKey } from './bytes.js';
import type { RecipientKey } from './keys.js';
import { SealError } from './errors.js';
import { sealCrypto, type SealCrypto } from './provider.js';

let suite: { provider: SealCrypto; suite: CipherSuite } | null = null;
/** One suite per provider (its KDF runs the key schedule and the exports). */
function cipherSuite(): CipherSuite {
  const provider = sealCrypto();
  if (suite?.provider !== provider) {
    const s = new CipherSuite({ kem: provider.hpkeKem(), kdf: provider.hpkeKdf(), aead: new Aes256Gcm() });
    suite = { provider, suite: s };
  }
  return suite.suite;
}

/** What both ends of one request hold after HPKE setup: the exporter of its context and the enc. The
 *  response to that request is sealed under a secret exported from here, so only the requester can open it. */
export interface Exporter {
  readonly enc: Uint8Array;
  export(label: string, length: number): Promise<Uint8Array>;
}

class ContextExporter implements Exporter {
  constructor(
    private readonly ctx: { export(exporterContext: ArrayBuffer, len: number): Promise<ArrayBuffer> },
    readonly enc: Uint8Array,
  ) {}

  async export(label: string, length: number): Promise<Uint8Array> {
    return new Uint8Array(await this.ctx.export(bufferOf(utf8(label)), length));
  }
}

export async function setupSender(pk: CryptoKey, info: Uint8Array): Promise<Exporter> {
  const s = cipherSuite();
  const ctx = await s.createSenderContext({ recipientPublicKey: pk, info: bufferOf(info) });
  const enc = new Uint8Array(ctx.enc);
  if (enc.length !== ENC_BYTES) throw new Error(`unexpected HPKE enc length ${enc.length}`);
  return new ContextExporter(ctx, enc);
}

export async function setupRecipient(key: RecipientKey, enc: Uint8Array, info: Uint8Array): Promise<Exporter> {
  try {
    const ctx = await cipherSuite().createRecipientContext({
      recipientKey: key.keyPair,
      enc: bufferOf(enc),
      info: bufferOf(info),
    });
    return new ContextExporter(ctx, copyOf(enc));
  } catch {
    // A bad enc (e.g. a low-order point) fails decapsulation; say so without detail (no oracle).
    throw new SealError('auth_failed', 'HPKE decapsulation failed');
  }
}
