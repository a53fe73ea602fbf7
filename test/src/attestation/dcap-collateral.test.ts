// Collateral sources: the offline file source, and the PCCS/PCS client against a local HTTP server (loopback
// only) serving the fixture's collateral the way a PCCS does.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import {
  collateralToJson,
  DcapVerifier,
  FileCollateralSource,
  normalizeCollateral,
  PccsCollateralSource,
  rawJsonMembers,
} from '@easyenclave/attestation';
import type { DcapCollateral } from '@easyenclave/attestation';
import { tmpDir } from '../helpers/tmp.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/tdx/', import.meta.url));
const quote = readFileSync(`${FIXTURES}tdx_quote.bin`);
const collateralPath = `${FIXTURES}tdx_quote_collateral.json`;
const fixture = JSON.parse(readFileSync(collateralPath, 'utf8')) as DcapCollateral;
const FMSPC = 'B0C06F000000';
const INSIDE_MS = 1750329200_000;
// Every piece's nextUpdate; the earliest is the PCK CRL's.
const PCK_CRL_NEXT = Date.parse('2025-07-19T10:00:35Z');
const TCB_NEXT = Date.parse('2025-07-19T10:16:03Z');

describe('file and static collateral', () => {
  it('FileCollateralSource reads the dcap-qvl JSON shape and checks the FMSPC', async () => {
    const src = new FileCollateralSource(collateralPath);
    const c = await src.get(FMSPC, 'platform');
    assert.equal(c.tcb_info_parsed.fmspc, FMSPC);
    assert.equal(c, await src.get(FMSPC.toLowerCase(), 'platform'), 'same object each time (digest computed once)');
    await assert.rejects(
      src.get('00906ED50000', 'platform'),
      /collateral is for FMSPC B0C06F000000, the quote's platform is 00906ED50000/,
    );
    await assert.rejects(src.get('xyz', 'platform'), /invalid FMSPC/);
    await assert.rejects(src.get(FMSPC, 'other' as never), /invalid PCK CA/);
  });

  it('round-trips through collateralToJson, and rejects malformed files', () => {
    const c = normalizeCollateral(fixture);
    assert.equal(normalizeCollateral(collateralToJson(c)).digest, c.digest);
    const dir = tmpDir();
    const p = join(dir, 'c.json');
    writeFileSync(p, JSON.stringify({ ...fixture, surprise: true }));
    assert.throws(() => new FileCollateralSource(p), /collateral is malformed/);
    writeFileSync(p, JSON.stringify({ ...fixture, tcb_info: '{"id":"TDX"}' }));
    assert.throws(() => new FileCollateralSource(p), /collateral tcb_info is malformed/);
    writeFileSync(p, JSON.stringify({ ...fixture, pck_crl: 'zz' }));
    assert.throws(() => new FileCollateralSource(p), /pck_crl: must be hex/);
    assert.throws(() => new FileCollateralSource(join(dir, 'none.json')), /cannot read collateral file/);
    // Bytes as arrays of numbers (dcap-qvl's getCollateral output) are accepted too, with the same digest.
    const asArrays = { ...fixture, root_ca_crl: [...Buffer.from(fixture.root_ca_crl as string, 'hex')] };
    assert.equal(normalizeCollateral(asArrays).digest, c.digest);
  });

  it('rawJsonMembers returns the exact text of each member', () => {
    const text = '{ "tcbInfo" : {"a": [1, {"b":"}\\""}], "c" :2} ,"signature":"ab" }';
    const m = rawJsonMembers(text);
    assert.equal(m.get('tcbInfo'), '{"a": [1, {"b":"}\\""}], "c" :2}');
    assert.equal(m.get('signature'), '"ab"');
    assert.throws(() => rawJsonMembers('{"a":'), SyntaxError);
  });
});

describe('PccsCollateralSource against a local PCCS', () => {
  let server: Server;
  let base: string;
  const hits: string[] = [];
  let failing = false;
  const c = normalizeCollateral(fixture);

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://x');
      hits.push(`${url.pathname}${url.search}`);
      const send = (status: number, body: string | Buffer, headers: Record<string, string> = {}): void => {
        res.writeHead(status, headers);
        res.end(body);
      };
      if (failing) return send(503, 'down');
      switch (url.pathname) {
        case '/tdx/certification/v4/tcb':
          if (url.searchParams.get('fmspc') !== FMSPC) return send(404, 'no such fmspc');
          // Pretty-printed around the signed member, as some servers do: the signed bytes must survive.
          return send(
            200,
            `{\n  "tcbInfo": ${c.tcb_info},\n  "signature": "${c.tcb_info_signature.toString('hex')}"\n}`,
            {
              'TCB-Info-Issuer-Chain': encodeURIComponent(c.tcb_info_issuer_chain),
            },
          );
        case '/tdx/certification/v4/qe/identity':
          return send(
            200,
            `{"enclaveIdentity":${c.qe_identity},"signature":"${c.qe_identity_signature.toString('hex')}"}`,
            {
              'SGX-Enclave-Identity-Issuer-Chain': encodeURIComponent(c.qe_identity_issuer_chain),
            },
          );
        case '/sgx/certification/v4/pckcrl':
          if (url.searchParams.get('ca') !== 'platform') return send(404, 'unknown ca');
          return send(200, c.pck_crl, { 'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(c.pck_crl_issuer_chain) });
        case '/sgx/certification/v4/rootcacrl':
          return send(200, c.root_ca_crl.toString('hex')); // PCCS answers in hex
        default:
          return send(404, 'not found');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('fetches exactly the fixture collateral, and the fixture quote verifies with it', async () => {
    hits.length = 0;
    const src = new PccsCollateralSource({ url: `${base}/sgx/certification/v4/`, clock: () => INSIDE_MS });
    const got = await src.get(FMSPC, 'platform');
    assert.equal(got.digest, c.digest, 'byte-identical collateral, signed JSON text included');
    assert.equal(src.requests, 4);
    const v = new DcapVerifier({ collateral: src });
    const r = await v.report(quote, INSIDE_MS);
    assert.equal(r.ok, true, r.reasons.join('; '));
    assert.equal(r.collateral_digest, c.digest);
  });

  it('caches every piece until its nextUpdate and refreshes ahead of it', async () => {
    let now = INSIDE_MS;
    const src = new PccsCollateralSource({ url: base, clock: () => now, refresh_ahead_ms: 600_000 });
    const first = await src.get(FMSPC, 'platform');
    assert.equal(src.requests, 4);
    now += 86_400_000;
    assert.equal(await src.get(FMSPC, 'platform'), first, 'served from cache, same object');
    assert.equal(src.requests, 4);
    // Within ten minutes of the PCK CRL's nextUpdate (the TCB info's is 15 minutes later): served from cache,
    // and only the CRL is refreshed, in the background.
    now = PCK_CRL_NEXT - 300_000;
    hits.length = 0;
    assert.equal(await src.get(FMSPC, 'platform'), first);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(hits, ['/sgx/certification/v4/pckcrl?ca=platform&encoding=der']);
    // The PCCS still has the same (now expiring) CRL; once past nextUpdate it cannot be served any more.
    now = PCK_CRL_NEXT + 1000;
    await assert.rejects(src.get(FMSPC, 'platform'), /already past its nextUpdate/);
    assert.ok(TCB_NEXT > PCK_CRL_NEXT);
  });

  it('concurrent requests share one fetch', async () => {
    const src = new PccsCollateralSource({ url: base, clock: () => INSIDE_MS });
    const all = await Promise.all([src.get(FMSPC, 'platform'), src.get(FMSPC, 'platform'), src.get(FMSPC, 'platform')]);
    assert.equal(src.requests, 4);
    assert.ok(all.every((x) => x === all[0]));
  });

  it('errors: unknown FMSPC or CA, a server that is down (a cached copy still serves)', async () => {
    const src = new PccsCollateralSource({ url: base, clock: () => INSIDE_MS });
    await assert.rejects(src.get('00906ED50000', 'platform'), /answered 404/);
    await assert.rejects(src.get(FMSPC, 'processor'), /answered 404/);
    const warm = new PccsCollateralSource({ url: base, clock: () => INSIDE_MS });
    const c1 = await warm.get(FMSPC, 'platform');
    failing = true;
    try {
      assert.equal(await warm.get(FMSPC, 'platform'), c1);
      const cold = new PccsCollateralSource({ url: base, clock: () => INSIDE_MS });
      await assert.rejects(cold.get(FMSPC, 'platform'), /answered 503/);
    } finally {
      failing = false;
    }
  });

  it('takes its URL from EE_PCCS_URL and refuses non-http URLs', () => {
    const saved = process.env.EE_PCCS_URL;
    process.env.EE_PCCS_URL = `${base}/tdx/certification/v4`;
    try {
      assert.equal(new PccsCollateralSource().url, base);
    } finally {
      if (saved === undefined) delete process.env.EE_PCCS_URL;
      else process.env.EE_PCCS_URL = saved;
    }
    assert.throws(() => new PccsCollateralSource({ url: 'file:///etc/passwd' }), /must be http\(s\)/);
    assert.throws(() => new PccsCollateralSource({ url: 'not a url' }), /invalid PCCS URL/);
  });

  it('a verifier whose PCCS is down rejects with the reason', async () => {
    const v = new DcapVerifier({ collateral: new PccsCollateralSource({ url: base, clock: () => INSIDE_MS }) });
    failing = true;
    try {
      const r = await v.report(quote, INSIDE_MS);
      assert.equal(r.ok, false);
      assert.equal(r.reasons.length, 1);
      assert.match(r.reasons[0] as string, /^collateral unavailable: PCCS http:\/\/127\.0\.0\.1:\d+\/.* answered 503$/);
    } finally {
      failing = false;
    }
  });
});
