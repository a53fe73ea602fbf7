#!/usr/bin/env node
// Confidential inference with the SDK: reserve $1 of escrow for the app, verify the reservation's agent, send
// sealed chat requests (one plain, one streamed), print the answers and the agent's signed usage receipts, end
// the reservation, and show that the balance moved by exactly the receipts' sum. One JSON line per step.
//   EE_URL         control plane API (default http://127.0.0.1:8088)
//   EE_API_KEY     a user's API key (it pays)
//   EE_APP         app name (default inference)
//   EE_NETWORK     the network you expect (sandbox-1 accepts sandbox evidence, for development only)
//   EE_POLICY      path of an attestation policy JSON file (needed to verify TDX agents)
import { readFileSync } from 'node:fs';
import { AttestationError, EasyEnclave, EasyEnclaveError } from '@easyenclave/sdk';

const APP = process.env.EE_APP ?? 'inference';
const NETWORK = process.env.EE_NETWORK;
/** How long to wait for the agent's receipts to reach the control plane (they travel in batches). */
const RECEIPTS_WAIT_MS = 20_000;

const ee = new EasyEnclave({
  url: process.env.EE_URL ?? 'http://127.0.0.1:8088',
  apiKey: process.env.EE_API_KEY,
  ...(NETWORK ? { network: NETWORK } : {}),
  ...(process.env.EE_POLICY ? { policy: JSON.parse(readFileSync(process.env.EE_POLICY, 'utf8')) } : {}),
  timeout_ms: 15_000,
});
const out = (step, value) =>
  process.stdout.write(`${JSON.stringify({ step, ...value }, (_k, v) => (typeof v === 'bigint' ? Number(v) : v))}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
  const before = await ee.balance();
  const r = await ee.createReservation({ app: APP, quota: '$1', lifetime_s: 600 });
  out('reserved', {
    reservation_id: r.reservation_id,
    node_id: r.node_id,
    agent_id: r.agent_id,
    quota: r.quota_micro_usd,
  });

  const app = await ee.connect(APP, {
    confidential: true,
    reservation: r, // its id (sent in clear) and its token (sent sealed: only we can bill it)
    verify: NETWORK === 'sandbox-1' ? { allow_sandbox: true } : true,
  });
  out('verified', {
    agent_id: app.verified.agent_id,
    evidence_type: app.verified.evidence_type,
    hpke_public_key: app.verified.keyset.hpke_public_key,
  });

  const question = 'what does the control plane see of this question';
  const res = await app.post('/v1/chat/completions', {
    model: 'ee-echo-1',
    messages: [{ role: 'user', content: question }],
  });
  const answer = await res.json();
  out('answer', { content: answer.choices[0].message.content, usage: answer.usage });

  const streamed = await app.post('/v1/chat/completions', {
    model: 'ee-echo-1',
    stream: true,
    messages: [{ role: 'user', content: 'stream this answer back to me' }],
  });
  let text = '';
  for (const line of (await streamed.text()).split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const ev = JSON.parse(line.slice(6));
    text += ev.choices[0]?.delta?.content ?? '';
  }
  out('streamed', { content: text });

  // The agent sends its receipts to the control plane in batches: wait until both are claimed.
  const deadline = Date.now() + RECEIPTS_WAIT_MS;
  while ((await ee.reservation(r.reservation_id)).receipts_total < 2 && Date.now() < deadline) await sleep(200);
  const { receipts, claimed_micro_usd } = await app.receipts();
  for (const rc of receipts)
    out('receipt', {
      seq: rc.seq,
      kind: rc.kind,
      units: rc.units,
      amount_micro_usd: rc.amount_micro_usd,
      request_sha256: rc.request_sha256,
    });
  const sum = receipts.reduce((s, rc) => s + rc.amount_micro_usd, 0);

  await ee.cancelReservation(r.reservation_id);
  const after = await ee.balance();
  const moved = Number(before.total_micro_usd - after.total_micro_usd);
  out('balance', {
    before_micro_usd: before.total_micro_usd,
    after_micro_usd: after.total_micro_usd,
    moved_micro_usd: moved,
    receipts_sum_micro_usd: sum,
    claimed_micro_usd,
    exact: moved === sum && Number(claimed_micro_usd) === sum && after.locked_micro_usd === before.locked_micro_usd,
  });
  if (moved !== sum) process.exitCode = 1;
} catch (err) {
  if (err instanceof AttestationError) out('refused', { reasons: err.reasons });
  else if (err instanceof EasyEnclaveError)
    out('error', { kind: err.kind, status: err.status, code: err.code, message: err.message });
  else out('error', { message: err.message });
  process.exitCode = 1;
}
