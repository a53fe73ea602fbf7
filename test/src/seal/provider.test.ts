// The Node primitives (seal-node.ts: node:crypto HMAC, HKDF, AES-256-GCM) and the WebCrypto ones give the
// same bytes: whatever each side of a sealed exchange runs, they interoperate. Checked by sealing with one
// and opening with the other, requests and responses, and by comparing the KDFs' outputs directly.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import {
  MessageOpener,
  MessageSealer,
  concatBytes,
  generateRecipientKey,
  setSealCrypto,
  webSealCrypto,
  type SealCrypto,
} from '@easyenclave/protocol/seal/index';
import { nodeSealCrypto } from '@easyenclave/protocol/seal-node';
import { equal, flipBit, pattern } from './util.js';

after(() => setSealCrypto(null));
const aad = new TextEncoder().encode('provider');

async function roundTrip(sender: SealCrypto, receiver: SealCrypto, n: number): Promise<void> {
  setSealCrypto(sender);
  const key = await generateRecipientKey();
  const s = await MessageSealer.request(key.publicKey, { aad, meta: pattern(40, 2) });
  const req = concatBytes([...(await s.write(pattern(n, 1))), ...(await s.end(pattern(3, 3)))]);
  setSealCrypto(receiver);
  const o = MessageOpener.request(key, { aad });
  const body = concatBytes(await o.push(req));
  o.end();
  assert.ok(equal(body, concatBytes([pattern(n, 1), pattern(3, 3)])));
  assert.ok(equal(o.meta!, pattern(40, 2)));
  const r = await MessageSealer.response(o.exporter!, { meta: pattern(10, 4) });
  const resp = concatBytes(await r.end(pattern(n, 5)));
  setSealCrypto(sender);
  const ro = MessageOpener.response(s.exporter!);
  assert.ok(equal(concatBytes(await ro.push(resp)), pattern(n, 5)));
  ro.end();
  // and tampering is still caught by the other side's primitives
  setSealCrypto(receiver);
  await assert.rejects(MessageOpener.request(key, { aad }).push(flipBit(req, req.length - 5)), { code: 'auth_failed' });
}

test('WebCrypto seals, node:crypto opens, and the reverse (requests and responses)', async () => {
  for (const n of [0, 100, 70_000]) {
    await roundTrip(webSealCrypto, nodeSealCrypto, n);
    await roundTrip(nodeSealCrypto, webSealCrypto, n);
  }
});

test('the KDFs agree: extract, expand, extract-and-expand; HKDF; AES-GCM', async () => {
  const w = webSealCrypto.hpkeKdf();
  const nd = nodeSealCrypto.hpkeKdf();
  const ab = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
  for (let i = 0; i < 20; i++) {
    const salt = ab(i % 2 ? randomBytes(32) : Buffer.alloc(0));
    const ikm = ab(randomBytes(1 + i * 7));
    const info = ab(randomBytes(i * 5));
    const len = [32, 44, 12, 64, 100][i % 5]!;
    assert.deepEqual(new Uint8Array(await nd.extract(salt, ikm)), new Uint8Array(await w.extract(salt, ikm)));
    const prk = await w.extract(salt, ikm);
    assert.deepEqual(new Uint8Array(await nd.expand(prk, info, len)), new Uint8Array(await w.expand(prk, info, len)));
    const s32 = ab(randomBytes(32));
    assert.deepEqual(
      new Uint8Array(await nd.extractAndExpand(s32, ikm, info, len)),
      new Uint8Array(await w.extractAndExpand(s32, ikm, info, len)),
    );
    // The node KDF keeps the PRK of a (salt buffer, ikm) pair: the same salt buffer with another ikm (or
    // changed in place) must not reuse it.
    const ikm2 = ab(randomBytes(9 + i));
    for (const k of [ikm, ikm2, ikm]) {
      assert.deepEqual(
        new Uint8Array(await nd.extractAndExpand(s32, k, info, len)),
        new Uint8Array(await w.extractAndExpand(s32, k, info, len)),
      );
    }
    new Uint8Array(s32)[0]! ^= 1;
    assert.deepEqual(
      new Uint8Array(await nd.extractAndExpand(s32, ikm, info, len)),
      new Uint8Array(await w.extractAndExpand(s32, ikm, info, len)),
    );
    const u = (x: ArrayBuffer) => new Uint8Array(x);
    assert.deepEqual(
      await nodeSealCrypto.hkdf(u(s32), u(ikm), u(info), len),
      await webSealCrypto.hkdf(u(s32), u(ikm), u(info), len),
    );
  }
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const hdr = randomBytes(4);
  const pt = randomBytes(1000);
  const a = await (await nodeSealCrypto.aesGcm(key)).sealFrame(iv, hdr, pt);
  const b = await (await webSealCrypto.aesGcm(key)).sealFrame(iv, hdr, pt);
  assert.ok(equal(a, b));
  assert.ok(equal(a.subarray(0, 4), hdr));
  assert.ok(equal(await (await nodeSealCrypto.aesGcm(key)).open(iv, hdr, b.subarray(4)), pt));
  assert.ok(equal(await (await webSealCrypto.aesGcm(key)).open(iv, hdr, a.subarray(4)), pt));
  // A flipped bit fails either way (node:crypto throws, WebCrypto rejects).
  const bad = Uint8Array.from(a.subarray(4));
  bad[0]! ^= 1;
  const nk = await nodeSealCrypto.aesGcm(key);
  assert.throws(() => nk.open(iv, hdr, bad));
  await assert.rejects(async () => (await webSealCrypto.aesGcm(key)).open(iv, hdr, bad));
});

test('the node:crypto KEM and @hpke/core KEM agree: encap with one, decap with the other, both ways', async () => {
  const key = await generateRecipientKey();
  const kems = [webSealCrypto.hpkeKem(), nodeSealCrypto.hpkeKem()];
  const pk = await kems[0]!.deserializePublicKey(key.publicKey);
  for (const [a, b] of [kems, [...kems].reverse()]) {
    for (let i = 0; i < 5; i++) {
      const e = await a!.encap({ recipientPublicKey: pk });
      assert.equal(e.enc.byteLength, 32);
      const ss = await b!.decap({ recipientKey: key.keyPair, enc: e.enc });
      assert.deepEqual(new Uint8Array(ss), new Uint8Array(e.sharedSecret));
    }
  }
});

test('both KEMs refuse a low-order enc (all-zero X25519 output), and so does opening a request under either', async () => {
  const key = await generateRecipientKey();
  // u = 0 and u = 1 are small-order points on Curve25519: X25519 with them is all zeros.
  const lowOrder = [new Uint8Array(32), Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0))];
  for (const provider of [webSealCrypto, nodeSealCrypto]) {
    for (const enc of lowOrder) {
      await assert.rejects(provider.hpkeKem().decap({ recipientKey: key.keyPair, enc: enc.buffer }));
      setSealCrypto(provider);
      const s = await MessageSealer.request(key.publicKey, { aad });
      const req = concatBytes(await s.end(pattern(10, 1)));
      req.set(enc, 11 + 32); // the enc follows the common header and the key id
      await assert.rejects(MessageOpener.request(key, { aad }).push(req), { code: 'auth_failed' });
    }
  }
});

test("our HPKE suite (node:crypto KEM and KDF under @hpke/core's key schedule) equals the stock @hpke/core suite, both ways", async () => {
  const stock = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
  const ours = new CipherSuite({ kem: nodeSealCrypto.hpkeKem(), kdf: nodeSealCrypto.hpkeKdf(), aead: new Aes256Gcm() });
  const key = await generateRecipientKey();
  const pk = await stock.kem.deserializePublicKey(key.publicKey);
  const ab = (b: Uint8Array) => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
  for (const [sender, recipient] of [
    [stock, ours],
    [ours, stock],
  ] as const) {
    for (const infoBytes of [0, 33, 300, 33, 2000]) {
      // The same info in both directions and twice each: the node KDF's remembered info_hash is used too.
      const info = ab(Buffer.alloc(infoBytes, infoBytes & 0xff));
      const s = await sender.createSenderContext({ recipientPublicKey: pk, info });
      const r = await recipient.createRecipientContext({ recipientKey: key.keyPair, enc: s.enc, info });
      // The exporter secret: exports of any label and length agree.
      for (const [label, len] of [
        ['ee-seal-v1 request keys', 44],
        ['ee-seal-v1 response', 32],
        ['', 1],
        ['long', 100],
      ] as const) {
        const l = ab(new TextEncoder().encode(label));
        assert.deepEqual(new Uint8Array(await s.export(l, len)), new Uint8Array(await r.export(l, len)));
      }
      // The key and base nonce of the schedule: the context's own AEAD opens across suites, twice (seq 0, 1).
      for (let i = 0; i < 2; i++) {
        const pt = randomBytes(50 + i);
        const aadBytes = ab(randomBytes(7));
        const ct = await s.seal(ab(pt), aadBytes);
        assert.ok(equal(new Uint8Array(await r.open(ct, aadBytes)), pt));
      }
    }
  }
});
