// The strict TDX quote parser (quote.ts), the PCK certificate's SGX extension (pck.ts) and the DER walker,
// on the real Intel quote and on generated ones.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import {
  headerReasons,
  isDebugTd,
  parsePckCertificate,
  parseSgxExtension,
  parseTdxQuote,
  QUOTE_MAX_BYTES,
  QUOTE_REASONS,
  QuoteParseError,
  tdReportReasons,
} from '@easyenclave/attestation';
import { decodeOid, readDerExact } from '@easyenclave/attestation/der';
import { encodeSgxExtension, TEST_PLATFORM, TestRootOfTrust } from '@easyenclave/attestation/testing/root-of-trust';

const FIXTURES = fileURLToPath(new URL('../../fixtures/tdx/', import.meta.url));
const fixtureQuote = readFileSync(`${FIXTURES}tdx_quote.bin`);

function parseReasons(buf: Buffer): string[] {
  try {
    parseTdxQuote(buf);
  } catch (err) {
    assert.ok(err instanceof QuoteParseError, `expected QuoteParseError, got ${String(err)}`);
    assert.ok(err.reasons.length > 0);
    return err.reasons;
  }
  assert.fail('expected the quote to be rejected');
}

describe('TDX quote parser: the real Intel quote', () => {
  it('parses a v4 TD 1.0 quote with the README fields', () => {
    const q = parseTdxQuote(fixtureQuote);
    assert.equal(q.version, 4);
    assert.equal(q.body_type, 2);
    assert.equal(q.tee_type, 0x81);
    assert.equal(q.attestation_key_type, 2);
    assert.equal(q.qe_vendor_id.toString('hex'), '939a7233f79c4ca9940a0db3957f0607');
    assert.equal(
      q.td.mrtd.toString('hex'),
      '91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7',
    );
    assert.equal(q.td.rtmr3.toString('hex'), '0'.repeat(96));
    assert.equal(q.td.td_attributes.toString('hex'), '0000001000000000');
    assert.equal(q.td.xfam.toString('hex'), 'e702060000000000');
    assert.equal(q.signed_bytes.length, 48 + 584);
    assert.equal(q.signature.certification_data_type, 5);
    assert.equal(q.signature.pck_chain_der.length, 3);
    assert.equal(q.signature.qe_report.length, 384);
    assert.equal(q.length, 4936, 'the real quote carries 70 bytes of zero padding after its signature data');
    assert.deepEqual(tdReportReasons(q.td), []);
    assert.equal(isDebugTd(q.td.td_attributes), false);
  });

  it('parses the PCK certificate SGX extension (Platform CA, FMSPC B0C06F000000)', () => {
    const q = parseTdxQuote(fixtureQuote);
    const pck = parsePckCertificate(q.signature.pck_chain_der[0] as Buffer);
    assert.equal(pck.ca, 'platform');
    assert.equal(pck.issuer_cn, 'Intel SGX PCK Platform CA');
    assert.equal(pck.fmspc.toString('hex').toUpperCase(), 'B0C06F000000');
    assert.equal(pck.ppid.toString('hex'), '811dca2a26b952e85bb6448b097ba4fd');
    assert.equal(pck.pce_id.toString('hex'), '0000');
    assert.equal(pck.pcesvn, 11);
    assert.deepEqual(pck.tcb_components, [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(pck.cpusvn.toString('hex'), '03030202040100050000000000000000');
    assert.equal(pck.sgx_type, 1);
    assert.equal(pck.serial, '3c16ed54eacbb4ced072be72630c85788cf46e36');
  });
});

describe('TDX quote parser: rejections, each with its reason', () => {
  let rot: TestRootOfTrust;
  let good: Buffer;
  before(async () => {
    rot = await TestRootOfTrust.create();
    good = rot.quote();
  });

  it('a generated v4 quote parses; v5 with TD 1.0 and TD 1.5 bodies too', () => {
    assert.equal(parseTdxQuote(good).version, 4);
    const v5 = parseTdxQuote(rot.quote({ version: 5 }));
    assert.equal(v5.version, 5);
    assert.equal(v5.body_type, 2);
    assert.equal(v5.signed_bytes.length, 48 + 6 + 584);
    const td15 = parseTdxQuote(rot.quote({ version: 5, body_type: 3 }));
    assert.equal(td15.body_type, 3);
    assert.equal(td15.signed_bytes.length, 48 + 6 + 648);
    assert.equal(td15.td.mrservicetd?.length, 48);
    const serviceTd = parseTdxQuote(rot.quote({ version: 5, body_type: 3, mrservicetd: Buffer.alloc(48, 1) }));
    assert.deepEqual(tdReportReasons(serviceTd.td), [QUOTE_REASONS.mrServiceTd]);
  });

  it('SGX quote where a TDX quote is required', () => {
    assert.ok(parseReasons(rot.quote({ tee_type: 0 })).includes(QUOTE_REASONS.sgx));
    const sgxV3 = rot.quote({ tee_type: 0 });
    sgxV3.writeUInt16LE(3, 0);
    const reasons = parseReasons(sgxV3);
    assert.ok(reasons.includes(QUOTE_REASONS.sgx));
    assert.ok(reasons.includes('unsupported quote version 3 (expected 4 or 5)'));
    // A v5 quote whose body is an SGX enclave report.
    const v5 = rot.quote({ version: 5 });
    v5.writeUInt16LE(1, 48);
    assert.ok(parseReasons(v5).some((r) => r.includes(QUOTE_REASONS.sgx)));
  });

  it('every header problem is reported at once', () => {
    const h = Buffer.from(good.subarray(0, 48));
    h.writeUInt16LE(6, 0);
    h.writeUInt16LE(3, 2);
    h.writeUInt32LE(0x7f, 4);
    h[12] = 0;
    assert.deepEqual(headerReasons(h), [
      'unknown TEE type 0x7f (expected 0x81, TDX)',
      'unsupported quote version 6 (expected 4 or 5)',
      'unsupported attestation key type 3 (expected 2, ECDSA-256 with P-256)',
      QUOTE_REASONS.vendor,
    ]);
    assert.deepEqual(parseReasons(rot.quote({ qe_vendor_id: Buffer.alloc(16, 7) })), [QUOTE_REASONS.vendor]);
    assert.deepEqual(parseReasons(rot.quote({ attestation_key_type: 3 })), [
      'unsupported attestation key type 3 (expected 2, ECDSA-256 with P-256)',
    ]);
  });

  it('truncated quotes, at every length, are rejected as truncated', () => {
    for (const len of [0, 1, 47])
      assert.match(parseReasons(good.subarray(0, len))[0] as string, /shorter than the 48-byte header/);
    for (const len of [48, 100, 48 + 584, 48 + 584 + 3, 48 + 584 + 4, 700, 1000, good.length - 600, good.length - 1]) {
      const reasons = parseReasons(good.subarray(0, len));
      assert.match(reasons[0] as string, /^quote is truncated/, `length ${len}: ${reasons.join('; ')}`);
    }
  });

  it('oversized quotes are rejected before parsing', () => {
    const big = Buffer.concat([good, Buffer.alloc(QUOTE_MAX_BYTES - good.length + 1)]);
    assert.deepEqual(parseReasons(big), [`quote is too large: ${QUOTE_MAX_BYTES + 1} bytes (max ${QUOTE_MAX_BYTES})`]);
    // Exactly the limit, zero padded, is fine.
    assert.equal(parseTdxQuote(Buffer.concat([good, Buffer.alloc(QUOTE_MAX_BYTES - good.length)])).version, 4);
  });

  it('zero padding is accepted; anything else after the signature data is not', () => {
    assert.equal(parseTdxQuote(rot.quote({ padding: 70 })).version, 4);
    const junk = Buffer.concat([good, Buffer.from([0, 0, 1])]);
    assert.deepEqual(parseReasons(junk), [QUOTE_REASONS.trailing]);
  });

  it('inconsistent inner sizes and types are rejected', () => {
    const q = Buffer.from(good);
    const off = 48 + 584 + 4 + 128; // outer certification data type
    q.writeUInt16LE(5, off);
    assert.match(parseReasons(q)[0] as string, /unsupported certification data type 5/);
    const q2 = Buffer.from(good);
    q2.writeUInt32LE(q2.readUInt32LE(off + 2) - 1, off + 2);
    assert.match(parseReasons(q2)[0] as string, /certification data size/);
    const q3 = rot.quote({ pck_chain_pem: 'hello' });
    assert.match(parseReasons(q3)[0] as string, /malformed PCK certificate chain/);
  });

  it('debug TD, reserved attribute bits and a missing SEPT_VE_DISABLE are flagged', () => {
    const debug = parseTdxQuote(rot.quote({ td_attributes: Buffer.from('0100001000000000', 'hex') }));
    assert.equal(isDebugTd(debug.td.td_attributes), true);
    assert.deepEqual(tdReportReasons(debug.td), [QUOTE_REASONS.debug]);
    const reserved = parseTdxQuote(rot.quote({ td_attributes: Buffer.from('0000011000000000', 'hex') }));
    assert.deepEqual(tdReportReasons(reserved.td), ['reserved TD attribute bits are set (0x0000000000010000)']);
    const noSept = parseTdxQuote(rot.quote({ td_attributes: Buffer.alloc(8) }));
    assert.deepEqual(tdReportReasons(noSept.td), [QUOTE_REASONS.septVeDisable]);
  });
});

describe('SGX extension and DER walker', () => {
  const params = {
    ppid: Buffer.alloc(16, 0xaa),
    cpusvn: [...TEST_PLATFORM.cpusvn],
    pcesvn: 300,
    pce_id: Buffer.from('0000', 'hex'),
    fmspc: Buffer.from('00906ED50000', 'hex'),
    sgx_type: 0,
  };

  it('round-trips what the test root of trust encodes', () => {
    const ext = parseSgxExtension(encodeSgxExtension(params));
    assert.equal(ext.pcesvn, 300);
    assert.equal(ext.fmspc.toString('hex'), '00906ed50000');
    assert.deepEqual(ext.tcb_components, params.cpusvn);
  });

  it('rejects a CPUSVN that disagrees with the components, missing fields and trailing bytes', () => {
    assert.throws(
      () => parseSgxExtension(encodeSgxExtension({ ...params, cpusvn_override: Buffer.alloc(16, 9) })),
      /disagree with CPUSVN/,
    );
    assert.throws(
      () => parseSgxExtension(encodeSgxExtension({ ...params, fmspc: Buffer.alloc(5) })),
      /FMSPC must be 6 bytes/,
    );
    assert.throws(
      () => parseSgxExtension(Buffer.concat([encodeSgxExtension(params), Buffer.from([0])])),
      /trailing bytes/,
    );
    assert.throws(() => parseSgxExtension(Buffer.from('3080', 'hex')), /indefinite length/);
    assert.throws(() => parseSgxExtension(Buffer.from('30810100', 'hex')), /non-minimal length/);
  });

  it('decodes OIDs', () => {
    assert.equal(
      decodeOid(readDerExact(Buffer.from('060a2a864886f84d010d0101', 'hex')).value),
      '1.2.840.113741.1.13.1.1',
    );
  });

  it('a certificate without the SGX extension is refused; a Processor CA PCK is recognised', async () => {
    const rot = await TestRootOfTrust.create();
    assert.throws(() => parsePckCertificate(rot.tcbSigning.der), /no SGX extension/);
    assert.equal(parsePckCertificate(rot.pckProcessor.der).ca, 'processor');
  });
});
