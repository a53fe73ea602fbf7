// TDX attestation over the real tunnel, end to end: a control plane configured from files (a generated test
// root of trust with the explicit non-Intel-root override, an offline collateral file, a policy file) and a raw
// protocol client answering challenges with quotes from that root of trust. A good quote makes the app routable
// on the sealed network forge-1 and is recorded with its evidence hash and the policy version; every bad one is
// refused with its reason in attest_result, stops routing and is recorded.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import {
  DCAP_REASONS,
  generateKeyset,
  POLICY_REASONS,
  publicKeyset,
  QUOTE_REASONS,
  SANDBOX_REASONS,
} from '@easyenclave/attestation';
import type { AttestResponseMessage } from '@easyenclave/protocol';
import { NO_POLICY_REASON } from '@easyenclave/control-plane/attestation/verifier';
import { closeAll, startCp, waitRoutable, wsUrl } from '../helpers/network.js';
import { newAgentId, RawAgent } from '../lifecycle/raw-agent.js';
import { adminApp, proxyGet, resolveApp } from '../lifecycle/util.js';
import {
  attestTdx,
  GOOD,
  m48,
  OTHER,
  policyJson,
  sendTdx,
  trustFiles,
  type Build,
  type TdxAnswerOptions,
} from './fixture.js';

afterEach(() => closeAll());

const FORGE = { network: 'forge-1' } as const;

describe('TDX attestation over the tunnel (forge-1)', () => {
  test('a DCAP-verified TDX quote makes the app routable on forge-1; evidence hash and policy version are recorded', async () => {
    const t = await trustFiles();
    const cp = await startCp({ ...t.env, EE_QUEUE_TIMEOUT_MS: '200' });
    const agent_id = newAgentId();
    const raw = await RawAgent.connect(wsUrl(cp), { ...FORGE, agent_id });
    raw.serve();
    const { request, response } = await attestTdx(raw, t.rot);
    assert.equal(request.reason, 'register');
    await waitRoutable(cp);
    const res = await resolveApp(cp);
    assert.equal(res.json.sealed, true);
    assert.equal(res.json.network, 'forge-1');
    const served = await proxyGet(cp, '/hello');
    assert.equal(served.status, 200);
    assert.equal(served.text, 'raw-agent');

    const [row] = await cp.store.listAttestations({ agent_id, limit: 5 });
    assert.equal(row?.ok, true);
    assert.equal(row?.evidence_type, 'tdx');
    assert.equal(row?.policy_version, 'e2e-1');
    assert.equal(row?.evidence_hash, t.evidenceHash(Buffer.from(response.quote, 'base64')));
    const detail = await adminApp(cp);
    assert.equal(detail.json.agents[0].evidence_type, 'tdx');
    assert.equal(detail.json.recent_attestations[0].policy_version, 'e2e-1');
  });

  const negatives: Array<{
    name: string;
    reg?: { release_tag?: string };
    build?: Build;
    answer?: () => TdxAnswerOptions;
    reason: string | RegExp;
  }> = [
    {
      name: 'unknown MRTD',
      build: { ...GOOD, mrtd: m48('some other image') },
      reason: POLICY_REASONS.unknownMrtd(m48('some other image').toString('hex'), 'acme/demo', 'v1.0.0'),
    },
    {
      name: 'release not in the allowlist',
      reg: { release_tag: 'v9.9.9' },
      reason: POLICY_REASONS.releaseNotAllowed('acme/demo', 'v9.9.9'),
    },
    {
      name: 'RTMR mismatch',
      build: { ...GOOD, rtmr1: m48('tampered kernel') },
      reason: /^RTMR mismatch: RTMR1 for acme\/demo@v1\.0\.0/,
    },
    {
      name: 'debug TD',
      answer: () => ({ quote: { td_attributes: Buffer.from('0100001000000000', 'hex') } }),
      reason: QUOTE_REASONS.debug,
    },
    {
      name: 'report_data bound to other keys',
      answer: () => ({ keyset_for_report_data: publicKeyset(generateKeyset()) }),
      reason: DCAP_REASONS.reportData,
    },
    {
      name: 'broken QE report hash',
      answer: () => ({ quote: { bad_qe_hash: true } }),
      reason: /^DCAP verification failed: QE report hash mismatch/,
    },
  ];

  test('refused over the tunnel with the reason in attest_result, never routable, recorded', async () => {
    const t = await trustFiles();
    const cp = await startCp({ ...t.env, EE_QUEUE_TIMEOUT_MS: '200' });
    for (const n of negatives) {
      const agent_id = newAgentId();
      const raw = await RawAgent.connect(wsUrl(cp), { ...FORGE, agent_id, ...n.reg });
      raw.serve();
      raw.register();
      await raw.next('registered');
      const req = await raw.next('attest_request');
      raw.health('pass');
      sendTdx(raw, t.rot, req, n.build ?? GOOD, n.answer?.() ?? {});
      const result = await raw.next('attest_result');
      assert.equal(result.ok, false, n.name);
      assert.equal(result.nonce, req.nonce, n.name);
      const matches = (r: string) => (typeof n.reason === 'string' ? r === n.reason : n.reason.test(r));
      assert.ok(result.reasons.some(matches), `${n.name}: ${JSON.stringify(result.reasons)}`);
      assert.equal((await raw.waitClose()).code, 4002, n.name);
      assert.equal(raw.streams_opened, 0, n.name);
      const res = await resolveApp(cp);
      assert.equal(res.status, 403, `${n.name}: ${res.text}`);
      const rows = await cp.store.listAttestations({ agent_id, limit: 5 });
      assert.equal(rows.length, 1, n.name);
      assert.equal(rows[0]!.ok, false, n.name);
      assert.equal(rows[0]!.missed, false, n.name);
      assert.equal(rows[0]!.evidence_type, 'tdx', n.name);
      assert.ok(
        rows[0]!.failure !== null && rows[0]!.failure.split('; ').some(matches),
        `${n.name}: recorded ${rows[0]!.failure}`,
      );
    }
  });

  test('the verdict lists every reason at once', async () => {
    const t = await trustFiles();
    const cp = await startCp(t.env);
    const raw = await RawAgent.connect(wsUrl(cp), { ...FORGE, release_tag: 'v9.9.9' });
    raw.register();
    const req = await raw.next('attest_request');
    sendTdx(raw, t.rot, req, GOOD, {
      quote: { td_attributes: Buffer.from('0100001000000000', 'hex') },
      keyset_for_report_data: publicKeyset(generateKeyset()),
    });
    const result = await raw.next('attest_result');
    assert.equal(result.ok, false);
    for (const r of [
      QUOTE_REASONS.debug,
      DCAP_REASONS.reportData,
      POLICY_REASONS.releaseNotAllowed('acme/demo', 'v9.9.9'),
    ]) {
      assert.ok(result.reasons.includes(r), `${r} in ${JSON.stringify(result.reasons)}`);
    }
  });

  test('a replayed attest_response (DCAP path) is refused: same connection, and on a new connection', async () => {
    const t = await trustFiles();
    const cp = await startCp(t.env);
    const id1 = newAgentId();
    const a = await RawAgent.connect(wsUrl(cp), { ...FORGE, agent_id: id1 });
    const { response } = await attestTdx(a, t.rot);
    await waitRoutable(cp);
    a.sendJson(response);
    const r1 = await a.next('attest_result');
    assert.equal(r1.ok, false);
    assert.match(r1.reasons.join(' '), /replayed/);
    assert.equal((await a.waitClose()).code, 4002);
    assert.equal((await resolveApp(cp)).status, 403, 'a failed replay stops routing');
    assert.deepEqual(
      (await cp.store.listAttestations({ agent_id: id1, limit: 5 })).map((r) => r.ok),
      [false, true],
    );

    // A valid DCAP quote bound to the old nonce, replayed verbatim and with the nonce field rewritten.
    for (const rewrite of [false, true]) {
      const b = await RawAgent.connect(wsUrl(cp), FORGE);
      b.register();
      const req = await b.next('attest_request');
      assert.notEqual(req.nonce, response.nonce);
      const replay: AttestResponseMessage = rewrite ? { ...response, nonce: req.nonce } : response;
      b.sendJson(replay);
      const r = await b.next('attest_result');
      assert.equal(r.ok, false, `rewrite=${rewrite}`);
      assert.ok(
        r.reasons.includes(rewrite ? DCAP_REASONS.reportData : 'unknown, expired or replayed nonce'),
        JSON.stringify(r.reasons),
      );
      assert.equal((await b.waitClose()).code, 4002);
    }
    assert.equal((await resolveApp(cp)).status, 403);
  });

  test('sandbox evidence on forge-1 is refused even with a policy loaded; TDX evidence on sandbox-1 is accepted', async () => {
    const t = await trustFiles();
    const cp = await startCp(t.env);
    const agent_id = newAgentId();
    const raw = await RawAgent.connect(wsUrl(cp), { ...FORGE, agent_id });
    raw.register();
    const req = await raw.next('attest_request');
    await raw.answer(req); // the raw client's default: a valid sandbox quote
    const result = await raw.next('attest_result');
    assert.equal(result.ok, false);
    assert.ok(result.reasons.includes(SANDBOX_REASONS.sealed), JSON.stringify(result.reasons));
    const [row] = await cp.store.listAttestations({ agent_id, limit: 1 });
    assert.equal(row?.ok, false);
    assert.equal(row?.evidence_type, 'sandbox');
    assert.match(row?.failure ?? '', /sealed network/);

    const dev = await RawAgent.connect(wsUrl(cp), { network: 'sandbox-1', app_name: 'devapp', agent_id: newAgentId() });
    await attestTdx(dev, t.rot);
    await waitRoutable(cp, 'devapp');
  });

  test('no allowlist policy: forge-1 rejects everything ("no allowlist policy loaded"), sandbox-1 still works', async () => {
    const t = await trustFiles(null);
    const cp = await startCp(t.env);
    const tdx = await RawAgent.connect(wsUrl(cp), FORGE);
    tdx.register();
    const req = await tdx.next('attest_request');
    sendTdx(tdx, t.rot, req);
    const refused = await tdx.next('attest_result');
    assert.equal(refused.ok, false);
    assert.equal(refused.reasons[0], NO_POLICY_REASON);

    const sb = await RawAgent.connect(wsUrl(cp), { ...FORGE, app_name: 'other', repo: 'acme/other' });
    sb.register();
    await sb.answer(await sb.next('attest_request'));
    const r = await sb.next('attest_result');
    assert.equal(r.ok, false);
    assert.equal(r.reasons[0], NO_POLICY_REASON);
    assert.ok(r.reasons.includes(SANDBOX_REASONS.sealed), JSON.stringify(r.reasons));

    const dev = await RawAgent.connect(wsUrl(cp), { network: 'sandbox-1', app_name: 'devapp', repo: 'acme/dev' });
    await dev.registerAndAttest();
    await waitRoutable(cp, 'devapp');
    // TDX evidence on sandbox-1 needs a policy too (its measurements cannot be checked without one).
    const devTdx = await RawAgent.connect(wsUrl(cp), { network: 'sandbox-1', app_name: 'devtdx', repo: 'acme/dev' });
    devTdx.register();
    sendTdx(devTdx, t.rot, await devTdx.next('attest_request'));
    const r2 = await devTdx.next('attest_result');
    assert.equal(r2.ok, false);
    assert.deepEqual(r2.reasons, [NO_POLICY_REASON]);
  });

  test('several releases in the allowlist: each agent is checked against its own registration', async () => {
    const t = await trustFiles(policyJson('e2e-two', [{ build: GOOD }, { release_tag: 'v2.0.0', build: OTHER }]));
    const cp = await startCp(t.env);
    const v1 = await RawAgent.connect(wsUrl(cp), { ...FORGE });
    await attestTdx(v1, t.rot, GOOD);
    const v2 = await RawAgent.connect(wsUrl(cp), { ...FORGE, release_tag: 'v2.0.0' });
    await attestTdx(v2, t.rot, OTHER);
    // v1's image claiming to be v2.0.0 is refused.
    const liar = await RawAgent.connect(wsUrl(cp), { ...FORGE, release_tag: 'v2.0.0' });
    liar.register();
    sendTdx(liar, t.rot, await liar.next('attest_request'), GOOD);
    const r = await liar.next('attest_result');
    assert.equal(r.ok, false);
    assert.ok(
      r.reasons.includes(POLICY_REASONS.unknownMrtd(GOOD.mrtd.toString('hex'), 'acme/demo', 'v2.0.0')),
      JSON.stringify(r.reasons),
    );
  });
});
