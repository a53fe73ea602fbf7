// The chunk layer: each frame is flags(1) ‖ length(3) ‖ AES-256-GCM(key, nonce_i, plaintext, aad = those 4
// bytes), nonce_i = base_nonce XOR i (i = the frame's sequence number, from 0, as in RFC 9180 §5.2). The
// sequence number is never sent: a dropped, reordered or duplicated frame is opened under the wrong nonce and
// fails authentication; the FINAL flag is in the additional data, so a stream cut short cannot pass for whole.
import {
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  AES_KEY_BYTES,
  FLAG_FINAL,
  SEAL_FRAME_HEADER_BYTES,
  KNOWN_FLAGS,
  MAX_CHUNK_PLAINTEXT_BYTES,
  MAX_FRAME_SEALED_BYTES,
  MAX_FRAMES_PER_MESSAGE,
} from './constants.js';
import { copyOf, plainView } from './bytes.js';
import { sealCrypto, type AesGcmKey } from './provider.js';
import { SealError } from './errors.js';

export interface Frame {
  /** The 4 header bytes (the AEAD's additional data). */
  header: Uint8Array;
  flags: number;
  /** Ciphertext and tag. */
  sealed: Uint8Array;
}

/** AES-256-GCM under one message key with the frame counter in the nonce. One per message and direction. */
export class ChunkCipher {
  private seq = 0;

  private constructor(
    private readonly key: AesGcmKey,
    private readonly base_nonce: Uint8Array,
  ) {}

  static async create(key: Uint8Array, base_nonce: Uint8Array): Promise<ChunkCipher> {
    if (key.length !== AES_KEY_BYTES || base_nonce.length !== AEAD_NONCE_BYTES) throw new Error('bad key material');
    return new ChunkCipher(await sealCrypto().aesGcm(key), copyOf(base_nonce));
  }

  /** Frames sealed or opened so far (the next frame's sequence number). */
  get frames(): number {
    return this.seq;
  }

  /** The nonce of the next frame; advances the counter. Called synchronously before the await, so the
   *  counter follows call order even if a caller does not wait (it must still keep the output in order). */
  private nextNonce(): Uint8Array {
    const seq = this.seq++;
    if (seq >= MAX_FRAMES_PER_MESSAGE) throw new SealError('too_large', 'too many frames in one message');
    const n = copyOf(this.base_nonce);
    // XOR the 48-bit counter into the last 6 bytes, big endian (the high bytes of a 96-bit I2OSP are 0).
    const hi = Math.floor(seq / 2 ** 24);
    const lo = seq % 2 ** 24;
    n[6]! ^= (hi >>> 16) & 0xff;
    n[7]! ^= (hi >>> 8) & 0xff;
    n[8]! ^= hi & 0xff;
    n[9]! ^= (lo >>> 16) & 0xff;
    n[10]! ^= (lo >>> 8) & 0xff;
    n[11]! ^= lo & 0xff;
    return n;
  }

  /** One frame, header included (synchronous when the provider is). */
  seal(plaintext: Uint8Array, flags: number): Uint8Array | Promise<Uint8Array> {
    if (plaintext.length > MAX_CHUNK_PLAINTEXT_BYTES) throw new Error('chunk over the frame limit');
    if ((flags & ~KNOWN_FLAGS) !== 0) throw new Error('unknown frame flag');
    const len = plaintext.length + AEAD_TAG_BYTES;
    const header = new Uint8Array([flags, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff]);
    const frame = this.key.sealFrame(this.nextNonce(), header, plaintext);
    return frame instanceof Promise ? frame.then((f) => checkFrame(f, len)) : checkFrame(frame, len);
  }

  /** One frame's plaintext (synchronous when the provider is); SealError auth_failed if it does not open. */
  open(frame: Frame): Uint8Array | Promise<Uint8Array> {
    const seq = this.seq;
    const iv = this.nextNonce();
    const failed = () => new SealError('auth_failed', `frame ${seq} failed authentication`);
    let pt: Uint8Array | Promise<Uint8Array>;
    try {
      pt = this.key.open(iv, frame.header, frame.sealed);
    } catch {
      throw failed();
    }
    return pt instanceof Promise
      ? pt.catch(() => {
          throw failed();
        })
      : pt;
  }
}

function checkFrame(frame: Uint8Array, len: number): Uint8Array {
  if (frame.length !== SEAL_FRAME_HEADER_BYTES + len) throw new Error('unexpected AES-GCM output length');
  return frame;
}

/**
 * Splits a byte stream into frames, whatever the input chunking. Holds at most one incomplete frame
 * (≤ 64 KiB + 20 bytes) beyond the current input; a length outside the limits is refused at once.
 */
export class FrameParser {
  private pending: Uint8Array[] = [];
  private pending_bytes = 0;

  get buffered(): number {
    return this.pending_bytes;
  }

  push(bytes: Uint8Array): void {
    if (bytes.length > 0) {
      this.pending.push(plainView(bytes));
      this.pending_bytes += bytes.length;
    }
  }

  /** Takes exactly n bytes off the front (n ≤ buffered): a view when they lie in one piece, else a copy. */
  take(n: number): Uint8Array {
    const first = this.pending[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.pending.shift();
      else this.pending[0] = first.subarray(n);
      this.pending_bytes -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const p = this.pending[0]!;
      const k = Math.min(p.length, n - at);
      out.set(p.subarray(0, k), at);
      at += k;
      if (k === p.length) this.pending.shift();
      else this.pending[0] = p.subarray(k);
    }
    this.pending_bytes -= n;
    return out;
  }

  /** The first n bytes (n ≤ buffered) without consuming them. */
  peek(n: number): Uint8Array {
    const first = this.pending[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of this.pending) {
      const k = Math.min(p.length, n - at);
      out.set(p.subarray(0, k), at);
      at += k;
      if (at === n) break;
    }
    return out;
  }

  /** The next complete frame, or null until more bytes arrive. */
  next(): Frame | null {
    if (this.pending_bytes < SEAL_FRAME_HEADER_BYTES) return null;
    const h = this.peek(SEAL_FRAME_HEADER_BYTES);
    const flags = h[0]!;
    if ((flags & ~KNOWN_FLAGS) !== 0) throw new SealError('malformed', `unknown frame flags 0x${flags.toString(16)}`);
    const len = (h[1]! << 16) | (h[2]! << 8) | h[3]!;
    if (len < AEAD_TAG_BYTES) throw new SealError('malformed', `frame length ${len} is shorter than its tag`);
    if (len > MAX_FRAME_SEALED_BYTES) {
      throw new SealError('too_large', `frame of ${len} bytes exceeds ${MAX_FRAME_SEALED_BYTES}`);
    }
    if (this.pending_bytes < SEAL_FRAME_HEADER_BYTES + len) return null;
    const header = copyOf(this.take(SEAL_FRAME_HEADER_BYTES));
    return { header, flags, sealed: this.take(len) };
  }
}

export function isFinal(flags: number): boolean {
  return (flags & FLAG_FINAL) !== 0;
}
