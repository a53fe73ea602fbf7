// One error type for everything that refuses a sealed message. `code` is stable (tests and HTTP mappings
// key on it); the message says which frame or field, never anything about plaintext or key material.

export type SealErrorCode =
  /** Not a sealed message of a shape this version knows (magic, kind, lengths, flags, meta placement). */
  | 'malformed'
  /** Another version or cipher suite. */
  | 'unsupported'
  /** Sealed to a key this receiver does not hold: refused before any decryption. */
  | 'wrong_key'
  /** A frame failed authentication: a flipped bit, a frame dropped, reordered or replayed, the wrong
   *  additional data, or a forged header. */
  | 'auth_failed'
  /** The bytes ended before the final frame. */
  | 'truncated'
  /** Bytes after the final frame. */
  | 'trailing_data'
  /** Over a limit (frame size, additional data, meta, body). */
  | 'too_large';

export class SealError extends Error {
  override readonly name = 'SealError';
  constructor(
    readonly code: SealErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isSealError(err: unknown, code?: SealErrorCode): err is SealError {
  return err instanceof SealError && (code === undefined || err.code === code);
}
