// Reservations (escrow) and usage receipts through a real control plane, real agents over the tunnel, the real
// ledger on SQLite and a manual clock: a reservation locks its quota on the cheapest eligible node with unit
// prices; a valid receipt moves exactly its amount; replays, unknown keys, another node's agent, forged
// signatures, wrong prices, over-quota and closed reservations move nothing; DELETE, the end of the lifetime,
// a failed re-attestation and an authorised abuse report refund the unclaimed rest; a period boundary rolls
// the lock over without moving money.
import assert from 'node:assert/strict';
import { canonicalRecordJson } from '@easyenclave/protocol/signed-record';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SandboxQuoteProvider, type QuoteProvider } from '@easyenclave/attestation';
import { ManualClock } from '@easyenclave/control-plane/clock';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import type { Agent } from '@easyenclave/agent';
import { closeAll, startAgent, startBackend, startCp, waitFor, wsUrl } from '../helpers/network.js';
import { call } from '../ledger-http/client.js';
import { freshHealth, funded, HOUR, LAUNCHER, MIN, pass, registerNode, stake, T0, type Party } from './util.js';
import { balances, postPrices, receipt, remember, signerOf, type Signer } from './reservation-util.js';

/** A sandbox quote provider that can be told to quote garbage (a failed re-attestation). */
class Breakable implements QuoteProvider {
  readonly evidence_type = 'sandbox' as const;
  broken = false;
  readonly inner = new SandboxQuoteProvider({ repo: 'acme/demo', release_tag: 'v1.0.0' });
  getQuote(report_data: Buffer): Promise<Buffer> {
    return this.inner.getQuote(this.broken ? Buffer.alloc(report_data.length) : report_data);
  }
}

describe('reservations and receipts', () => {
  const clock = new ManualClock(T0 + 5 * MIN);
  let cp: ControlPlane;
  let base: string;
  let user: Party;
  const prov: Record<string, Party> = {};
  const node: Record<string, string> = {};
  const agent: Record<string, Agent> = {};
  const quotes: Record<string, Breakable> = {};
  const signer: Record<string, Signer> = {};
  const nodes = () => Object.values(node);
  let firstId = '';

  const reserve = async (quota: string, lifetime_s = 3600, who = user) => {
    const r = await call(base, 'POST', '/v1/reservations', {
      token: who.key,
      body: { app: 'chat', quota, lifetime_s },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.match(r.body.token, /^rsvtok_/);
    remember(r.body);
    return r.body;
  };
  const show = async (id: string) => (await call(base, 'GET', `/v1/reservations/${id}`, { token: user.key })).body;
  const claim = async (...rs: unknown[]) => (await cp.reservations.claim(rs, 'test')).map((c) => c.outcome);

  before(async () => {
    cp = await startCp({ EE_HEALTH_TIMEOUT_SEC: '1800', EE_LAUNCHER_TOKEN: LAUNCHER }, { clock });
    base = cp.api_url;
    user = await funded(base, 'user', 'U', '$50');
    // A is the cheapest; B is dearer; C is cheapest of all but posts no unit prices (not eligible to reserve).
    for (const [k, price] of [
      ['A', '$0.05'],
      ['B', '$0.08'],
      ['C', '$0.01'],
    ] as const) {
      prov[k] = await funded(base, 'provider', `P${k}`, '$500');
      const r = await registerNode(base, prov[k]!, { price_per_vcpu_hour: price });
      node[k] = r.node_id;
      await stake(base, prov[k]!, r.node_id, 10_000_000);
      if (k !== 'C') await postPrices(base, prov[k]!, r.node_id);
      const backend = await startBackend();
      quotes[k] = new Breakable();
      agent[k] = startAgent(
        { control_ws: wsUrl(cp), backend_url: backend.url, app_name: 'chat', extra: { EE_NODE_TOKEN: r.node_token } },
        { quote_provider: quotes[k] },
      );
      signer[k] = signerOf(agent[k]!);
    }
    await freshHealth(cp, clock, nodes());
    await waitFor(
      async () => (await cp.reservations.db.selectFrom('market_agent_keys').selectAll().execute()).length === 3,
      10_000,
      'three receipt keys recorded',
    );
    await cp.market.refreshRanking();
  });
  after(closeAll);

  it('locks the quota on the cheapest node with unit prices and names its agent and keyset', async () => {
    const before = await balances(base, user.id);
    const r = await reserve('$5');
    firstId = r.reservation_id;
    assert.equal(r.node_id, node.A);
    assert.equal(r.agent_id, agent.A!.config.agent_id);
    assert.deepEqual(r.keyset, agent.A!.keys.toJSON());
    assert.equal(r.quota_micro_usd, 5_000_000);
    assert.equal(r.remaining_micro_usd, 5_000_000);
    assert.equal(r.status, 'open');
    const now = await balances(base, user.id);
    assert.equal(now.available, before.available - 5_000_000);
    assert.equal(now.total, before.total);
    // Too much: nothing is locked.
    const big = await call(base, 'POST', '/v1/reservations', {
      token: user.key,
      body: { app: 'chat', quota: '$1000', lifetime_s: 600 },
    });
    assert.equal(big.status, 402);
    assert.equal((await balances(base, user.id)).available, now.available);
    const none = await call(base, 'POST', '/v1/reservations', {
      token: user.key,
      body: { app: 'nothing-here', quota: '$1', lifetime_s: 600 },
    });
    assert.equal(none.status, 409);
    assert.equal(none.body.error.code, 'no_eligible_node');
  });

  it('a valid receipt moves exactly its amount; replays, strangers, forgeries and excess move nothing', async () => {
    const r = await reserve('$0.01'); // 10,000 micro-USD
    const id = r.reservation_id;
    const u0 = await balances(base, user.id);
    const p0 = await balances(base, prov.A!.id);
    const t = clock.now();
    // 1000 tokens in at 150/1k + 2000 out at 600/1k = 150 + 1200 = 1350 micro-USD.
    const good = await receipt(signer.A!, id, t);
    assert.deepEqual(await claim(good), [{ ok: true, amount: 1350 }]);
    const u1 = await balances(base, user.id);
    const p1 = await balances(base, prov.A!.id);
    assert.equal(u1.total, u0.total - 1350);
    assert.equal(u1.available, u0.available, 'the rest stays locked');
    assert.equal(p1.total, p0.total + 1350);

    const stranger = generateKeyPairSync('ed25519');
    const unknown = await receipt(
      {
        agent_id: signer.A!.agent_id,
        key_hex: Buffer.from(stranger.publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('hex'),
        privateKey: stranger.privateKey,
        seq: 0,
      },
      id,
      t,
    );
    const forged = await receipt(signer.A!, id, t);
    forged.receipt.units.tokens_out = 1; // signed with 2000
    forged.receipt.amount_micro_usd = 151;
    const wrongPrice = await receipt(signer.A!, id, t, undefined, {
      prices: { tokens_in: 1, tokens_out: 1, requests: 1, bytes: 1 },
    });
    const outcomes = await claim(
      good, // the same receipt again
      await receipt(signer.A!, id, t, undefined, { seq: good.receipt.seq }), // a new receipt reusing a sequence
      unknown,
      await receipt(signer.B!, id, t), // an agent of another node
      forged,
      wrongPrice,
      await receipt(signer.A!, id, t, undefined, { token_sha256: 'ab'.repeat(32) }), // not the reservation's token
      await receipt(signer.A!, id, t, { tokens_out: 100_000 }), // 60,000 > the 8,650 left
      await receipt(signer.A!, 'rsv_nope', t),
      await receipt(signer.A!, id, t - 60 * MIN), // before the key was attested
      { receipt: { nonsense: true }, signature: 'zz' },
    );
    assert.deepEqual(
      outcomes.map((o) => (o.ok ? 'ok' : o.code)),
      [
        'replay',
        'replay',
        'unknown_key',
        'wrong_node',
        'bad_signature',
        'wrong_price',
        'wrong_token',
        'over_quota',
        'unknown_reservation',
        'not_attested_at_time',
        'malformed',
      ],
    );
    assert.deepEqual(await balances(base, user.id), u1);
    assert.deepEqual(await balances(base, prov.A!.id), p1);
    const v = await show(id);
    assert.equal(v.claimed_micro_usd, 1350);
    assert.equal(v.remaining_micro_usd, 10_000 - 1350);
    assert.equal(v.receipts_total, 1);
    assert.deepEqual(v.receipts[0].signed, good);
    // Stored byte for byte as the canonical JSON of what the agent sent.
    const stored = await cp.ledger.db
      .selectFrom('market_receipts')
      .select('signed')
      .where('reservation_id', '=', id)
      .executeTakeFirstOrThrow();
    assert.equal(stored.signed, canonicalRecordJson(good));

    // Several in one batch, in order, up to the quota exactly: the last one that fits ends the reservation.
    const many = [];
    for (let i = 0; i < 6; i++) many.push(await receipt(signer.A!, id, t, { tokens_out: 2000 })); // 1200 each
    const got = await claim(...many);
    assert.deepEqual(
      got.map((o) => (o.ok ? o.amount : o.code)),
      [1200, 1200, 1200, 1200, 1200, 1200],
    );
    // One ledger claim for the whole batch, of exactly its sum, and the rest locked again once.
    const batchClaim = await cp.ledger.transfer(`rsvclaim:${id}:1`);
    assert.ok(batchClaim?.kind === 'transfer');
    assert.equal(batchClaim.transfer.amount, 7200n);
    assert.equal(batchClaim.transfer.pending_id, `rsv:${id}:1`);
    const relock = await cp.ledger.transfer(`rsv:${id}:2`);
    assert.ok(relock?.kind === 'transfer');
    assert.equal(relock.transfer.amount, BigInt(10_000 - 1350 - 7200));
    assert.equal(await cp.ledger.transfer(`rsvclaim:${id}:2`), undefined, 'no claim per receipt');
    const rest = 10_000 - 1350 - 7200; // 1,450
    const last = await receipt(signer.A!, id, t, { tokens_out: 3000 }); // 1,800
    assert.deepEqual(await claim(last), [{ ok: false, code: 'over_quota' }]);
    const exact = await receipt(signer.A!, id, t, { requests: rest }); // 1,000 per 1k requests: 1 each
    assert.deepEqual(await claim(exact), [{ ok: true, amount: rest }]);
    const done = await show(id);
    assert.equal(done.status, 'closed');
    assert.equal(done.end_reason, 'exhausted');
    assert.equal(done.claimed_micro_usd, 10_000);
    assert.deepEqual(await claim(await receipt(signer.A!, id, t, { requests: 1 })), [
      { ok: false, code: 'reservation_closed' },
    ]);
    assert.equal((await balances(base, user.id)).total, u0.total - 10_000);
    assert.equal((await balances(base, prov.A!.id)).total, p0.total + 10_000);
  });

  it('DELETE refunds the unclaimed rest; later receipts move nothing', async () => {
    const u0 = await balances(base, user.id);
    const r = await reserve('$1');
    assert.deepEqual(await claim(await receipt(signer.A!, r.reservation_id, clock.now())), [
      { ok: true, amount: 1350 },
    ]);
    const d = await call(base, 'DELETE', `/v1/reservations/${r.reservation_id}`, { token: user.key });
    assert.equal(d.status, 200);
    assert.equal(d.body.status, 'closed');
    assert.equal(d.body.end_reason, 'cancelled');
    assert.equal(d.body.remaining_micro_usd, 0);
    const u1 = await balances(base, user.id);
    assert.deepEqual(u1, { available: u0.available - 1350, total: u0.total - 1350 });
    assert.deepEqual(await claim(await receipt(signer.A!, r.reservation_id, clock.now())), [
      { ok: false, code: 'reservation_closed' },
    ]);
    assert.deepEqual(await balances(base, user.id), u1);
    // Someone else's reservation is not found.
    const other = await funded(base, 'user', 'V', '$1');
    assert.equal((await call(base, 'GET', `/v1/reservations/${r.reservation_id}`, { token: other.key })).status, 404);
  });

  it('at the end of its lifetime (+ receipt grace) the rest returns to the user', async () => {
    const u0 = await balances(base, user.id);
    const r = await reserve('$2', 120);
    const t = clock.now();
    await pass(cp, clock, 2 * MIN + 10_000, nodes());
    // Signed before the end, arriving within the grace: accepted. Signed after the end: refused.
    assert.deepEqual(await claim(await receipt(signer.A!, r.reservation_id, t + 60_000)), [{ ok: true, amount: 1350 }]);
    assert.deepEqual(await claim(await receipt(signer.A!, r.reservation_id, t + 121_000)), [
      { ok: false, code: 'outside_reservation' },
    ]);
    await pass(cp, clock, 60_000, nodes());
    await cp.scheduler.tick();
    const v = await show(r.reservation_id);
    assert.equal(v.status, 'closed');
    assert.equal(v.end_reason, 'expired');
    assert.deepEqual(await balances(base, user.id), { available: u0.available - 1350, total: u0.total - 1350 });
  });

  it('a period boundary voids the remainder and locks it again for the new period: no money moves', async () => {
    const r = await reserve('$3', 3 * 3600);
    const id = r.reservation_id;
    const u0 = await balances(base, user.id);
    const period = cp.market.timing.period_ms;
    await pass(cp, clock, period - (clock.now() % period), nodes());
    await cp.scheduler.tick();
    assert.deepEqual(await balances(base, user.id), u0);
    assert.ok(await cp.ledger.transfer(`rsvrefund:${id}:0`), 'lock 0 voided');
    assert.ok(await cp.ledger.transfer(`rsv:${id}:1`), 'lock 1 made');
    assert.deepEqual(await claim(await receipt(signer.A!, id, clock.now())), [{ ok: true, amount: 1350 }]);
    assert.equal((await show(id)).remaining_micro_usd, 3_000_000 - 1350);
    await call(base, 'DELETE', `/v1/reservations/${id}`, { token: user.key });
    assert.deepEqual(await balances(base, user.id), {
      available: u0.available + 3_000_000 - 1350,
      total: u0.total - 1350,
    });
  });

  it('a failed re-attestation on the node refunds the unclaimed rest (zero tolerance)', async () => {
    // B becomes the cheapest node with prices once A fails; reserve on A first.
    const u0 = await balances(base, user.id);
    const r = await reserve('$4');
    assert.equal(r.node_id, node.A);
    assert.deepEqual(await claim(await receipt(signer.A!, r.reservation_id, clock.now())), [
      { ok: true, amount: 1350 },
    ]);
    quotes.A!.broken = true;
    cp.hub.reattestAll();
    await waitFor(
      async () =>
        (await cp.store.listAttestations({ agent_id: agent.A!.config.agent_id, limit: 5 })).some((a) => !a.ok),
      10_000,
      'a failed attestation of A',
    );
    // A receipt arriving now moves nothing: the node failed since the reservation began.
    assert.deepEqual(await claim(await receipt(signer.A!, r.reservation_id, clock.now())), [
      { ok: false, code: 'reservation_closed' },
    ]);
    await cp.scheduler.tick();
    const v = await show(r.reservation_id);
    assert.equal(v.status, 'closed');
    assert.equal(v.end_reason, 'attestation_failed');
    // The first test's $5 reservation on A, still open, is refunded too.
    const first = await show(firstId);
    assert.equal(first.end_reason, 'attestation_failed');
    assert.deepEqual(await balances(base, user.id), {
      available: u0.available - 1350 + 5_000_000,
      total: u0.total - 1350,
    });
    quotes.A!.broken = false;
  });

  it('an authorised abuse report on the node refunds the unclaimed rest at once', async () => {
    const u0 = await balances(base, user.id);
    const r = await reserve('$1');
    assert.equal(r.node_id, node.B, 'A failed its attestation; B is next');
    const filed = await call(base, 'POST', '/v1/abuse/reports', {
      token: LAUNCHER,
      body: { node: node.B, period: new Date(clock.now() - (clock.now() % HOUR)).toISOString(), reason: 'spam' },
    });
    assert.equal(filed.status, 201, JSON.stringify(filed.body));
    assert.equal((await show(r.reservation_id)).status, 'open', 'a filed report is not yet authorised');
    const auth = await call(base, 'POST', `/v1/abuse/reports/${filed.body.report_id}/authorize`, {});
    assert.equal(auth.status, 200, JSON.stringify(auth.body));
    const v = await show(r.reservation_id);
    assert.equal(v.status, 'closed');
    assert.match(v.end_reason, /^abuse_report:/);
    assert.deepEqual(await balances(base, user.id), u0);
  });

  it('a fraud ruling on the node refunds the unclaimed rest at once', async () => {
    clock.advance(1000); // after the abuse report authorised above: it does not count against a new reservation
    const u0 = await balances(base, user.id);
    const r = await reserve('$1');
    const k = Object.keys(node).find((x) => node[x] === r.node_id)!;
    assert.deepEqual(await claim(await receipt(signer[k]!, r.reservation_id, clock.now())), [
      { ok: true, amount: 1350 },
    ]);
    const f = await call(base, 'POST', `/v1/nodes/${r.node_id}/fraud`, { body: { reason: 'test ruling' } });
    assert.equal(f.status, 200, JSON.stringify(f.body));
    const v = await show(r.reservation_id);
    assert.equal(v.status, 'closed');
    assert.equal(v.end_reason, 'node_banned');
    assert.deepEqual(await balances(base, user.id), { available: u0.available - 1350, total: u0.total - 1350 });
  });
});
