// The sealing module (packages/protocol/src/seal): HPKE-sealed messages with chunked AEAD framing. Each
// kind of tampering (flipped bit, dropped, reordered, duplicated frame, truncation, trailing bytes, wrong key,
// wrong additional data) must be detected with its own clear error, and never yield plaintext.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  COMMON_HEADER_BYTES,
  KEY_ID_BYTES,
  MAX_CHUNK_PLAINTEXT_BYTES,
  MessageOpener,
  MessageSealer,
  REQUEST_HEADER_BYTES,
  RESPONSE_HEADER_BYTES,
  type SealError,
  concatBytes,
  fromBase64Url,
  generateRecipientKey,
  keyIdHexOf,
  open,
  openIterable,
  openMessage,
  openingStream,
  recipientKeyFromJwk,
  seal,
  sealIterable,
  sealingStream,
  toBase64Url,
  toHex,
  type Exporter,
} from '@easyenclave/protocol/seal/index';
import { generateKeyPairSync } from 'node:crypto';
import { equal, flipBit, join, pattern, splitMessage, te, tryOpen } from './util.js';

const key = await generateRecipientKey();
const other = await generateRecipientKey();
const aad = te.encode('POST /v1/chat');

async function sealChunks(plaintext: Uint8Array, writes: number[], meta?: Uint8Array): Promise<Uint8Array> {
  const s = await MessageSealer.request(key.publicKey, { aad, meta: meta ?? null });
  const out: Uint8Array[] = [];
  let at = 0;
  for (const n of writes) {
    out.push(...(await s.write(plaintext.subarray(at, at + n))));
    at += n;
  }
  out.push(...(await s.end(plaintext.subarray(at))));
  return concatBytes(out);
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream as unknown as AsyncIterable<Uint8Array>) parts.push(c);
  return concatBytes(parts);
}

describe('round trip', () => {
  for (const n of [
    0,
    1,
    1000,
    MAX_CHUNK_PLAINTEXT_BYTES - 1,
    MAX_CHUNK_PLAINTEXT_BYTES,
    MAX_CHUNK_PLAINTEXT_BYTES + 1,
    1 << 20,
  ]) {
    test(`one-shot seal/open of ${n} bytes, with additional data and meta`, async () => {
      const pt = pattern(n, n + 7);
      const sealed = await seal(key.publicKey, pt, aad, te.encode('{"m":1}'));
      const frames = Math.max(1, Math.ceil(n / MAX_CHUNK_PLAINTEXT_BYTES)) + 1; // + the meta frame
      assert.equal(
        sealed.length,
        REQUEST_HEADER_BYTES + 7 + n + frames * 20,
        'header, meta, plaintext, 20 bytes a frame',
      );
      const { body, meta } = await openMessage(key, sealed, aad);
      assert.ok(equal(body, pt));
      assert.equal(new TextDecoder().decode(meta!), '{"m":1}');
    });
  }

  test('the public key may be given as hex; the key id is SHA-256 of the raw key', async () => {
    const sealed = await seal(toHex(key.publicKey), te.encode('hi'));
    assert.equal(toHex(sealed.subarray(COMMON_HEADER_BYTES, COMMON_HEADER_BYTES + KEY_ID_BYTES)), key.keyIdHex);
    assert.equal(await keyIdHexOf(key.publicKey), key.keyIdHex);
    assert.equal(new TextDecoder().decode(await open(key, sealed)), 'hi');
  });

  test('a Node KeyObject (the agent keyset) opens what was sealed to its public key', async () => {
    const kp = generateKeyPairSync('x25519');
    const recipient = await recipientKeyFromJwk(kp.privateKey.export({ format: 'jwk' }));
    const raw = Buffer.from(kp.publicKey.export({ format: 'jwk' }).x!, 'base64url');
    assert.equal(recipient.keyIdHex, await keyIdHexOf(new Uint8Array(raw)));
    const sealed = await seal(new Uint8Array(raw), te.encode('to the agent'));
    assert.equal(new TextDecoder().decode(await open(recipient, sealed)), 'to the agent');
  });

  test('any write chunking and any read chunking give the same plaintext', async () => {
    const pt = pattern(300_000, 3);
    const sealed = await sealChunks(pt, [1, 70_000, 0, 5, 100_000]);
    for (const step of [1, 3, 4, 77, 65_556, 1 << 20]) {
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < sealed.length; i += step) chunks.push(sealed.subarray(i, i + step));
      const r = await tryOpen(key, chunks, { aad });
      assert.ok('body' in r && equal(r.body, pt), `read step ${step}`);
    }
  });

  test('Node Buffers in (views into larger, pooled memory) open like plain Uint8Arrays', async () => {
    // Buffer#slice is a view, not a copy: the opener must never rely on it (the agent's tunnel gives Buffers).
    const pt = pattern(5_000, 4);
    const sealed = await seal(key.publicKey, pt, aad);
    const pool = Buffer.alloc(sealed.length + 100, 0xee);
    Buffer.from(sealed).copy(pool, 37);
    const view = pool.subarray(37, 37 + sealed.length);
    const r = await tryOpen(key, [view.subarray(0, 50), view.subarray(50)], { aad });
    assert.ok('body' in r && equal(r.body, pt), 'code' in r ? r.message : '');
    assert.ok(equal(await open(key, Buffer.from(sealed), aad), pt));
  });

  test('web streams: sealingStream | openingStream', async () => {
    const pt = pattern(200_000, 9);
    const src = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < pt.length; i += 30_000) c.enqueue(pt.slice(i, i + 30_000));
        c.close();
      },
    });
    const sealer = await MessageSealer.request(key.publicKey, { aad });
    const opener = MessageOpener.request(key, { aad });
    const out = await collect(src.pipeThrough(sealingStream(sealer)).pipeThrough(openingStream(opener)));
    assert.ok(equal(out, pt));
    assert.ok(opener.finished);
  });

  test('async iterables: sealIterable | openIterable', async () => {
    const pt = pattern(150_000, 11);
    const src = (async function* () {
      for (let i = 0; i < pt.length; i += 4096) yield pt.slice(i, i + 4096);
    })();
    const sealer = await MessageSealer.request(key.publicKey);
    const parts: Uint8Array[] = [];
    for await (const p of openIterable(MessageOpener.request(key), sealIterable(sealer, src))) parts.push(p);
    assert.ok(equal(concatBytes(parts), pt));
  });

  test('an opening stream errors on a truncated message instead of ending cleanly', async () => {
    const { header, frames } = splitMessage(await sealChunks(pattern(100_000), [50_000]));
    const cut = concatBytes([header, ...frames.slice(0, -1)]);
    const src = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(cut);
        c.close();
      },
    });
    await assert.rejects(collect(src.pipeThrough(openingStream(MessageOpener.request(key, { aad })))), {
      name: 'SealError',
      code: 'truncated',
    });
  });
});

describe('tampering is detected with a clear error', () => {
  const pt = pattern(200_000, 5);
  let sealed: Uint8Array;
  test('setup', async () => {
    sealed = await sealChunks(pt, [65_536, 65_536, 60_000]); // frames: 3 data + FINAL
    assert.equal(splitMessage(sealed).frames.length, 4);
  });

  const expectCode = async (bytes: Uint8Array | Uint8Array[], code: string, o = { aad }) => {
    const r = await tryOpen(key, Array.isArray(bytes) ? bytes : [bytes], o);
    assert.ok('code' in r, 'must not open');
    assert.equal(r.code, code, r.message);
    return r.message;
  };

  test("a flipped bit in any frame's ciphertext or tag", async () => {
    const { frames } = splitMessage(sealed);
    let at = REQUEST_HEADER_BYTES;
    for (let i = 0; i < frames.length; i++) {
      const m = await expectCode(flipBit(sealed, at + 4 + 7, 3), 'auth_failed');
      assert.match(m, new RegExp(`frame ${i} failed authentication`));
      await expectCode(flipBit(sealed, at + frames[i]!.length - 1, 7), 'auth_failed'); // the tag
      at += frames[i]!.length;
    }
  });

  test('a flipped bit in the header: magic, version, kind, suite, key id, enc', async () => {
    await expectCode(flipBit(sealed, 0), 'malformed');
    await expectCode(flipBit(sealed, 3), 'unsupported');
    await expectCode(flipBit(sealed, 4), 'malformed');
    await expectCode(flipBit(sealed, 6), 'unsupported');
    await expectCode(flipBit(sealed, 12), 'wrong_key');
    await expectCode(flipBit(sealed, COMMON_HEADER_BYTES + KEY_ID_BYTES + 5), 'auth_failed');
  });

  test('a flipped FINAL flag, a set META flag, an unknown flag, a changed length', async () => {
    const s = splitMessage(sealed);
    const first = REQUEST_HEADER_BYTES;
    await expectCode(flipBit(sealed, first, 0), 'auth_failed'); // a data frame marked FINAL
    const lastAt = sealed.length - s.frames.at(-1)!.length;
    await expectCode(flipBit(sealed, lastAt, 0), 'auth_failed'); // FINAL cleared
    await expectCode(flipBit(sealed, first, 1), 'auth_failed'); // META on frame 0
    await expectCode(flipBit(sealed, first + s.frames[0]!.length, 1), 'malformed'); // META on frame 1
    await expectCode(flipBit(sealed, first, 5), 'malformed');
    await expectCode(flipBit(sealed, first + 1, 0), 'auth_failed'); // a shorter length: parsing drifts
    await expectCode(flipBit(sealed, first + 1, 7), 'too_large'); // 8 MiB frame: refused before buffering
  });

  test('a dropped frame', async () => {
    for (const i of [0, 1, 2]) {
      const s = splitMessage(sealed);
      s.frames.splice(i, 1);
      await expectCode(join(s), 'auth_failed');
    }
  });

  test('reordered frames', async () => {
    const s = splitMessage(sealed);
    [s.frames[0], s.frames[1]] = [s.frames[1]!, s.frames[0]!];
    await expectCode(join(s), 'auth_failed');
    const t = splitMessage(sealed);
    [t.frames[2], t.frames[3]] = [t.frames[3]!, t.frames[2]!]; // FINAL moved forward
    await expectCode(join(t), 'auth_failed');
  });

  test('a replayed (duplicated) frame', async () => {
    for (const i of [0, 2]) {
      const s = splitMessage(sealed);
      s.frames.splice(i + 1, 0, s.frames[i]!);
      await expectCode(join(s), 'auth_failed');
    }
  });

  test('a frame replayed from another message under the same key', async () => {
    const a = splitMessage(sealed);
    const b = splitMessage(await sealChunks(pt, [65_536, 65_536, 60_000]));
    a.frames[1] = b.frames[1]!;
    await expectCode(join(a), 'auth_failed');
  });

  test('a truncated stream: no FINAL frame, cut inside a frame, cut inside the header', async () => {
    const s = splitMessage(sealed);
    const m = await expectCode(concatBytes([s.header, ...s.frames.slice(0, 3)]), 'truncated');
    assert.match(m, /without its final frame/);
    await expectCode(sealed.subarray(0, sealed.length - 1), 'truncated');
    await expectCode(sealed.subarray(0, 40), 'truncated');
  });

  test('bytes after the FINAL frame', async () => {
    await expectCode(concatBytes([sealed, new Uint8Array([0])]), 'trailing_data');
    await expectCode([sealed, new Uint8Array([1, 2])], 'trailing_data');
  });

  test('the wrong key is refused before any decryption, naming both key ids', async () => {
    const r = await tryOpen(other, [sealed], { aad });
    assert.ok('code' in r);
    assert.equal(r.code, 'wrong_key');
    assert.ok(r.message.includes(key.keyIdHex) && r.message.includes(other.keyIdHex));
  });

  test('the wrong additional data', async () => {
    await expectCode(sealed, 'auth_failed', { aad: te.encode('POST /v1/other') });
    await expectCode(sealed, 'auth_failed', { aad: new Uint8Array(0) });
  });

  test('a plaintext body is refused at its first bytes', async () => {
    await expectCode(te.encode('{"hello":'), 'malformed');
  });

  test('max_body_bytes bounds the plaintext', async () => {
    const r = await tryOpen(key, [sealed], { aad, max_body_bytes: 100_000 });
    assert.ok('code' in r && r.code === 'too_large');
  });

  test('a sealer refuses to overlap calls or write after the end', async () => {
    const s = await MessageSealer.request(key.publicKey);
    const p = s.write(pattern(10));
    await assert.rejects(s.write(pattern(10)), /must not overlap/);
    await p;
    await s.end();
    await assert.rejects(s.write(pattern(1)), /after the end/);
  });
});

describe('responses are sealed under a key exported from the request', () => {
  async function exchange(): Promise<{ client: Exporter; server: Exporter }> {
    const s = await MessageSealer.request(key.publicKey, { aad });
    const bytes = concatBytes(await s.end(te.encode('request')));
    const o = MessageOpener.request(key, { aad });
    await o.push(bytes);
    o.end();
    return { client: s.exporter!, server: o.exporter! };
  }

  test('the requester opens the response (meta and body); header is 43 bytes', async () => {
    const { client, server } = await exchange();
    const r = await MessageSealer.response(server, { meta: te.encode('{"status":200}') });
    const bytes = concatBytes([...(await r.start()), ...(await r.write(pattern(70_000))), ...(await r.end())]);
    assert.equal(bytes[4], 2);
    const o = MessageOpener.response(client);
    const body = concatBytes(
      await o
        .push(bytes.subarray(0, RESPONSE_HEADER_BYTES + 3))
        .then(async (a) => [...a, ...(await o.push(bytes.subarray(RESPONSE_HEADER_BYTES + 3)))]),
    );
    o.end();
    assert.ok(equal(body, pattern(70_000)));
    assert.equal(new TextDecoder().decode(o.meta!), '{"status":200}');
  });

  test('a response cannot be swapped onto another request, nor tampered with', async () => {
    const a = await exchange();
    const b = await exchange();
    const r = await MessageSealer.response(a.server);
    const bytes = concatBytes(await r.end(te.encode('for a')));
    const wrong = MessageOpener.response(b.client);
    await assert.rejects(wrong.push(bytes), (e: SealError) => e.code === 'auth_failed');
    const flipped = MessageOpener.response(a.client);
    await assert.rejects(flipped.push(flipBit(bytes, 20)), (e: SealError) => e.code === 'auth_failed'); // response nonce
    const right = MessageOpener.response(a.client);
    assert.equal(new TextDecoder().decode(concatBytes(await right.push(bytes))), 'for a');
  });

  test('a request message is not accepted as a response, nor the reverse', async () => {
    const { client, server } = await exchange();
    const req = await seal(key.publicKey, te.encode('x'));
    await assert.rejects(MessageOpener.response(client).push(req), (e: SealError) => e.code === 'malformed');
    const resp = concatBytes(await (await MessageSealer.response(server)).end(te.encode('y')));
    await assert.rejects(MessageOpener.request(key).push(resp), (e: SealError) => e.code === 'malformed');
  });
});

describe('base64url', () => {
  test('round trip and strictness', () => {
    for (let n = 0; n < 40; n++) {
      const b = pattern(n, n + 1);
      const s = toBase64Url(b);
      assert.equal(s, Buffer.from(b).toString('base64url'));
      assert.ok(equal(fromBase64Url(s), b));
    }
    // wrong length, padding, another alphabet, non-zero spare bits (no canonical spelling), junk
    for (const bad of ['a', 'ab=', 'a+b/', 'AB', 'AAA$']) assert.throws(() => fromBase64Url(bad), bad);
    assert.deepEqual([...fromBase64Url('_w')], [0xff]);
  });
});
