// Property tests of the sealing module: over random plaintexts, random write chunkings (how the sender's
// data arrives) and random read chunkings (how the receiver's network delivers it), a message opens to
// exactly its plaintext; and any single changed byte, any dropped or moved frame makes it fail, never
// yielding a different plaintext.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MessageSealer, concatBytes, generateRecipientKey } from '@easyenclave/protocol/seal/index';
import { equal, join, splitMessage, tryOpen } from './util.js';

const key = await generateRecipientKey();
const aad = new TextEncoder().encode('property');

/** Cuts `total` bytes into pieces at the given fractions. */
function cuts(total: number, fractions: number[]): number[] {
  const points = [...new Set(fractions.map((f) => Math.floor(f * total)))].sort((a, b) => a - b);
  const out: number[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(p - prev);
    prev = p;
  }
  out.push(total - prev);
  return out;
}

function pieces(b: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const n of sizes) {
    out.push(b.subarray(at, at + n));
    at += n;
  }
  return out;
}

async function sealWith(pt: Uint8Array, writes: number[], meta: Uint8Array | null): Promise<Uint8Array> {
  const s = await MessageSealer.request(key.publicKey, { aad, meta });
  const out: Uint8Array[] = [];
  const ps = pieces(pt, writes);
  for (const p of ps.slice(0, -1)) out.push(...(await s.write(p)));
  out.push(...(await s.end(ps.at(-1))));
  return concatBytes(out);
}

const plaintext = fc.oneof(
  fc.uint8Array({ maxLength: 2_000 }),
  fc.integer({ min: 60_000, max: 200_000 }).map((n) => new Uint8Array(n).map((_, i) => (i * 7) & 0xff)),
);
const fractions = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 });
const meta = fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null });

test('any plaintext, any write chunking, any read chunking: the plaintext and meta come back exactly', async () => {
  await fc.assert(
    fc.asyncProperty(plaintext, fractions, fractions, meta, async (pt, w, r, m) => {
      const sealed = await sealWith(pt, cuts(pt.length, w), m);
      const got = await tryOpen(key, pieces(sealed, cuts(sealed.length, r)), { aad });
      assert.ok('body' in got, 'code' in got ? got.message : '');
      assert.ok(equal(got.body, pt));
      assert.deepEqual(got.meta === null ? null : [...got.meta], m === null ? null : [...m]);
    }),
    { numRuns: 60 },
  );
});

test('any single changed byte is detected', async () => {
  await fc.assert(
    fc.asyncProperty(
      plaintext,
      fractions,
      fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      fc.integer({ min: 1, max: 255 }),
      async (pt, w, where, xor) => {
        const sealed = await sealWith(pt, cuts(pt.length, w), null);
        const bad = sealed.slice();
        bad[Math.floor(where * sealed.length)]! ^= xor;
        const got = await tryOpen(key, [bad], { aad });
        assert.ok('code' in got, 'a tampered message opened');
      },
    ),
    { numRuns: 80 },
  );
});

test('dropping, duplicating or moving any frame is detected', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 300_000 }),
      fc.nat(),
      fc.nat(),
      fc.constantFrom('drop', 'duplicate', 'move'),
      async (n, i0, j0, op) => {
        const pt = new Uint8Array(n).map((_, i) => i & 0xff);
        const s = splitMessage(await sealWith(pt, [n >> 1], null));
        const i = i0 % s.frames.length;
        const j = j0 % s.frames.length;
        if (op === 'drop') s.frames.splice(i, 1);
        else if (op === 'duplicate') s.frames.splice(j, 0, s.frames[i]!);
        else {
          if (i === j) return; // not a change
          const [f] = s.frames.splice(i, 1);
          s.frames.splice(j, 0, f!);
        }
        const got = await tryOpen(key, [join(s)], { aad });
        assert.ok('code' in got, `${op} ${i} ${j} of ${s.frames.length} opened`);
      },
    ),
    { numRuns: 80 },
  );
});
