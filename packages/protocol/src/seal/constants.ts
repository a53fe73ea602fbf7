// The sealed-message format, version 1 (docs/confidential.md, "Wire format"): every number that defines it.
// Browser-safe: this folder uses WebCrypto and Uint8Array only, never Node built-ins, so the SDK can load it.

export const SEAL_VERSION = 1;
/** First four bytes of every sealed message: ASCII "ees" and the version byte. */
export const SEAL_MAGIC: readonly number[] = [0x65, 0x65, 0x73, SEAL_VERSION];

/** Message kinds (byte 4). A request is sealed to a recipient's public key with HPKE; a response is sealed
 *  under a key exported from the HPKE context of the request it answers. */
export const KIND_REQUEST = 0x01;
export const KIND_RESPONSE = 0x02;

/** RFC 9180 identifiers of the one suite version 1 speaks: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM. */
export const KEM_ID = 0x0020;
export const KDF_ID = 0x0001;
export const AEAD_ID = 0x0002;

export const KEY_ID_BYTES = 32;
export const X25519_PUBLIC_KEY_BYTES = 32;
export const ENC_BYTES = 32;
export const RESPONSE_NONCE_BYTES = 32;
export const AES_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;

/** magic(4) kind(1) kem(2) kdf(2) aead(2): the part both header kinds share. */
export const COMMON_HEADER_BYTES = 11;
/** Request header: common, recipient key id (32), HPKE enc (32). */
export const REQUEST_HEADER_BYTES = COMMON_HEADER_BYTES + KEY_ID_BYTES + ENC_BYTES;
/** Response header: common, response nonce (32). */
export const RESPONSE_HEADER_BYTES = COMMON_HEADER_BYTES + RESPONSE_NONCE_BYTES;

/** Frame header: flags(1), sealed length(3, big endian). It is the AEAD's additional data for its frame. */
export const SEAL_FRAME_HEADER_BYTES = 4;
export const FLAG_FINAL = 0x01;
export const FLAG_META = 0x02;
export const KNOWN_FLAGS = FLAG_FINAL | FLAG_META;

/** Largest plaintext in one frame. Bounds what a reader buffers (one frame) and what a writer holds; 64 KiB
 *  keeps the per-frame cost (16-byte tag, one AEAD call) under 0.05 % of the bytes for bulk bodies. */
export const MAX_CHUNK_PLAINTEXT_BYTES = 64 * 1024;
export const MAX_FRAME_SEALED_BYTES = MAX_CHUNK_PLAINTEXT_BYTES + AEAD_TAG_BYTES;
/** The meta record (optional first frame) must fit one frame. */
export const MAX_META_BYTES = MAX_CHUNK_PLAINTEXT_BYTES;
/** Additional data the caller binds into a message (e.g. the HTTP method and path). */
export const MAX_AAD_BYTES = 16 * 1024;
/** Frames per message before the nonce sequence would need more than 48 bits: 2^48 x 64 KiB is far beyond
 *  any body, so reaching it is a bug, not a limit to tune. */
export const MAX_FRAMES_PER_MESSAGE = 2 ** 48;

// Labels. Each derivation has its own, so no key or nonce is ever used for two purposes or two versions.
export const LABEL_REQUEST_INFO = 'ee-seal-v1 request';
/** Request body: key ‖ base nonce = Export(this label, 44). */
export const LABEL_REQUEST_KEYS = 'ee-seal-v1 request keys';
/** Response: secret = Export(this label, 32) of the request's context. */
export const LABEL_RESPONSE_SECRET = 'ee-seal-v1 response';
/** Response body: key ‖ base nonce = HKDF(salt = enc ‖ response nonce, secret, this label ‖ 0 ‖ header ‖ aad, 44). */
export const LABEL_RESPONSE_KEYS = 'ee-seal-v1 response keys';
