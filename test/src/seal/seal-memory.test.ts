// A 1 GiB body sealed and opened as a stream in bounded memory: the sealer and opener hold at most a frame
// each, so resident memory must not grow with the body. Memory, not time, is asserted.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'node:test';
import {
  MessageOpener,
  MessageSealer,
  concatBytes,
  generateRecipientKey,
  openIterable,
  sealingStream,
} from '@easyenclave/protocol/seal/index';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const PIECE_BYTES = 256 * 1024;
/** Growth allowed over the baseline: a few frames in flight, V8's young generation, allocator slack. */
const MAX_GROWTH_BYTES = 64 * MiB;
/** A full GC this often, so what is measured is what the pipeline holds, not garbage V8 has not collected
 *  yet (without it the peak depends on when V8 chose to collect, not on the code under test). */
const GC_EVERY_BYTES = 64 * MiB;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('1 GiB streams through seal (web stream) and open (async iterable) with bounded memory', async () => {
  const key = await generateRecipientKey();
  const piece = new Uint8Array(PIECE_BYTES);
  for (let i = 0; i < piece.length; i++) piece[i] = (i * 31) & 0xff;
  let produced = 0;
  const source = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (produced >= GiB) return c.close();
        piece[0] = (produced / PIECE_BYTES) & 0xff; // each piece differs, so order matters in the hash
        produced += PIECE_BYTES;
        c.enqueue(piece.slice());
      },
    },
    { highWaterMark: 1 },
  );
  const expected = createHash('sha256');
  for (let p = 0; p < GiB / PIECE_BYTES; p++) {
    piece[0] = p & 0xff;
    expected.update(piece);
  }

  // Warm up first (WebCrypto's worker threads, OpenSSL's contexts, JIT), so the baseline holds them.
  const warm = await MessageSealer.request(key.publicKey);
  const warmOpener = MessageOpener.request(key);
  for (let i = 0; i < 64; i++) await warmOpener.push(concatBytes(await warm.write(piece)));
  gc();
  const baseline = process.memoryUsage().rss;
  const live = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  const baseline_live = live();
  let peak = baseline;
  let peak_live = baseline_live;
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage().rss);
    peak_live = Math.max(peak_live, live());
  };
  const timer = setInterval(sample, 50);

  const sealer = await MessageSealer.request(key.publicKey);
  const sealed = source.pipeThrough(sealingStream(sealer));
  const got = createHash('sha256');
  let n = 0;
  for await (const p of openIterable(MessageOpener.request(key), sealed as unknown as AsyncIterable<Uint8Array>)) {
    got.update(p);
    n += p.length;
    if (n % GC_EVERY_BYTES === 0) {
      sample();
      gc();
    }
  }
  clearInterval(timer);
  sample();
  assert.equal(n, GiB);
  assert.equal(got.digest('hex'), expected.digest('hex'));
  const growth = peak - baseline;
  const growth_live = peak_live - baseline_live;
  console.log(
    `# 1 GiB sealed and opened: RSS baseline ${(baseline / MiB).toFixed(0)} MiB, peak growth ${(growth / MiB).toFixed(1)} MiB; ` +
      `JS heap + array buffers peak growth ${(growth_live / MiB).toFixed(1)} MiB`,
  );
  assert.ok(growth_live < MAX_GROWTH_BYTES, `heap and buffers grew by ${(growth_live / MiB).toFixed(1)} MiB`);
  assert.ok(
    growth < MAX_GROWTH_BYTES,
    `RSS grew by ${(growth / MiB).toFixed(1)} MiB (bound ${MAX_GROWTH_BYTES / MiB} MiB)`,
  );
});
