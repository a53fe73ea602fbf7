// An impostor without TDX registers for a genuine agent's app (same repo and release) under its own agent id
// and answers its challenge with evidence it borrowed: the genuine agent's, fetched through the public relay
// (GET /v1/apps/{app}/attestation) with the challenge's own nonce, or the control plane's own evidence
// (GET /v1/attestation) over that nonce. Through real sockets, on the sealed network (TDX from the test root
// of trust through a fake configfs-tsm) and on sandbox-1: the impostor must fail attestation, be closed and
// never receive a request, while the genuine agent keeps serving. Then each defence on its own: an answer
// without a proof of possession, or signed over another connection's session id, nonce or key, or quoted in
// the relay or self report_data domain, fails.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import {
  DCAP_REASONS,
  generateKeyset,
  newNonce,
  newSessionId,
  POSSESSION_REASONS,
  REPORT_DATA_DOMAINS,
  SANDBOX_REASONS,
  signPossession,
} from '@easyenclave/attestation';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import type { Agent } from '@easyenclave/agent';
import {
  closeAll,
  startAgent,
  startBackend,
  startCp,
  waitFor,
  waitRoutable,
  wsUrl,
  type Backend,
} from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { newAgentId, RawAgent, type BindingOptions, type Msg } from '../lifecycle/raw-agent.js';
import { httpGet, proxyGet, type HttpResult } from '../lifecycle/util.js';
import { buildQuote, FakeTsm, GOOD, sendTdx, trustFiles } from './fixture.js';

afterEach(() => closeAll());

type Network = 'forge-1' | 'sandbox-1';
const NETWORKS: Network[] = ['forge-1', 'sandbox-1'];
const PROXIED_REQUESTS = 20;

const relayUrl = (cp: ControlPlane, nonce: string, agent: string) =>
  `${cp.api_url}/v1/apps/demo/attestation?nonce=${nonce}&agent=${agent}`;

/** A control plane with the test root of trust and a genuine agent of app demo (TDX on forge-1), routable. */
async function genuineSetup(network: Network): Promise<{ cp: ControlPlane; backend: Backend; genuine: Agent }> {
  const t = await trustFiles();
  const backend = await startBackend();
  const cp = await startCp({ ...t.env, EE_QUEUE_TIMEOUT_MS: '500' });
  const tsm = network === 'forge-1' ? new FakeTsm(t.rot, { quote: buildQuote(GOOD) }).path : join(tmpDir(), 'none');
  const genuine = startAgent({
    control_ws: wsUrl(cp),
    backend_url: backend.url,
    network,
    agent_id: `genuine-${randomBytes(6).toString('hex')}`,
    extra: { EE_TSM_PATH: tsm },
  });
  await waitRoutable(cp, 'demo', 15_000);
  await waitFor(() => genuine.attested, 10_000, 'the genuine agent to be attested');
  return { cp, backend, genuine };
}

/** An attest_response made of someone else's evidence, presented as the impostor's answer to `req`. */
function borrowed(req: Msg, ev: Record<string, unknown>): Record<string, unknown> {
  return {
    type: 'attest_response',
    nonce: req.nonce,
    quote: ev.quote,
    report_data: ev.report_data,
    measurements: ev.measurements,
    keyset: ev.keyset,
  };
}

/** The impostor failed, was closed, got no stream, and every request reached the genuine agent's backend. */
async function assertImpostorRefused(
  cp: ControlPlane,
  impostor: RawAgent,
  genuine: Agent | null,
  result: Msg,
): Promise<void> {
  assert.equal(result.ok, false, `the impostor was attested: ${JSON.stringify(result)}`);
  assert.ok(result.reasons.length > 0);
  assert.equal((await impostor.waitClose(10_000)).code, 4002);
  const rows = await cp.store.listAttestations({ agent_id: impostor.reg.agent_id, limit: 5 });
  assert.deepEqual(
    rows.map((r) => r.ok),
    [false],
  );
  if (genuine === null) return;
  for (let i = 0; i < PROXIED_REQUESTS; i++) {
    const r = await proxyGet(cp, `/echo?i=${i}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json?.url, `/echo?i=${i}`, `request ${i} did not reach the genuine backend: ${r.text}`);
  }
  assert.equal(impostor.streams_opened, 0, 'a proxied request reached the impostor');
  assert.ok(genuine.attested, 'the genuine agent lost its attestation');
  const own = await cp.store.listAttestations({ agent_id: genuine.config.agent_id, limit: 50 });
  assert.ok(own.length > 0 && own.every((r) => r.ok), `the genuine agent has failures: ${JSON.stringify(own)}`);
}

describe('an impostor presenting borrowed evidence', () => {
  for (const network of NETWORKS) {
    test(`${network}: the genuine agent's evidence relayed with the challenge nonce does not attest an impostor`, async () => {
      const { cp, genuine } = await genuineSetup(network);
      const impostor = await RawAgent.connect(wsUrl(cp), { network, agent_id: newAgentId() });
      impostor.serve();
      impostor.register();
      await impostor.next('registered');
      impostor.health('pass');
      const req = await impostor.next('attest_request');

      // The attack: the genuine agent answers the impostor's challenge nonce through the public relay.
      const relay: HttpResult = await httpGet(relayUrl(cp, String(req.nonce), genuine.config.agent_id));
      let evidence = relay.json as Record<string, unknown>;
      if (relay.status !== 200) {
        // Refused: the best the impostor has left is the genuine agent's evidence over a nonce of its own.
        const other = await httpGet(relayUrl(cp, newNonce().toString('hex'), genuine.config.agent_id));
        assert.equal(other.status, 200, other.text);
        evidence = other.json as Record<string, unknown>;
      }
      impostor.sendJson(borrowed(req, evidence));
      const result = await impostor.next('attest_result', 10_000);
      await assertImpostorRefused(cp, impostor, genuine, result);
      // The relay refuses a nonce the control plane is waiting for as its own challenge.
      assert.equal(relay.status, 409, relay.text);
      assert.equal(relay.json.error.code, 'nonce_in_use');
    });
  }

  test("forge-1: the control plane's own evidence (GET /v1/attestation) over the challenge nonce does not attest an agent", async () => {
    const t = await trustFiles();
    // The control plane runs on "TDX" with the very measurements the policy allows for acme/demo@v1.0.0.
    const cp = await startCp({ ...t.env, EE_TSM_PATH: new FakeTsm(t.rot, { quote: buildQuote(GOOD) }).path });
    const impostor = await RawAgent.connect(wsUrl(cp), { network: 'forge-1' });
    impostor.serve();
    impostor.register();
    await impostor.next('registered');
    impostor.health('pass');
    const req = await impostor.next('attest_request');
    const own = await httpGet(`${cp.api_url}/v1/attestation?nonce=${String(req.nonce)}`);
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json.evidence_type, 'tdx');
    impostor.sendJson(borrowed(req, own.json as Record<string, unknown>));
    await assertImpostorRefused(cp, impostor, null, await impostor.next('attest_result', 10_000));
    assert.equal((await httpGet(`${cp.api_url}/v1/resolve/demo`)).status, 403, 'the app must not be routable');
  });

  test("sandbox-1: the control plane's own sandbox evidence does not attest an agent claiming its release", async () => {
    const cp = await startCp({ EE_TSM_PATH: join(tmpDir(), 'none') });
    const impostor = await RawAgent.connect(wsUrl(cp), {
      network: 'sandbox-1',
      app_name: 'cp-oracle',
      repo: 'easyenclave/control-plane',
      release_tag: '0.1.0',
    });
    impostor.serve();
    impostor.register();
    await impostor.next('registered');
    impostor.health('pass');
    const req = await impostor.next('attest_request');
    const own = await httpGet(`${cp.api_url}/v1/attestation?nonce=${String(req.nonce)}`);
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json.evidence_type, 'sandbox');
    impostor.sendJson(borrowed(req, own.json as Record<string, unknown>));
    await assertImpostorRefused(cp, impostor, null, await impostor.next('attest_result', 10_000));
  });
});

describe('proof of possession and report_data domains on the tunnel', () => {
  type Case = { name: string; binding: (raw: RawAgent, req: Msg, other: RawAgent) => BindingOptions; reason: string };
  const cases = (network: Network): Case[] => [
    { name: 'no pop_signature', binding: () => ({ pop_signature: null }), reason: POSSESSION_REASONS.missing },
    {
      name: "signed over another connection's session id",
      binding: (_raw, _req, other) => ({ pop_session_id: other.session_id! }),
      reason: POSSESSION_REASONS.invalid,
    },
    {
      name: 'signed over a fresh random session id',
      binding: () => ({ pop_session_id: newSessionId() }),
      reason: POSSESSION_REASONS.invalid,
    },
    {
      name: 'signed over another nonce',
      binding: (raw) => ({ pop_signature: signPossession(raw.keys, newNonce(), raw.session_id!) }),
      reason: POSSESSION_REASONS.invalid,
    },
    {
      name: 'signed by a key the quote does not vouch for',
      binding: (raw, req) => ({ pop_signature: signPossession(generateKeyset(), String(req.nonce), raw.session_id!) }),
      reason: POSSESSION_REASONS.invalid,
    },
    {
      name: 'not hex of a signature',
      binding: () => ({ pop_signature: 'zz'.repeat(64) }),
      reason: 'invalid control message',
    },
    ...[REPORT_DATA_DOMAINS.relay, REPORT_DATA_DOMAINS.self].map((domain) => ({
      name: `quoted in the ${domain} domain`,
      binding: () => ({ domain }),
      reason: network === 'forge-1' ? DCAP_REASONS.reportData : SANDBOX_REASONS.reportDataMismatch,
    })),
  ];

  for (const network of NETWORKS) {
    test(`${network}: a missing or foreign proof of possession, or another domain, fails attestation`, async () => {
      const t = await trustFiles();
      const cp = await startCp({ ...t.env, EE_QUEUE_TIMEOUT_MS: '200' });
      const answer = (raw: RawAgent, req: Msg, o: BindingOptions) =>
        network === 'forge-1' ? sendTdx(raw, t.rot, req, GOOD, o) : raw.answer(req, o);
      const connect = async (app_name: string) => {
        const raw = await RawAgent.connect(wsUrl(cp), { network, app_name, agent_id: newAgentId() });
        raw.serve();
        raw.register();
        const registered = await raw.next('registered');
        assert.match(String(registered.session_id), /^[0-9a-f]{64}$/);
        raw.health('pass');
        return { raw, req: await raw.next('attest_request') };
      };

      // The control: a correct answer passes, and every connection gets its own session id.
      const good = await connect('demo');
      await answer(good.raw, good.req, {});
      assert.equal((await good.raw.next('attest_result')).ok, true);
      await waitRoutable(cp);

      for (const c of cases(network)) {
        const { raw, req } = await connect('demo');
        assert.notEqual(raw.session_id, good.raw.session_id);
        await answer(raw, req, c.binding(raw, req, good.raw));
        if (c.reason === 'invalid control message') {
          // Caught by the message schema before any verification: the connection is closed as a protocol error.
          const closed = await raw.waitClose(10_000);
          assert.equal(closed.code, 1002, c.name);
          assert.match(closed.reason, /pop_signature/, c.name);
        } else {
          const result = await raw.next('attest_result', 10_000);
          assert.equal(result.ok, false, `${c.name}: ${JSON.stringify(result)}`);
          assert.deepEqual(result.reasons, [c.reason], c.name);
          assert.equal((await raw.waitClose(10_000)).code, 4002, c.name);
          const [row] = await cp.store.listAttestations({ agent_id: raw.reg.agent_id, limit: 1 });
          assert.equal(row?.ok, false, c.name);
          assert.equal(row?.failure, c.reason, c.name);
        }
        assert.equal(raw.streams_opened, 0, c.name);
      }
      // None of it disturbed the attested agent.
      for (let i = 0; i < 5; i++) assert.equal((await proxyGet(cp, '/x')).text, 'raw-agent');
      assert.equal(good.raw.streams_opened, 5);
      assert.ok(good.raw.open);
    });
  }
});
