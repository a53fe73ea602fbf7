// Streaming adapters over MessageSealer/MessageOpener. Web streams (browsers, fetch bodies) and async
// iterables (Node streams are async iterable; `Readable.from()` turns one back into a stream). Each holds at
// most one frame in flight, so memory stays bounded whatever the body size; backpressure is the stream's own.
import type { MessageOpener, MessageSealer } from './message.js';

function bytesOf(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  throw new TypeError('sealed streams carry bytes (Uint8Array or ArrayBuffer)');
}

/** Plaintext in, sealed message out (header and meta first, a FINAL frame when the input ends). Every
 *  input chunk is sealed as it arrives, so a streamed response (SSE) is never held back. */
export function sealingStream(sealer: MessageSealer): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      for (const f of await sealer.write(bytesOf(chunk))) controller.enqueue(f);
    },
    async flush(controller) {
      for (const f of await sealer.end()) controller.enqueue(f);
    },
  });
}

/** Sealed message in, authenticated plaintext out; errors the stream on any tampering or truncation. */
export function openingStream(opener: MessageOpener): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      for (const p of await opener.push(bytesOf(chunk))) controller.enqueue(p);
    },
    flush() {
      opener.end();
    },
  });
}

export async function* sealIterable(
  sealer: MessageSealer,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) yield* await sealer.write(bytesOf(chunk));
  yield* await sealer.end();
}

export async function* openIterable(
  opener: MessageOpener,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) yield* await opener.push(bytesOf(chunk));
  opener.end();
}
