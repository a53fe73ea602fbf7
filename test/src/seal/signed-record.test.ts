// Signed records: Ed25519 over "easyenclave signed record v1" ‖ 0 ‖ domain ‖ 0 ‖ RFC 8785 canonical JSON.
// The same record in any key order verifies; a changed field, another domain, another key, or a malformed
// signature does not; what is not plain integer JSON is refused before signing.
import assert from 'node:assert/strict';
import { generateKeyPairSync, verify as nodeVerify, createPublicKey } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  canonicalRecordJson,
  generateSigningKey,
  importSigningKey,
  recordSigningBytes,
  signRecord,
  verifyRecord,
} from '@easyenclave/protocol/signed-record';

const receipt = {
  reservation_id: 'res_01',
  request_id: 'req_7',
  units: { kind: 'tokens', input: 120, output: 48 },
  price_micro_usd: 2500,
  seq: 41,
  at: '2026-01-02T03:04:05.000Z',
  sealed_request_sha256: 'ab'.repeat(32),
};

describe('canonical JSON (RFC 8785)', () => {
  test('keys sorted by UTF-16 code units, no whitespace, escapes as JSON.stringify', () => {
    // RFC 8785 §3.2.3's sorting example, the keys only (its values are floats, which records exclude).
    const rfc = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    assert.equal(
      canonicalRecordJson(rfc),
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
    assert.equal(
      canonicalRecordJson({ b: [1, { d: null, c: true }], a: 'x' }),
      '{"a":"x","b":[1,{"c":true,"d":null}]}',
    );
  });

  test('only plain JSON objects with safe integers', () => {
    for (const bad of [
      { x: 1.5 },
      { x: 2 ** 53 },
      { x: 1n },
      { x: undefined },
      { x: new Date(0) },
      { x: () => 1 },
      { x: '\ud800' },
      [1, 2],
      'str',
      null,
    ]) {
      assert.throws(() => canonicalRecordJson(bad), Error, JSON.stringify(String(bad)));
    }
  });
});

describe('signRecord / verifyRecord', () => {
  test('verifies in any key order; refuses a changed field, another domain, another key, a bad signature', async () => {
    const k = await generateSigningKey();
    const sig = await signRecord(k.privateKey, receipt, 'ee-receipt-v1');
    assert.match(sig, /^[0-9a-f]{128}$/);
    const reordered = Object.fromEntries(Object.entries(receipt).reverse());
    assert.equal(await verifyRecord(k.publicKeyHex, reordered, sig, 'ee-receipt-v1'), true);
    assert.equal(await verifyRecord(k.publicKeyHex, { ...receipt, seq: 42 }, sig, 'ee-receipt-v1'), false);
    assert.equal(await verifyRecord(k.publicKeyHex, { ...receipt, extra: 1 }, sig, 'ee-receipt-v1'), false);
    assert.equal(await verifyRecord(k.publicKeyHex, receipt, sig, 'ee-usage-v1'), false);
    const other = await generateSigningKey();
    assert.equal(await verifyRecord(other.publicKeyHex, receipt, sig, 'ee-receipt-v1'), false);
    const flipped = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
    assert.equal(await verifyRecord(k.publicKeyHex, receipt, flipped, 'ee-receipt-v1'), false);
    assert.equal(await verifyRecord(k.publicKeyHex, receipt, sig.toUpperCase(), 'ee-receipt-v1'), false);
    assert.equal(await verifyRecord('zz', receipt, sig, 'ee-receipt-v1'), false);
    await assert.rejects(signRecord(k.privateKey, receipt, 'Bad Domain'), TypeError);
  });

  test('a Node Ed25519 KeyObject (the agent keyset) signs; node:crypto verifies the same bytes', async () => {
    const kp = generateKeyPairSync('ed25519');
    const priv = await importSigningKey(kp.privateKey.export({ format: 'jwk' }));
    const pubHex = Buffer.from(kp.publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('hex');
    const sig = await signRecord(priv, receipt, 'ee-receipt-v1');
    assert.equal(await verifyRecord(pubHex, receipt, sig, 'ee-receipt-v1'), true);
    const bytes = recordSigningBytes('ee-receipt-v1', receipt);
    assert.ok(
      Buffer.from(bytes).toString('utf8').startsWith('easyenclave signed record v1\u0000ee-receipt-v1\u0000{"at":'),
    );
    assert.equal(
      nodeVerify(
        null,
        bytes,
        createPublicKey(kp.publicKey.export({ format: 'pem', type: 'spki' })),
        Buffer.from(sig, 'hex'),
      ),
      true,
    );
  });
});
