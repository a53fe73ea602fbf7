// Property-based model test of a job's money: random sequences of job creation, launcher acceptance, start,
// finish with a signed usage (any end state, billed up to beyond its max runtime), cancel, refusal, node loss,
// the control plane's deadline and time passing (lock expiry), run through the real LedgerOps on a real
// LedgerStore — an SQLite file and a PostgreSQL database. After every step: the ledger invariants on the full
// state loaded back from the database, and per job: locked = settled + refunded once it ended (and the lock
// still pending while it runs), never more than vCPUs × price × max runtime settled, the row's state history
// ends in its state with non-decreasing times, and capacity never overcommitted on a node.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { identityAccountInputs, PLATFORM_ISSUANCE } from '@easyenclave/control-plane/ledger/chart';
import { checkInvariants } from '@easyenclave/control-plane/ledger/invariants';
import { LedgerStore } from '@easyenclave/control-plane/ledger-store/ledger-store';
import { createLeaseOp, stakeOp } from '@easyenclave/control-plane/market/ops';
import { requiredStake } from '@easyenclave/control-plane/market/policy';
import { MARKET_MIGRATIONS } from '@easyenclave/control-plane/market/store/migrations';
import { createJobOp, jobEventOp, type JobRow } from '@easyenclave/control-plane/jobs/ops';
import { jobLockId, jobSettleId, jobRefundId } from '@easyenclave/control-plane/jobs/money';
import { isTerminal, type JobEvent, type JobStep, type TerminalState } from '@easyenclave/control-plane/jobs/state';
import { JOBS_MIGRATIONS } from '@easyenclave/control-plane/jobs/store/migrations';
import { retryJobOp, type JobAttempt } from '@easyenclave/control-plane/jobs/retry';
import { DEPLOYMENTS_MIGRATIONS } from '@easyenclave/control-plane/deployments/store/migrations';
import { createDeploymentOp } from '@easyenclave/control-plane/deployments/ops';
import { lockId, periodIndex } from '@easyenclave/control-plane/market/period';
import type { Db as JobsDb } from '@easyenclave/control-plane/store/database';
import { openStore, runMigrations, type StoreOptions } from '@easyenclave/control-plane/store/index';
import { pgSkipReason, withTempPgDatabase } from '../helpers/pg.js';
import { tmpDir } from '../helpers/tmp.js';
import { loadLedgerState } from '../helpers/ledger-state.js';
import { insertNode, mintTransfers } from '../helpers/market-rows.js';

const MIN = 60_000;
const KEY = 'a'.repeat(64);

type Cmd =
  | { t: 'create'; user: number; vcpus: number; memory_mib: number; max_min: number; retry: boolean }
  | { t: 'accept' | 'start'; pick: number }
  | { t: 'finish'; pick: number; state: TerminalState; billed_pct: number }
  | { t: 'cancel' | 'refuse' | 'lost' | 'deadline' | 'node_lost'; pick: number }
  | { t: 'time'; ms: number };

const pick = fc.nat(40);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('create' as const),
      user: fc.nat(1),
      vcpus: fc.integer({ min: 1, max: 3 }),
      memory_mib: fc.constantFrom(64, 512, 2048),
      max_min: fc.integer({ min: 1, max: 90 }),
      retry: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constantFrom('accept' as const, 'start' as const), pick }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('finish' as const),
      pick,
      state: fc.constantFrom<TerminalState>('succeeded', 'failed', 'timed_out', 'cancelled'),
      billed_pct: fc.integer({ min: 0, max: 150 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constantFrom(
        'cancel' as const,
        'refuse' as const,
        'lost' as const,
        'deadline' as const,
        'node_lost' as const,
      ),
      pick,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('time' as const), ms: fc.integer({ min: 1, max: 3 * 60 * MIN }) }),
  },
);

const seen = { created: 0, settled: 0, refunded: 0, expired: 0, overcap: 0, cancelled: 0, lost: 0, retried: 0 };

async function runModel(open: () => Promise<StoreOptions>, runs: number): Promise<void> {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 50 }), async (cmds) => {
      run++;
      const tag = `${process.pid.toString(16)}${run.toString(16)}`.padStart(12, '0').slice(-12);
      let now = Date.UTC(2026, 0, 1) + 7 * MIN;
      const store = await openStore(await open());
      const ledger = await LedgerStore.open(store.db, store.dialect, () => now);
      await runMigrations(store.db, store.dialect, MARKET_MIGRATIONS);
      await runMigrations(store.db, store.dialect, JOBS_MIGRATIONS);
      await runMigrations(store.db, store.dialect, DEPLOYMENTS_MIGRATIONS);
      const db = store.db as unknown as JobsDb;
      const users = [`user:${tag}00000001`, `user:${tag}00000002`];
      const providers = [`provider:${tag}0000000a`, `provider:${tag}0000000b`];
      const nodes = providers.map((p, i) => ({
        id: `node_${tag}000${i}`,
        provider: p,
        price: 1000 * (i + 1) + 7,
        vcpus: 4,
        memory_mib: 4096,
      }));
      try {
        for (const id of [...users, ...providers]) await ledger.createAccounts(identityAccountInputs(id));
        // The second user is poor: some jobs are refused for want of funds.
        const amount = (i: number) => (i === 1 ? 3_000n : 100_000_000n);
        await ledger.createTransfers(mintTransfers([...users, ...providers], (i) => `mint:${tag}:${i}`, amount));
        for (const n of nodes) {
          await insertNode(db, n, now);
          await ledger.submit(
            stakeOp(n.id, n.provider, requiredStake(BigInt(n.price), n.vcpus, 'economy'), `stake:${n.id}`, (r) => r),
          );
        }
        const candidates = nodes.map((n) => ({
          id: n.id,
          provider: n.provider,
          vcpus_total: n.vcpus,
          memory_mib_total: n.memory_mib,
          hpke_public_key: KEY,
        }));
        const ids: string[] = [];
        let seq = 0;
        // Every run starts by filling both nodes (the third job finds no room), cancelling one job before it
        // starts, losing the other's node, and ending a short job only after its lock has expired, so each kind
        // of step is reached; the random steps do the rest.
        const fill: Cmd = { t: 'create', user: 0, vcpus: 3, memory_mib: 64, max_min: 30, retry: false };
        const short: Cmd = { t: 'create', user: 0, vcpus: 1, memory_mib: 64, max_min: 1, retry: true };
        const late: Cmd[] = [short, { t: 'accept', pick: 2 }, { t: 'start', pick: 2 }, { t: 'time', ms: 3 * 60 * MIN }];
        const end: Cmd = { t: 'finish', pick: 2, state: 'succeeded', billed_pct: 50 };
        const settles: Cmd[] = [short, { t: 'accept', pick: 3 }, { t: 'start', pick: 3 }, { ...end, pick: 3 }];
        // A retried job: lost on its node, queued on the other with a fresh lock, then settled there.
        const retried: Cmd[] = [short, { t: 'start', pick: 4 }, { t: 'node_lost', pick: 4 }, { ...end, pick: 4 }];
        const opening: Cmd[] = [fill, fill, fill, { t: 'cancel', pick: 0 }, { t: 'lost', pick: 1 }, ...late, end];
        const steps: Cmd[] = [...opening, ...settles, ...retried, ...cmds];
        for (const c of steps) {
          seq++;
          if (c.t === 'create') {
            const r = await ledger.submit(
              createJobOp(
                {
                  id: `job_${tag}${String(seq).padStart(6, '0')}`,
                  user_id: users[c.user]!,
                  image: 'img',
                  command: null,
                  vcpus: c.vcpus,
                  memory_mib: c.memory_mib,
                  max_runtime_ms: c.max_min * MIN,
                  network: false,
                  sealed_env: 'c2VhbGVk',
                  env_key: KEY,
                  result_key: KEY,
                  retry_on_node_loss: c.retry,
                },
                candidates,
                () => true,
                (x) => x,
              ),
            );
            if (r.ok) {
              seen.created++;
              ids.push(r.job.id);
              assert.ok(nodes.some((n) => n.id === r.job.node_id));
            } else if (r.code === 'no_node_with_capacity') seen.overcap++;
            else assert.equal(r.code, 'insufficient_funds', JSON.stringify(r));
          } else if (c.t === 'time') {
            now += c.ms;
          } else {
            const id = ids[c.pick % Math.max(1, ids.length)];
            if (id === undefined) continue;
            const row = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
            if (c.t === 'node_lost') {
              const r = await ledger.submit(retryJobOp(id, 'model', candidates, () => true));
              assert.equal(r.ok, !isTerminal(row.state), JSON.stringify(r));
              if (r.ok && r.job.state === 'queued') {
                seen.retried++;
                assert.equal(r.job.attempt, 2);
                assert.notEqual(r.job.node_id, row.node_id, 'never retried on the lost node');
                assert.equal(r.job.env_pending, 1, 'an env sealed to the lost launcher waits to be sealed again');
              } else if (r.ok) assert.equal(r.job.state, 'failed');
              if (r.ok) seen.lost++;
              continue;
            }
            let ev: JobEvent;
            if (c.t === 'accept') ev = { type: 'accepted' };
            else if (c.t === 'start') ev = { type: 'started' };
            else if (c.t === 'finish')
              ev = {
                type: 'finished',
                state: c.state,
                reason: 'model',
                billed_vcpu_ms: Math.floor((row.vcpus * row.max_runtime_ms * c.billed_pct) / 100),
              };
            else if (c.t === 'cancel') ev = { type: 'cancel', reason: 'model' };
            else if (c.t === 'refuse') ev = { type: 'refused', reason: 'model' };
            else if (c.t === 'lost') ev = { type: 'lost', reason: 'model' };
            else ev = { type: 'deadline', reason: 'model' };
            const r = await ledger.submit(jobEventOp(id, ev));
            if (isTerminal(row.state)) assert.equal(r.ok, false, 'an ended job takes no event');
            if (r.ok && c.t === 'cancel') seen.cancelled++;
            if (r.ok && c.t === 'lost') seen.lost++;
            // Applying the same ending twice changes nothing.
            if (r.ok && isTerminal(r.job.state)) assert.equal((await ledger.submit(jobEventOp(id, ev))).ok, false);
          }

          // ---- invariants after every step ----
          const state = await loadLedgerState(db);
          assert.deepEqual(checkInvariants(state), []);
          const jobs = (await db
            .selectFrom('jobs')
            .selectAll()
            .where('id', 'in', ids.length ? ids : ['-'])
            .execute()) as JobRow[];
          for (const j of jobs) {
            // Every earlier attempt was refunded in full, its lock voided.
            const earlier = JSON.parse(j.attempts ?? '[]') as JobAttempt[];
            assert.equal(earlier.length, j.attempt - 1);
            for (const a of earlier) {
              const l = state.transfers.get(jobLockId(j.id, a.attempt));
              assert.ok(l && l.amount === BigInt(a.lock_micro));
              assert.equal(a.settled_micro + a.refunded_micro, a.lock_micro, 'locked = settled + refunded (attempt)');
              assert.equal(a.settled_micro, 0);
              assert.ok(['voided', 'expired'].includes(state.pending.get(l.id)!));
            }
            const lock = state.transfers.get(jobLockId(j.id, j.attempt));
            assert.ok(lock && lock.flags.pending && lock.amount === BigInt(j.lock_micro), 'every job has its lock');
            assert.equal(lock.debit_account, j.user_id);
            const status = state.pending.get(lock.id);
            const settle = state.transfers.get(jobSettleId(j.id, j.attempt));
            const refund = state.transfers.get(jobRefundId(j.id, j.attempt));
            const history = JSON.parse(j.history) as JobStep[];
            assert.equal(history[history.length - 1]!.state, j.state, 'history ends in the state');
            for (let i = 1; i < history.length; i++) assert.ok(history[i]!.at_ms >= history[i - 1]!.at_ms);
            const cap = (BigInt(j.price_micro) * BigInt(j.vcpus * j.max_runtime_ms)) / 3_600_000n;
            if (isTerminal(j.state)) {
              assert.equal(
                BigInt(j.settled_micro!) + BigInt(j.refunded_micro!),
                lock.amount,
                'locked = settled + refunded',
              );
              assert.ok(BigInt(j.settled_micro!) <= cap, 'never more than vCPUs × price × max runtime');
              if (status === 'posted') {
                seen.settled++;
                assert.equal(settle?.amount, BigInt(j.settled_micro!));
                assert.ok(!refund);
              } else if (status === 'voided') {
                seen.refunded++;
                assert.equal(j.settled_micro, 0);
                assert.ok(refund && !settle);
              } else {
                seen.expired++;
                assert.equal(status, 'expired');
                assert.equal(j.settled_micro, 0);
              }
            } else {
              assert.ok(status === 'pending' || status === 'expired', `running job's lock is ${status}`);
              assert.ok(!settle && !refund);
              assert.equal(j.settled_micro, null);
            }
          }
          for (const n of nodes) {
            const active = jobs.filter((j) => j.node_id === n.id && !isTerminal(j.state));
            assert.ok(active.reduce((s, j) => s + j.vcpus, 0) <= n.vcpus, 'vCPUs never overcommitted');
            assert.ok(active.reduce((s, j) => s + j.memory_mib, 0) <= n.memory_mib, 'memory never overcommitted');
          }
        }
      } finally {
        await ledger.close();
        await store.close();
      }
    }),
    { numRuns: runs },
  );
}

const NOW = Date.UTC(2026, 0, 1);
const NODE_A = 'node_0000000000000000';
const NODE_B = 'node_0000000000000001';
const PROVIDER = 'provider:0000000000000000000a';
const TIMING = { period_ms: 60 * MIN, grace_ms: 6 * 60 * MIN };

/** Launchers of 4 vCPUs and 4096 MiB on two staked 4-vCPU nodes, and a funded user. */
async function openBatchFixture() {
  const store = await openStore({ db_path: join(tmpDir('ee-jobs-batch-'), 'b.db') });
  const ledger = await LedgerStore.open(store.db, store.dialect, () => NOW);
  await runMigrations(store.db, store.dialect, MARKET_MIGRATIONS);
  await runMigrations(store.db, store.dialect, JOBS_MIGRATIONS);
  await runMigrations(store.db, store.dialect, DEPLOYMENTS_MIGRATIONS);
  const db = store.db as unknown as JobsDb;
  const user = 'user:00000000000000000001';
  for (const id of [user, PROVIDER]) await ledger.createAccounts(identityAccountInputs(id));
  await ledger.createTransfers(
    [user, PROVIDER].map((id, i) => ({
      id: `mint:${i}`,
      debit_account: PLATFORM_ISSUANCE,
      credit_account: id.startsWith('provider') ? `${id}:earnings` : id,
      amount: 100_000_000n,
    })),
  );
  for (const id of [NODE_A, NODE_B]) {
    await insertNode(db, { id, provider: PROVIDER, name: id, vcpus: 4, price: 1000 }, NOW);
    await ledger.submit(stakeOp(id, PROVIDER, requiredStake(1000n, 4, 'economy'), `s${id}`, (r) => r));
  }
  const close = async () => {
    await ledger.close();
    await store.close();
  };
  return { now: NOW, store, ledger, db, user, close };
}

const candidateOf = (id: string) => ({
  id,
  provider: PROVIDER,
  vcpus_total: 4,
  memory_mib_total: 4096,
  hpke_public_key: KEY,
});

function jobOp(i: number, user: string, vcpus: number, memory_mib: number, c: ReturnType<typeof candidateOf>) {
  const job = {
    id: `job_${String(i).padStart(20, '0')}`,
    user_id: user,
    image: 'img',
    command: null,
    vcpus,
    memory_mib,
    max_runtime_ms: MIN,
    network: false,
    sealed_env: null,
    env_key: null,
    result_key: KEY,
  };
  return createJobOp(
    job,
    [c],
    () => true,
    (x) => x,
  );
}

const leaseOf = (i: number) => `lease_${String(i).padStart(16, '0')}`;

function deploymentOp(i: number, user: string, vcpus: number, memory_mib: number, c: ReturnType<typeof candidateOf>) {
  const d = {
    id: `dep_${String(i).padStart(20, '0')}`,
    lease_id: leaseOf(i),
    user_id: user,
    app: 'web',
    image: 'img',
    command: null,
    port: 8080,
    vcpus,
    memory_mib,
    periods: null,
    sealed_env: null,
    env_key: null,
  };
  return createDeploymentOp(
    d,
    [c],
    TIMING,
    () => true,
    (x) => x,
  );
}

const pgSkip = await pgSkipReason();

describe('job money model', () => {
  it('on SQLite files: locked = settled + refunded per job, ledger invariants after every step', async () => {
    const dir = tmpDir('ee-jobs-model-');
    let n = 0;
    await runModel(async () => ({ db_path: join(dir, `m${++n}.db`) }), Number(process.env.EE_MODEL_RUNS ?? 60));
    for (const k of ['created', 'settled', 'refunded', 'expired', 'overcap', 'cancelled', 'lost', 'retried'] as const)
      assert.ok(seen[k] > 0, `no ${k} in any run: ${JSON.stringify(seen)}`);
  });

  it("jobs placed in one group-commit batch never overcommit a node, counting its deployments' containers", async () => {
    const { now, ledger, db, user, close } = await openBatchFixture();
    try {
      // A running deployment holds 1 vCPU of the node's 4, a stopped one nothing.
      await db
        .insertInto('market_leases')
        .values({
          id: 'lease_1',
          user_id: user,
          app_name: 'web',
          node_id: 'node_0000000000000000',
          vcpus: 1,
          price_micro: 1000,
          periods: null,
          periods_locked: 1,
          first_period: 0,
          last_period: 0,
          status: 'active',
          end_reason: null,
          created_ms: now,
          ended_ms: null,
        })
        .execute();
      for (const [id, state] of [
        ['dep_1', 'running'],
        ['dep_2', 'stopped'],
      ] as const)
        await db
          .insertInto('deployments')
          .values({
            id,
            user_id: user,
            app: 'web',
            lease_id: 'lease_1',
            node_id: 'node_0000000000000000',
            image: 'img',
            command: null,
            port: 8080,
            vcpus: 1,
            memory_mib: 64,
            sealed_env: null,
            env_key: null,
            state,
            reason: '',
            generation: 1,
            retiring_generation: null,
            image_id: null,
            image_digest: null,
            created_ms: now,
            updated_ms: now,
          })
          .execute();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => ledger.submit(jobOp(i, user, 1, 64, candidateOf(NODE_A)))),
      );
      assert.equal(results.filter((r) => r.ok).length, 3, 'exactly the 3 vCPUs the deployment left were placed');
      const seqs = results.flatMap((r) => (r.ok ? [r.job.assignment_seq] : []));
      assert.equal(new Set(seqs).size, seqs.length, 'assignment sequence numbers are unique');
    } finally {
      await close();
    }
  });

  it('plain leases created in one group-commit batch never overcommit a node', async () => {
    const { ledger, db, user, close } = await openBatchFixture();
    try {
      // Six leases of 1 vCPU race in one batch for a 4-vCPU node: each reads the node's active leases before
      // any of the batch's rows are written, so only the batch's own count keeps them to 4.
      const racing = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          ledger.submit(
            createLeaseOp(
              {
                lease_id: leaseOf(20 + i),
                user_id: user,
                app_name: 'web',
                vcpus: 1,
                periods: 1,
                candidates: [{ id: NODE_A, provider: PROVIDER }],
              },
              TIMING,
              () => true,
              (x) => x,
            ),
          ),
        ),
      );
      assert.equal(racing.filter((r) => r.ok).length, 4, 'exactly the 4 vCPUs of the node were leased');
      for (const r of racing) if (!r.ok) assert.equal(r.code, 'no_eligible_node');
      const rows = await db.selectFrom('market_leases').select(['vcpus']).where('node_id', '=', NODE_A).execute();
      assert.equal(rows.length, 4, 'a lease row per placed lease only');
      for (const [i, r] of racing.entries()) {
        const lock = await ledger.transfer(lockId(leaseOf(20 + i), periodIndex(NOW, TIMING.period_ms)));
        assert.equal(lock !== undefined, r.ok, 'a lock exists exactly for each placed lease');
      }
    } finally {
      await close();
    }
  });

  it('a deployment created beside jobs counts their vCPUs and memory under the row lock; refused, it locks nothing', async () => {
    const { ledger, db, user, close } = await openBatchFixture();
    try {
      // One batch: 4 jobs and 2 deployments of 1 vCPU each race for a 4-vCPU launcher.
      const racing = await Promise.all([
        ...Array.from({ length: 4 }, (_, i) => ledger.submit(jobOp(i, user, 1, 64, candidateOf(NODE_A)))),
        ...[0, 1].map((i) => ledger.submit(deploymentOp(i, user, 1, 64, candidateOf(NODE_A)))),
      ]);
      assert.equal(racing.filter((r) => r.ok).length, 4, 'exactly the 4 vCPUs of the node were given out');
      for (const r of racing) if (!r.ok) assert.match(r.code, /^(no_eligible_node|no_node_with_capacity)$/);
      const deps = await db.selectFrom('deployments').select(['vcpus']).where('node_id', '=', NODE_A).execute();
      assert.equal(deps.length, racing.slice(4).filter((r) => r.ok).length, 'a row per created deployment only');
      // Memory: a job holds 4000 of NODE_B's 4096 MiB (3 vCPUs free); a deployment needing 512 MiB is refused.
      const held = await ledger.submit(jobOp(9, user, 1, 4000, candidateOf(NODE_B)));
      assert.ok(held.ok);
      const before = await ledger.account(user);
      const refused = await ledger.submit(deploymentOp(9, user, 1, 512, candidateOf(NODE_B)));
      assert.equal(refused.ok, false);
      assert.equal(refused.ok ? '' : refused.code, 'no_eligible_node');
      assert.deepEqual(await ledger.account(user), before, "the user's money is unchanged");
      assert.equal(await ledger.transfer(lockId(leaseOf(9), periodIndex(NOW, TIMING.period_ms))), undefined);
      for (const t of ['market_leases', 'deployments'] as const)
        assert.equal((await db.selectFrom(t).select('id').where('node_id', '=', NODE_B).execute()).length, 0);
      // A deployment that fits beside the job is taken.
      assert.ok((await ledger.submit(deploymentOp(8, user, 1, 64, candidateOf(NODE_B)))).ok);
    } finally {
      await close();
    }
  });

  it('on PostgreSQL: the same model', { skip: pgSkip }, async () => {
    await withTempPgDatabase((url) =>
      runModel(async () => ({ database_url: url }), Number(process.env.EE_MODEL_RUNS_PG ?? 12)),
    );
  });
});
