import { createHash, diffieHellman, createPublicKey, sign, verify } from 'node:crypto';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  canonicalJson,
  computeReportData,
  generateKeyset,
  keysetDigest,
  newNonce,
  parseKeyset,
  parseNonceHex,
  publicKeyset,
  REPORT_DATA_DOMAINS,
  reportDataMatches,
} from '@easyenclave/attestation';
import type { Keyset } from '@easyenclave/attestation';

const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const keysetArb: fc.Arbitrary<Keyset> = fc.record({ hpke_public_key: hex32, receipt_public_key: hex32 });
const T = REPORT_DATA_DOMAINS.tunnel;
const nonceArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));

/** Rebuilds a JSON value with every object's keys in a seeded random order. */
function shuffleKeys(value: unknown, seed: number): unknown {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v !== 'object' || v === null) return v;
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      Object.defineProperty(out, k, {
        value: walk((v as Record<string, unknown>)[k]),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  };
  return walk(value);
}

describe('canonicalJson', () => {
  it('sorts keys recursively and has no whitespace', () => {
    const v = { b: 1, a: { d: [1, { z: 1, y: 'two' }], c: 'x' }, e: null, f: true };
    assert.equal(canonicalJson(v), '{"a":{"c":"x","d":[1,{"y":"two","z":1}]},"b":1,"e":null,"f":true}');
  });

  it('is key-order independent (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (v, seed) => {
        assert.equal(canonicalJson(shuffleKeys(v, seed)), canonicalJson(v));
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips to the same data as JSON.stringify (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        assert.deepEqual(JSON.parse(canonicalJson(v)), JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses values JSON would silently change', () => {
    for (const bad of [
      undefined,
      [undefined],
      NaN,
      Infinity,
      1n,
      () => 1,
      new Date(0),
      Buffer.alloc(1),
      { a: Symbol('x') },
    ]) {
      assert.throws(() => canonicalJson(bad), /canonicalJson/);
    }
    assert.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
  });
});

describe('keyset', () => {
  it('generates raw 32-byte public keys that match the private keys', () => {
    const a = generateKeyset();
    const b = generateKeyset();
    const ka = publicKeyset(a);
    const kb = publicKeyset(b);
    assert.match(ka.hpke_public_key, /^[0-9a-f]{64}$/);
    assert.match(ka.receipt_public_key, /^[0-9a-f]{64}$/);
    assert.notDeepEqual(ka, kb);
    assert.deepEqual(parseKeyset(ka), ka);
    // The exported raw X25519 key is the one the private key agrees with.
    const raw = (h: string) =>
      createPublicKey({
        key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(h, 'hex').toString('base64url') },
        format: 'jwk',
      });
    const ab = diffieHellman({ privateKey: a.hpke.privateKey, publicKey: raw(kb.hpke_public_key) });
    const ba = diffieHellman({ privateKey: b.hpke.privateKey, publicKey: raw(ka.hpke_public_key) });
    assert.ok(ab.equals(ba));
    // And the raw Ed25519 key verifies receipts signed by the private key.
    const edPub = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(ka.receipt_public_key, 'hex').toString('base64url') },
      format: 'jwk',
    });
    const msg = Buffer.from('receipt');
    assert.ok(verify(null, msg, edPub, sign(null, msg, a.receipt.privateKey)));
  });

  it('never serialises private keys', () => {
    const keys = generateKeyset();
    assert.deepEqual(JSON.parse(JSON.stringify(keys)), publicKeyset(keys));
  });

  it('parseKeyset rejects anything but exactly two lowercase 64-hex fields', () => {
    const good = { hpke_public_key: 'ab'.repeat(32), receipt_public_key: 'cd'.repeat(32) };
    for (const bad of [
      null,
      'x',
      [],
      { hpke_public_key: good.hpke_public_key },
      { ...good, hpke_public_key: 'AB'.repeat(32) },
      { ...good, receipt_public_key: 'cd'.repeat(31) },
      { ...good, receipt_public_key: 'zz'.repeat(32) },
      { ...good, extra: 1 },
    ]) {
      assert.throws(() => parseKeyset(bad), /^Error: invalid keyset: /);
    }
  });

  it('keysetDigest is SHA-256 of the canonical JSON', () => {
    const ks = { receipt_public_key: '22'.repeat(32), hpke_public_key: '11'.repeat(32) };
    const json = `{"hpke_public_key":"${'11'.repeat(32)}","receipt_public_key":"${'22'.repeat(32)}"}`;
    assert.ok(keysetDigest(ks).equals(createHash('sha256').update(json).digest()));
  });
});

describe('report_data', () => {
  const ks = { hpke_public_key: '11'.repeat(32), receipt_public_key: '22'.repeat(32) };
  const nonce = Buffer.from(Array.from({ length: 32 }, (_, i) => i));

  it('matches the written-down scheme in the tunnel domain (known answer, cross-checked in Python)', () => {
    const expected = createHash('sha512')
      .update('ee-tunnel-v1')
      .update(nonce)
      .update(createHash('sha256').update(canonicalJson(ks)).digest())
      .digest();
    const rd = computeReportData(T, nonce, ks);
    assert.ok(rd.equals(expected));
    assert.equal(
      rd.toString('hex'),
      'c952caae0814fe5abfafb53d3b299ccdd7eb69ad2e57b4565e739cce187a6b52e68383ff181d232c79edea1daf0ec044c3cd9238ed48309cbc1eafc42ef9d8aa',
    );
  });

  it('is 64 bytes and deterministic (property)', () => {
    fc.assert(
      fc.property(nonceArb, keysetArb, (n, k) => {
        const rd = computeReportData(T, n, k);
        assert.equal(rd.length, 64);
        assert.ok(rd.equals(computeReportData(T, Buffer.from(n), { ...k })));
      }),
    );
  });

  it('differs for any different nonce (property)', () => {
    fc.assert(
      fc.property(nonceArb, nonceArb, keysetArb, (n1, n2, k) => {
        fc.pre(!n1.equals(n2));
        assert.ok(!reportDataMatches(computeReportData(T, n1, k), computeReportData(T, n2, k)));
      }),
    );
  });

  it('differs for any different keyset (property)', () => {
    fc.assert(
      fc.property(nonceArb, keysetArb, keysetArb, (n, k1, k2) => {
        fc.pre(canonicalJson(k1) !== canonicalJson(k2));
        assert.ok(!reportDataMatches(computeReportData(T, n, k1), computeReportData(T, n, k2)));
      }),
    );
  });

  it('binds the two keys to their roles (swapping them changes report_data)', () => {
    const swapped = { hpke_public_key: ks.receipt_public_key, receipt_public_key: ks.hpke_public_key };
    assert.ok(!reportDataMatches(computeReportData(T, nonce, ks), computeReportData(T, nonce, swapped)));
  });

  it('rejects a nonce that is not 32 bytes and an invalid keyset', () => {
    assert.throws(() => computeReportData(T, Buffer.alloc(31), ks), /nonce must be 32 bytes/);
    assert.throws(() => computeReportData(T, Buffer.alloc(33), ks), /nonce must be 32 bytes/);
    assert.throws(() => computeReportData(T, nonce, { ...ks, hpke_public_key: 'x' }), /invalid keyset/);
  });

  it('reportDataMatches is length-checked', () => {
    const rd = computeReportData(T, nonce, ks);
    assert.equal(reportDataMatches(rd, Buffer.from(rd)), true);
    assert.equal(reportDataMatches(rd, rd.subarray(0, 63)), false);
    assert.equal(reportDataMatches(rd, Buffer.concat([rd, Buffer.alloc(1)])), false);
    assert.equal(reportDataMatches(Buffer.alloc(0), Buffer.alloc(0)), false);
    const flipped = Buffer.from(rd);
    flipped[63] = (flipped[63] as number) ^ 1;
    assert.equal(reportDataMatches(rd, flipped), false);
  });
});

describe('nonces', () => {
  it('newNonce gives 32 fresh random bytes', () => {
    const a = newNonce();
    assert.equal(a.length, 32);
    assert.ok(!a.equals(newNonce()));
  });

  it('parseNonceHex accepts exactly 64 hex characters (property)', () => {
    fc.assert(
      fc.property(nonceArb, fc.boolean(), (n, upper) => {
        const s = n.toString('hex');
        assert.ok(parseNonceHex(upper ? s.toUpperCase() : s).equals(n));
      }),
    );
  });

  it('parseNonceHex rejects everything else', () => {
    const ok = 'ab'.repeat(32);
    for (const bad of [
      '',
      ok.slice(1),
      `${ok}0`,
      `${ok.slice(2)}zz`,
      ` ${ok.slice(1)}`,
      `0x${ok.slice(2)}`,
      `${ok.slice(1)}\n`,
    ]) {
      assert.throws(() => parseNonceHex(bad), /nonce must be exactly 64 hex characters/);
    }
    assert.throws(() => parseNonceHex(42 as unknown as string), /nonce must be exactly 64 hex characters/);
  });
});
