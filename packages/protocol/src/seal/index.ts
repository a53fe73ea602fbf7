// Sealed messages (HPKE, RFC 9180) and sealed HTTP: one module for confidential traffic and sealed job
// secrets, results and logs. Browser-safe (WebCrypto, Uint8Array, web streams); see docs/confidential.md.
export * from './constants.js';
export { SealError, isSealError, type SealErrorCode } from './errors.js';
export {
  fromBase64Url,
  fromHex,
  toBase64Url,
  toHex,
  concatBytes,
  type CryptoKey,
  type CryptoKeyPair,
  type JsonWebKey,
} from './bytes.js';
export {
  generateRecipientKey,
  keyIdHexOf,
  keyIdOf,
  publicKeyBytes,
  recipientKeyFromJwk,
  recipientKeyFromPair,
  type RecipientKey,
} from './keys.js';
export type { Exporter } from './hpke.js';
export { sealCrypto, setSealCrypto, webSealCrypto, type AesGcmKey, type SealCrypto } from './provider.js';
export { MessageOpener, MessageSealer, type OpenOptions, type SealOptions } from './message.js';
export { openingStream, openIterable, sealingStream, sealIterable } from './streams.js';
export { open, openMessage, seal } from './oneshot.js';
export * from './http.js';
export { SealedHttpRequest, type OpenedResponse, type ResponseLike, type SealedRequestInit } from './http-client.js';
