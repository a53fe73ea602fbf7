// The market on PostgreSQL with three control-plane replicas sharing one database (each with its own
// ManualClock at the same time, schedulers stopped so every step is driven here): finalizing one ended period
// on all replicas at once, twice, settles every lock exactly once; fraud racing lease creation and renewal on
// other replicas never leaves an open lock toward the banned node; stake, unstake, slash and lease creation
// racing on different replicas never overdraw the stake nor unstake it from under an open lock.
//
// Lease creation and renewal are submitted as their ledger operations with liveness forced true: liveness is
// the submitting process's own tunnel view, while what is under test is the row locking the operations do in
// the shared database.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '@easyenclave/control-plane/clock';
import { providerEarnings, providerStake } from '@easyenclave/control-plane/ledger/chart';
import { verifyLedger } from '@easyenclave/control-plane/ledger-store/verify';
import { fraudOp, slashOp } from '@easyenclave/control-plane/market/ops-penalty';
import {
  createLeaseOp,
  renewOp,
  stakeOp,
  unstakeOp,
  type LeaseResult,
  type StakeResult,
} from '@easyenclave/control-plane/market/ops';
import { lockId, periodIndex, refundId, settleId } from '@easyenclave/control-plane/market/period';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, sleep, startCp, waitFor } from '../helpers/network.js';
import { pgSkipReason, withTempPgDatabase } from '../helpers/pg.js';
import { call } from '../ledger-http/client.js';
import {
  available,
  freshHealth,
  funded,
  HOUR,
  LAUNCHER,
  MIN,
  nodeAgent,
  pass,
  registerNode,
  stake,
  T0,
  type Party,
} from './util.js';

const REPLICAS = 3;
const PRICE = 100_000; // $0.10 per vCPU-hour
const VCPUS = 8;
const REQUIRED = PRICE * VCPUS * 24; // standard tier
const ROUNDS = 20;

const always = () => true;
/** JSON for assertion messages (results carry bigint amounts). */
const show = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

describe('market on PostgreSQL: concurrent replicas', { skip: await pgSkipReason() }, () => {
  let cps: ControlPlane[] = [];
  let clocks: ManualClock[] = [];
  let release: () => void = () => undefined;
  let done: Promise<void> = Promise.resolve();

  before(async () => {
    // The database lives as long as the suite: withTempPgDatabase drops it when `done` resolves (in `after`).
    const url = await new Promise<string>((resolve, reject) => {
      done = withTempPgDatabase((u) => {
        resolve(u);
        return new Promise<void>((r) => {
          release = r;
        });
      }).catch(reject);
    });
    for (let i = 0; i < REPLICAS; i++) {
      const clock = new ManualClock(T0 + 5 * MIN);
      // One after another: the first runs the migrations, the others find them done.
      const cp = await startCp(
        {
          EE_DATABASE_URL: url,
          EE_HEALTH_TIMEOUT_SEC: '1800',
          EE_SETTLEMENT_DELAY: '30m',
          EE_LAUNCHER_TOKEN: LAUNCHER,
        },
        { clock },
      );
      await cp.scheduler.stop();
      cps.push(cp);
      clocks.push(clock);
    }
  });
  after(async () => {
    try {
      // Every pool closed before the database is dropped (closeAll alone swallows a failed shutdown).
      for (const cp of cps) await cp.shutdown(0);
    } finally {
      await closeAll();
      release();
      await done;
    }
    cps = [];
    clocks = [];
  });

  const base = (i: number) => cps[i]!.api_url;
  const now = () => clocks[0]!.now();
  const setAll = (ms: number) => {
    for (const c of clocks) c.set(ms);
  };
  const db = () => cps[0]!.market.db;

  /** A fresh provider with one node per entry of `vcpus`, staked exactly what the nodes require together. */
  const provider = async (
    name: string,
    vcpus: number[] = [VCPUS],
  ): Promise<{ p: Party; nodes: { node_id: string; node_token: string }[] }> => {
    const p = await funded(base(0), 'provider', name, '$1000');
    const nodes = [];
    for (const v of vcpus)
      nodes.push(await registerNode(base(0), p, { price_per_vcpu_hour_micro_usd: PRICE, vcpus: v }));
    await stake(
      base(0),
      p,
      nodes[0]!.node_id,
      vcpus.reduce((s, v) => s + PRICE * v * 24, 0),
    );
    return { p, nodes };
  };

  const verify = async () => {
    const report = await verifyLedger(cps[0]!.ledger.db, 'postgres', now);
    assert.deepEqual(report.errors, []);
    assert.equal(report.ok, true);
  };

  const transferIds = async (like: string): Promise<string[]> =>
    (
      await cps[0]!.ledger.db
        .selectFrom('ledger_journal')
        .select('transfer_id')
        .where('transfer_id', 'like', like)
        .execute()
    )
      .map((r) => r.transfer_id as string)
      .sort();

  it('finalizing one ended period on every replica at once, twice, settles each lock exactly once', async () => {
    const {
      p,
      nodes: [node],
    } = await provider('Settle Nodes');
    const { node_id, node_token } = node!;
    await nodeAgent(cps[0]!, node_token); // the agent is attested and healthy on replica 0
    await freshHealth(cps[0]!, clocks[0]!, [node_id]);
    await cps[0]!.market.refreshRanking();
    const users: Party[] = [];
    for (let i = 0; i < 4; i++) users.push(await funded(base(0), 'user', `U${i}`, '$20'));
    const start = await Promise.all(users.map((u) => available(base(0), u.id)));
    const earnings0 = await available(base(0), p.id);
    const leases: { id: string; amount: number; user: Party }[] = [];
    for (const u of users) {
      const r = await call(base(0), 'POST', '/v1/leases', { token: u.key, body: { app: 'demo', vcpus: 2 } });
      assert.equal(r.status, 201, show(r.body));
      leases.push({ id: r.body.lease_id, amount: r.body.lock.amount_micro_usd, user: u });
    }
    // Authorised abuse reports (filed on replica 1, authorised on replica 2) void leases 1 and 3.
    for (const l of [leases[1]!, leases[3]!]) {
      const f = await call(base(1), 'POST', '/v1/abuse/reports', {
        token: LAUNCHER,
        body: { node: node_id, lease: l.id, reason: 'test: abuse' },
      });
      assert.equal(f.status, 201, show(f.body));
      assert.equal((await call(base(2), 'POST', `/v1/abuse/reports/${f.body.report_id}/authorize`, {})).status, 200);
    }
    const index = periodIndex(now(), HOUR);
    // Through the end of the period and past EE_SETTLEMENT_DELAY with fresh health, then every replica's clock.
    await pass(cps[0]!, clocks[0]!, HOUR - (now() % HOUR) + 31 * MIN, [node_id]);
    setAll(now());

    const finalize = (i: number) => call(base(i), 'POST', `/v1/settlements/${index}/finalize`, {});
    const rounds = [];
    for (let round = 0; round < 2; round++) rounds.push(...(await Promise.all(cps.map((_, i) => finalize(i)))));
    for (const r of rounds) {
      assert.equal(r.status, 200, show(r.body));
      assert.equal(r.body.posted, 2, show(r.body));
      assert.equal(r.body.voided, 2, show(r.body));
    }
    // The second round finds everything finalized; across the first, each lease was resolved by one replica.
    assert.ok(
      rounds.slice(REPLICAS).every((r) => r.body.already_finalized === leases.length),
      show(rounds.map((r) => r.body)),
    );
    const firstDid = rounds.slice(0, REPLICAS).reduce((n, r) => n + leases.length - r.body.already_finalized, 0);
    assert.equal(firstDid, leases.length, 'every lock resolved by exactly one replica');

    const expectPosted = (i: number) => i % 2 === 0;
    assert.deepEqual(
      await transferIds('settle:%'),
      leases
        .filter((_, i) => expectPosted(i))
        .map((l) => settleId(l.id, index))
        .sort(),
    );
    assert.deepEqual(
      await transferIds('refund:%'),
      leases
        .filter((_, i) => !expectPosted(i))
        .map((l) => refundId(l.id, index))
        .sort(),
    );
    const rows = await db()
      .selectFrom('market_lease_periods')
      .selectAll()
      .where('period', '=', index)
      .orderBy('lease_id')
      .execute();
    for (const l of leases) {
      const row = rows.find((x) => x.lease_id === l.id)!;
      assert.equal(row.status, expectPosted(leases.indexOf(l)) ? 'posted' : 'voided', `${l.id}: ${row.reasons}`);
      assert.equal(Number(row.amount), l.amount);
    }
    const posted = leases.filter((_, i) => expectPosted(i)).reduce((s, l) => s + l.amount, 0);
    assert.equal(await available(base(1), p.id), earnings0 + posted, 'provider earnings = sum of posted locks');
    for (const [i, l] of leases.entries()) {
      // No renewal ran (schedulers stopped): a posted lock is spent, a voided one refunded in full.
      assert.equal(await available(base(2), l.user.id), start[i]! - (expectPosted(i) ? l.amount : 0), `user ${i}`);
    }
    await verify();
  });

  it(`fraud on one replica racing lease creation and renewal on the others never leaves an open lock toward the banned node (${ROUNDS} rounds)`, async () => {
    const users: Party[] = [];
    for (let i = 0; i < 3; i++) users.push(await funded(base(0), 'user', `F${i}`, '$1000'));
    let seq = 0;
    const lease = (replica: number, node: { id: string; provider: string }, u: Party): Promise<LeaseResult> =>
      cps[replica]!.ledger.submit(
        createLeaseOp(
          {
            lease_id: `lease_pg${String(++seq).padStart(6, '0')}`,
            user_id: u.id,
            app_name: 'demo',
            vcpus: 1,
            periods: null,
            candidates: [node],
          },
          cps[replica]!.market.timing,
          always,
          (r) => r,
        ),
      );
    const retries0 = cps.map((c) => c.ledger.writer.stats.retries);
    const outcomes = { created: 0, renewed: 0, refused: 0, ended: 0, voided: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const {
        p,
        nodes: [n],
      } = await provider(`Fraud ${round}`);
      const node = { id: n!.node_id, provider: p.id };
      const before = await Promise.all(users.map((u) => lease(1, node, u)));
      assert.ok(
        before.every((r) => r.ok),
        show(before),
      );
      setAll(now() + HOUR); // the next period: the existing leases are due for renewal
      const index = periodIndex(now(), HOUR);
      // Fraud on replica 0; renewals on replica 2 and new leases on replicas 1 and 2. Every fourth round runs
      // fraud strictly first, the next strictly last (so both outcomes are certain to occur); the other rounds
      // race them all at once, fraud a little later in some.
      const runFraud = () => cps[0]!.ledger.submit(fraudOp(node.id, `test round ${round}`));
      const runRenewals = () =>
        Promise.all(
          before.map(
            (r, i) =>
              r.ok &&
              cps[2]!.ledger.submit(renewOp(r.lease.id, users[i]!.id, p.id, index, cps[2]!.market.timing, always)),
          ),
        );
      const runCreations = () => Promise.all(users.map((u, i) => lease(1 + (i % 2), node, u)));
      let fraud: Awaited<ReturnType<typeof runFraud>>;
      let renewed: Awaited<ReturnType<typeof runRenewals>>;
      let created: Awaited<ReturnType<typeof runCreations>>;
      if (round % 4 === 0) {
        fraud = await runFraud();
        [renewed, created] = await Promise.all([runRenewals(), runCreations()]);
      } else if (round % 4 === 1) {
        [renewed, created] = await Promise.all([runRenewals(), runCreations()]);
        fraud = await runFraud();
      } else {
        [fraud, renewed, created] = await Promise.all([sleep(round % 3).then(runFraud), runRenewals(), runCreations()]);
      }
      assert.equal(fraud.outcome, 'banned', show(fraud));
      for (const r of renewed) if (r) outcomes[r.outcome === 'renewed' ? 'renewed' : 'ended']++;
      for (const r of created) outcomes[r.ok ? 'created' : 'refused']++;
      if (fraud.outcome === 'banned') outcomes.voided += fraud.voided.length;

      // Nothing of the node is still locked, in the market's rows or in the ledger.
      const periods = await db()
        .selectFrom('market_lease_periods')
        .selectAll()
        .where('node_id', '=', node.id)
        .execute();
      assert.deepEqual(
        periods.filter((x) => x.status === 'locked').map((x) => `${x.lease_id}/${x.period}`),
        [],
        `round ${round}: locked periods`,
      );
      const leases = await db().selectFrom('market_leases').selectAll().where('node_id', '=', node.id).execute();
      assert.deepEqual(
        leases.filter((l) => l.status !== 'ended' || l.end_reason !== 'node_banned').map((l) => l.id),
        [],
        `round ${round}: leases not ended`,
      );
      const locks = await cps[0]!.ledger.db
        .selectFrom('ledger_journal')
        .select('transfer_id')
        .where('credit_account', '=', providerEarnings(p.id))
        .where('transfer_id', 'like', 'lock:%')
        .execute();
      // Every lock made toward the node has its lease-period row (money and market rows committed together)…
      assert.deepEqual(
        locks.map((l) => l.transfer_id as string).sort(),
        periods.map((x) => lockId(x.lease_id, x.period)).sort(),
        `round ${round}`,
      );
      const open = await cps[0]!.ledger.db
        .selectFrom('ledger_pending')
        .select(['id', 'status'])
        .where('id', 'in', ['', ...locks.map((l) => l.transfer_id as string)])
        .execute();
      // …and none is still pending, nor was any paid to the provider.
      assert.deepEqual(
        open.filter((o) => o.status !== 'voided'),
        [],
        `round ${round}`,
      );
      assert.equal(await available(base(0), p.id), 1000_000_000 - REQUIRED, `round ${round}: earnings`);
    }
    // Both ways happened (locks made before the ban and voided by it; creations or renewals refused after it).
    assert.ok(outcomes.refused + outcomes.ended > 0 && outcomes.voided > ROUNDS * users.length, show(outcomes));
    // Every id here is distinct, so a retried batch can only be a deadlock: market rows are locked node first.
    assert.deepEqual(
      cps.map((c) => c.ledger.writer.stats.retries - retries0[cps.indexOf(c)]!),
      [0, 0, 0],
      'deadlocks (batches retried)',
    );
    console.log(`fraud race outcomes: ${show(outcomes)}`);
    await verify();
  });

  it(`stake, unstake, slash and lease creation on different replicas never overdraw the stake nor free it under an open lock (${ROUNDS} rounds)`, async () => {
    const user = await funded(base(0), 'user', 'S', '$1000');
    const results = { unstaked: 0, leased: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      // Two nodes of one provider: stake is per provider, so the race spans nodes (and node row locks).
      const {
        p,
        nodes: [a, b],
      } = await provider(`Stake ${round}`, [VCPUS, VCPUS]);
      const held0 = 2 * REQUIRED;
      const SLASH = 3 * REQUIRED; // more than held: the balancing transfer takes what is left
      const runLease = () =>
        cps[1]!.ledger.submit(
          createLeaseOp(
            {
              lease_id: `lease_st${String(round).padStart(6, '0')}`,
              user_id: user.id,
              app_name: 'demo',
              vcpus: 1,
              periods: null,
              candidates: [{ id: b!.node_id, provider: p.id }],
            },
            cps[1]!.market.timing,
            always,
            (r) => r,
          ),
        );
      // Every fourth round places the lease strictly first (the unstake must then be refused); the others race.
      const early = round % 4 === 0 ? await runLease() : undefined;
      const [unstaked, leased, slashed, staked] = await Promise.all([
        cps[0]!.ledger.submit(
          unstakeOp(a!.node_id, p.id, undefined, `unstake:pg:${round}`, 0, (r: StakeResult & { amount?: bigint }) => r),
        ),
        early ?? runLease(),
        round % 2 === 0
          ? cps[2]!.ledger.submit(
              slashOp(a!.node_id, p.id, `slash:outage:pg:${round}`, BigInt(SLASH), 'outage', 'test'),
            )
          : Promise.resolve(null),
        cps[2]!.ledger.submit(stakeOp(b!.node_id, p.id, 1000n, `stake:pg:${round}`, (r: StakeResult) => r)),
      ]);
      if (early)
        assert.equal(early.ok && !unstaked.ok, true, `round ${round}: a lease placed first must block the unstake`);
      assert.equal(staked.ok, true, show(staked));
      // Either order is fine; both is not: the stake left with a lock open, or the lease locked with no stake.
      assert.ok(!(unstaked.ok && leased.ok), `round ${round}: unstaked ${unstaked.ok && unstaked.amount} and leased`);
      if (!unstaked.ok) assert.ok(['open_periods', 'nothing_staked'].includes(unstaked.code), show(unstaked));
      if (unstaked.ok) results.unstaked++;
      if (leased.ok) results.leased++;
      const account = (await cps[0]!.ledger.account(providerStake(p.id)))!;
      const held = account.credits_posted - account.debits_posted - account.debits_pending;
      assert.ok(held >= 0n, `round ${round}: stake overdrawn`);
      const out =
        BigInt(unstaked.ok ? (unstaked.amount ?? 0n) : 0n) +
        (slashed && slashed.outcome === 'slashed' ? slashed.amount : 0n);
      assert.equal(held, BigInt(held0) + 1000n - out, `round ${round}: stake = staked - unstaked - slashed`);
      assert.equal(account.credits_posted, BigInt(held0) + 1000n);
    }
    assert.ok(results.leased > 0, show(results));
    console.log(`stake race: ${show(results)}; writer retries: ${cps.map((c) => c.ledger.writer.stats.retries)}`);
    await verify();
  });
  it('a node whose agent another replica holds is live here while that replica reports it healthy, and not after', async () => {
    const {
      nodes: [node],
    } = await provider('Shared Liveness');
    const { node_id, node_token } = node!;
    await nodeAgent(cps[0]!, node_token); // only replica 0 holds the agent
    await freshHealth(cps[0]!, clocks[0]!, [node_id]);
    setAll(now());
    // Replica 1 holds no link of this node: it must learn from the agent's row that replica 0 keeps fresh.
    assert.equal(
      [...cps[1]!.hub.links].some((l) => l.node_id === node_id),
      false,
    );
    await waitFor(
      async () =>
        (
          await db()
            .selectFrom('agents')
            .select('last_health_pass_ms')
            .where('app_name', '=', 'demo')
            .orderBy('last_health_pass_ms', 'desc')
            .executeTakeFirst()
        )?.last_health_pass_ms === now(),
      5000,
      'replica 0 wrote the health pass',
    );
    await cps[1]!.market.refreshRemoteLive();
    assert.equal(cps[1]!.market.liveEligible(node_id, 'demo'), true);
    const u = await funded(base(1), 'user', 'Remote Lessee', '$20');
    const r = await call(base(1), 'POST', '/v1/leases', { token: u.key, body: { app: 'demo', vcpus: 1 } });
    assert.equal(r.status, 201, show(r.body));
    assert.equal(r.body.node_id, node_id);
    // Past the health timeout with no new pass written, the row is stale: replica 1 stops counting it.
    for (const c of clocks) c.advance(31 * MIN);
    await cps[1]!.market.refreshRemoteLive();
    assert.equal(cps[1]!.market.liveEligible(node_id, 'demo'), false);
    assert.equal((await call(base(1), 'DELETE', `/v1/leases/${r.body.lease_id}`, { token: u.key })).status, 200);
  });
});
