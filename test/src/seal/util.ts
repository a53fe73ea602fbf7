// Helpers of the sealing tests: split a sealed message into its header and frames (to drop, reorder,
// duplicate or flip them), and open a message from a list of chunks, returning the error code if any.
import {
  MessageOpener,
  REQUEST_HEADER_BYTES,
  SEAL_FRAME_HEADER_BYTES,
  SealError,
  concatBytes,
  type OpenOptions,
  type RecipientKey,
} from '@easyenclave/protocol/seal/index';

export const te = new TextEncoder();

export interface Split {
  header: Uint8Array;
  frames: Uint8Array[];
}

export function splitMessage(sealed: Uint8Array, header_bytes = REQUEST_HEADER_BYTES): Split {
  const header = sealed.subarray(0, header_bytes);
  const frames: Uint8Array[] = [];
  let at = header_bytes;
  while (at < sealed.length) {
    const len = (sealed[at + 1]! << 16) | (sealed[at + 2]! << 8) | sealed[at + 3]!;
    frames.push(sealed.subarray(at, at + SEAL_FRAME_HEADER_BYTES + len));
    at += SEAL_FRAME_HEADER_BYTES + len;
  }
  return { header, frames };
}

export const join = (s: Split): Uint8Array => concatBytes([s.header, ...s.frames]);

/** Opens `chunks` in order; the body, or the SealError code it failed with. */
export async function tryOpen(
  key: RecipientKey,
  chunks: Uint8Array[],
  o: OpenOptions = {},
): Promise<{ body: Uint8Array; meta: Uint8Array | null } | { code: string; message: string }> {
  const opener = MessageOpener.request(key, o);
  const out: Uint8Array[] = [];
  try {
    for (const c of chunks) out.push(...(await opener.push(c)));
    opener.end();
    return { body: concatBytes(out), meta: opener.meta };
  } catch (err) {
    if (err instanceof SealError) return { code: err.code, message: err.message };
    throw err;
  }
}

export function flipBit(b: Uint8Array, byte: number, bit = 0): Uint8Array {
  const c = b.slice();
  c[byte]! ^= 1 << bit;
  return c;
}

/** Deterministic pseudo-random bytes. */
export function pattern(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}
