// One-shot sealing for small messages held in memory (a job's sealed env, a result, a secret): the same
// message format and code as the streams, with the whole plaintext at once.
import { concatBytes } from './bytes.js';
import { MessageOpener, MessageSealer } from './message.js';
import type { RecipientKey } from './keys.js';

/** Seals `plaintext` to a recipient's X25519 public key (32 raw bytes or 64 lowercase hex). */
export async function seal(
  recipientPublicKey: Uint8Array | string,
  plaintext: Uint8Array,
  aad?: Uint8Array,
  meta?: Uint8Array,
): Promise<Uint8Array> {
  const sealer = await MessageSealer.request(recipientPublicKey, { aad, meta: meta ?? null });
  return concatBytes(await sealer.end(plaintext));
}

/** Opens a message sealed with `seal`; throws SealError (wrong_key, auth_failed, truncated, ...). */
export async function open(
  recipient: RecipientKey,
  sealed: Uint8Array,
  aad?: Uint8Array,
  max_body_bytes?: number,
): Promise<Uint8Array> {
  return (await openMessage(recipient, sealed, aad, max_body_bytes)).body;
}

/** `open` that also returns the meta record. */
export async function openMessage(
  recipient: RecipientKey,
  sealed: Uint8Array,
  aad?: Uint8Array,
  max_body_bytes?: number,
): Promise<{ body: Uint8Array; meta: Uint8Array | null }> {
  const opener = MessageOpener.request(recipient, { aad, max_body_bytes });
  const body = concatBytes(await opener.push(sealed));
  opener.end();
  return { body, meta: opener.meta };
}
