// Proof of possession (possession.ts): an Ed25519 signature by the keyset's receipt key over
// "ee-pop-v1" ‖ nonce ‖ session_id ‖ SHA-256(canonical JSON of the keyset). It verifies only for that keyset,
// nonce and session id, and verifyPossession never throws, whatever it is given.
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  canonicalJson,
  generateKeyset,
  newNonce,
  newSessionId,
  POP_DOMAIN,
  POP_MESSAGE_LENGTH,
  popMessage,
  publicKeyset,
  signPossession,
  verifyPossession,
  type Keyset,
} from '@easyenclave/attestation';

const ks = { hpke_public_key: '11'.repeat(32), receipt_public_key: '22'.repeat(32) };
const nonce = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const session = Buffer.from(Array.from({ length: 32 }, (_, i) => 32 + i));

describe('popMessage', () => {
  it('is the written-down layout (known answer, cross-checked in Python)', () => {
    const m = popMessage(nonce, session, ks);
    assert.equal(POP_DOMAIN, 'ee-pop-v1');
    assert.equal(m.length, POP_MESSAGE_LENGTH);
    assert.equal(POP_MESSAGE_LENGTH, 9 + 32 + 32 + 32);
    const digest = createHash('sha256').update(canonicalJson(ks)).digest();
    assert.ok(m.equals(Buffer.concat([Buffer.from('ee-pop-v1'), nonce, session, digest])));
    assert.equal(
      m.toString('hex'),
      '65652d706f702d7631000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f9e5d86c194e67275e4b36b92cbf92a6f7bac3dd2886864f334eef61e31102fea',
    );
  });

  it('takes raw bytes or lowercase hex alike, and refuses anything else', () => {
    assert.ok(popMessage(nonce.toString('hex'), session.toString('hex'), ks).equals(popMessage(nonce, session, ks)));
    for (const bad of [Buffer.alloc(31), Buffer.alloc(33), 'ab'.repeat(31), 'AB'.repeat(32), 'zz'.repeat(32), '']) {
      assert.throws(() => popMessage(bad, session, ks), /nonce must be 32 bytes/);
      assert.throws(() => popMessage(nonce, bad, ks), /session_id must be 32 bytes/);
    }
    assert.throws(() => popMessage(nonce, session, { ...ks, hpke_public_key: 'x' }), /invalid keyset/);
  });
});

describe('signPossession / verifyPossession', () => {
  const keys = generateKeyset();
  const keyset = publicKeyset(keys);
  const n = newNonce();
  const sid = newSessionId();
  const sig = signPossession(keys, n, sid);

  it('a signature by the receipt key verifies, for exactly that keyset, nonce and session id', () => {
    assert.match(sid, /^[0-9a-f]{64}$/);
    assert.match(sig, /^[0-9a-f]{128}$/);
    assert.equal(verifyPossession(keyset, n, sid, sig), true);
    assert.equal(verifyPossession(keyset, n.toString('hex'), Buffer.from(sid, 'hex'), sig), true);
    // It is a plain Ed25519 signature by the receipt key over popMessage (anyone can check it independently).
    const pub = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(keyset.receipt_public_key, 'hex').toString('base64url') },
      format: 'jwk',
    });
    assert.ok(verify(null, popMessage(n, sid, keyset), pub, Buffer.from(sig, 'hex')));

    assert.equal(verifyPossession(keyset, newNonce(), sid, sig), false, 'another nonce');
    assert.equal(verifyPossession(keyset, n, newSessionId(), sig), false, 'another session id');
    const other = publicKeyset(generateKeyset());
    assert.equal(verifyPossession(other, n, sid, sig), false, 'another keyset');
    // The HPKE key is bound too: the same receipt key with another HPKE key is another keyset.
    assert.equal(verifyPossession({ ...keyset, hpke_public_key: other.hpke_public_key }, n, sid, sig), false);
    // Signed by the wrong key of the right keyset: impossible to make with the HPKE key, so try another signer.
    assert.equal(verifyPossession(keyset, n, sid, signPossession(generateKeyset(), n, sid)), false, 'another signer');
    const flipped = Buffer.from(sig, 'hex');
    flipped[10] = flipped[10]! ^ 1;
    assert.equal(verifyPossession(keyset, n, sid, flipped.toString('hex')), false, 'a flipped bit');
  });

  it('never throws, and is false, for malformed input (property)', () => {
    const call = (k: unknown, a: unknown, b: unknown, s: unknown): boolean =>
      verifyPossession(k as Keyset, a as Buffer, b as string, s as string);
    for (const s of [undefined, null, 1, '', sig.toUpperCase(), sig.slice(2), `${sig}00`, 'zz'.repeat(64), {}])
      assert.equal(call(keyset, n, sid, s), false, String(s));
    for (const k of [undefined, null, {}, 'x', { ...keyset, x: 1 }, { ...keyset, receipt_public_key: '00'.repeat(32) }])
      assert.equal(call(k, n, sid, sig), false, JSON.stringify(k));
    for (const x of [undefined, null, 7, Buffer.alloc(31), 'AB'.repeat(32), [1, 2]]) {
      assert.equal(call(keyset, x, sid, sig), false);
      assert.equal(call(keyset, n, x, sig), false);
    }
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), fc.anything(), (k, a, b, s) => {
        assert.equal(call(k, a, b, s), false);
      }),
    );
  });
});
