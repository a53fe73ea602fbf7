// Property-based model test of reservations and receipts: random sequences of reservations, receipts (new,
// replayed, from an unknown key, from another node's agent, beyond the quota, before the key was attested),
// cancellations, node incidents (a failed attestation) and time passing (period rolls, expiry, the ledger's own
// lock expiry), run through the real ledger operations on a real store — SQLite, and PostgreSQL. A small model
// predicts which receipts must be accepted; after every step: the ledger invariants on the full state loaded
// back from the database, claimed ≤ quota, claimed = the sum of the accepted receipts = the sum of the posted
// claims in the journal, an open reservation's lock holds exactly quota − claimed, a closed one holds nothing,
// and every user and provider balance moved by exactly the accepted receipts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Kysely } from 'kysely';
import { identityAccountInputs, PLATFORM_ISSUANCE } from '@easyenclave/control-plane/ledger/chart';
import { checkInvariants } from '@easyenclave/control-plane/ledger/invariants';
import { LedgerStore } from '@easyenclave/control-plane/ledger-store/ledger-store';
import { MARKET_MIGRATIONS } from '@easyenclave/control-plane/market/store/migrations';
import { RESERVATION_MIGRATIONS } from '@easyenclave/control-plane/market/store/reservations';
import { claimReceiptsOp } from '@easyenclave/control-plane/market/ops-receipts';
import {
  closeReservationOp,
  createReservationOp,
  rollReservationOp,
} from '@easyenclave/control-plane/market/ops-reservation';
import { RECEIPT_GRACE_MS, reservationLockId } from '@easyenclave/control-plane/market/reservation';
import { periodIndex } from '@easyenclave/control-plane/market/period';
import { openStore, runMigrations, type StoreOptions } from '@easyenclave/control-plane/store/index';
import { receiptAmount, type UsageReceipt } from '@easyenclave/protocol/receipt';
import { pgSkipReason, withTempPgDatabase } from '../helpers/pg.js';
import { loadLedgerState } from '../helpers/ledger-state.js';
import { insertNode } from '../helpers/market-rows.js';

const HOUR = 3_600_000;
const timing = { period_ms: HOUR, grace_ms: 6 * HOUR };
const PRICES = { tokens_in: 150, tokens_out: 600, requests: 1000, bytes: 1 };
const USERS = ['user:00000000000000000001', 'user:00000000000000000002'];
const PROVIDERS = ['provider:0000000000000000000a', 'provider:0000000000000000000b'];
const NODES = PROVIDERS.map((p, i) => ({ id: `node_000000000000000${i}`, provider: p }));
/** Keys: 0 and 1 attested for node 0 and node 1 from the start; 2 never attested; 3 attested for node 0 later. */
const KEYS = ['a', 'b', 'c', 'd'].map((c) => c.repeat(64));
const AGENTS = ['agent-node0-a', 'agent-node1-b', 'agent-nowhere', 'agent-node0-d'];
const MINT = 100_000_000n;
/** Each reservation's token hash (any 64 hex; the model gives receipts the right one). */
const tokenOf = (id: string) => Buffer.from(id.padEnd(32, '-')).toString('hex').slice(0, 64);
const STAKE = 1_000n;

type Cmd =
  | { t: 'reserve'; user: number; node: number; quota: number; lifetime_min: number }
  | {
      t: 'receipt';
      pick: number;
      key: number;
      tokens: number;
      replay: boolean;
      early: boolean;
      n: number;
      exact: boolean;
    }
  | { t: 'cancel'; pick: number }
  | { t: 'incident'; node: number }
  | { t: 'time'; ms: number; ticking: boolean };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('reserve' as const),
      user: fc.nat(1),
      node: fc.nat(1),
      quota: fc.integer({ min: 1, max: 60_000 }),
      lifetime_min: fc.integer({ min: 1, max: 300 }),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({
      t: fc.constant('receipt' as const),
      pick: fc.nat(20),
      // -1: the key of the reservation's own node (the usual case); else any key, attested or not.
      key: fc.oneof({ weight: 6, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.nat(3) }),
      tokens: fc.integer({ min: 0, max: 40_000 }),
      replay: fc.nat(9).map((x) => x < 3),
      early: fc.nat(9).map((x) => x < 1),
      n: fc.integer({ min: 1, max: 4 }),
      // The first receipt claims exactly what is left (the quota runs out).
      exact: fc.nat(4).map((x) => x === 0),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cancel' as const), pick: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('incident' as const), node: fc.nat(1) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('time' as const),
      ms: fc.oneof(fc.integer({ min: 1, max: 20 * 60_000 }), fc.integer({ min: 1, max: 3 * HOUR })),
      // Whether the scheduler ran at each period boundary on the way (it does unless the control plane is down).
      ticking: fc.nat(4).map((x) => x > 0),
    }),
  },
);

interface ModelRsv {
  id: string;
  user: string;
  node: number;
  quota: number;
  claimed: number;
  open: boolean;
  created: number;
  expires: number;
}

const seen = { reserved: 0, accepted: 0, refused: 0, exhausted: 0, rolled: 0, expired: 0, cancelled: 0, incident: 0 };

async function run(open: () => StoreOptions | Promise<StoreOptions>, cmds: Cmd[]): Promise<void> {
  let now = Date.UTC(2026, 0, 1) + 17 * 60_000;
  const store = await openStore(await open());
  const ledger = await LedgerStore.open(store.db, store.dialect, () => now);
  await runMigrations(store.db, store.dialect, MARKET_MIGRATIONS);
  await runMigrations(store.db, store.dialect, RESERVATION_MIGRATIONS);
  const db = store.db as unknown as Kysely<any>;
  try {
    for (const id of [...USERS, ...PROVIDERS]) await ledger.createAccounts(identityAccountInputs(id));
    await ledger.createTransfers(
      [...USERS, ...PROVIDERS].map((id, i) => ({
        id: `mint:${i}`,
        debit_account: PLATFORM_ISSUANCE,
        credit_account: id.startsWith('provider') ? `${id}:earnings` : id,
        amount: MINT,
      })),
    );
    // Enough stake for the nodes (price 1 micro-USD per vCPU-hour: the requirement is tiny).
    await ledger.createTransfers(
      PROVIDERS.map((p, i) => ({
        id: `stake:${i}`,
        debit_account: `${p}:earnings`,
        credit_account: `${p}:stake`,
        amount: STAKE,
      })),
    );
    // The control plane's own records of the agents (attestation rows refer to them).
    await db
      .insertInto('apps')
      .values({ app_name: 'chat', repo: 'acme/chat', network: 'sandbox-1', created_at_ms: now })
      .execute();
    for (const agent_id of AGENTS)
      await db
        .insertInto('agents')
        .values({
          agent_id,
          app_name: 'chat',
          repo: 'acme/chat',
          release_tag: 'v1',
          network: 'sandbox-1',
          first_seen_ms: now,
          last_connected_ms: now,
          last_disconnected_ms: null,
          connected: 1,
          remote_addr: null,
          last_health_ms: null,
          last_health_pass_ms: null,
          health_status: null,
          last_attest_ms: null,
          attest_ok: 1,
          attest_evidence_type: null,
          attest_failure: null,
        })
        .execute();
    const start = now;
    for (const [i, n] of NODES.entries()) {
      await insertNode(db, { ...n, vcpus: 1, price: 1 }, now);
      for (const k of [i, ...(i === 0 ? [3] : [])])
        await db
          .insertInto('market_node_agents')
          .values({ agent_id: AGENTS[k], node_id: n.id, via: 'token', bound_ms: now })
          .execute();
    }
    for (const k of [0, 1, 3])
      await db
        .insertInto('market_agent_keys')
        .values({
          receipt_key: KEYS[k],
          hpke_key: KEYS[k],
          agent_id: AGENTS[k],
          node_id: NODES[k === 1 ? 1 : 0]!.id,
          app_name: 'chat',
          first_attested_ms: k === 3 ? start + 10 * HOUR : start,
          last_attested_ms: start,
        })
        .execute();

    const rsvs: ModelRsv[] = [];
    const seqs = KEYS.map(() => 0);
    const used: UsageReceipt[] = [];
    const incidents: { node: number; at: number }[] = [];
    let n = 0;
    let reqs = 0;

    const sweep = async () => {
      for (const r of rsvs.filter((x) => x.open)) {
        if (now >= r.expires + RECEIPT_GRACE_MS) {
          const c = await ledger.submit(closeReservationOp(r.id, 'expired'));
          assert.equal(c.outcome, 'closed');
          r.open = false;
          seen.expired++;
        } else if (incidents.some((i) => i.node === r.node && i.at >= r.created)) {
          assert.equal((await ledger.submit(closeReservationOp(r.id, 'attestation_failed'))).outcome, 'closed');
          r.open = false;
        } else {
          const res = await ledger.submit(rollReservationOp(r.id, timing));
          if (res === 'rolled') seen.rolled++;
          if (res === 'closed') r.open = false;
        }
      }
    };

    for (const c of cmds) {
      if (c.t === 'reserve') {
        const id = `rsv_${String(n++).padStart(4, '0')}`;
        const user = USERS[c.user]!;
        const node = NODES[c.node]!;
        const r = await ledger.submit(
          createReservationOp(
            {
              id,
              user_id: user,
              app_name: 'chat',
              quota: c.quota,
              expires_ms: now + c.lifetime_min * 60_000,
              token_sha256: tokenOf(id),
              candidates: [{ id: node.id, provider: node.provider, agent_id: AGENTS[c.node]!, unit_prices: PRICES }],
            },
            timing,
            () => true,
            (x) => x,
          ),
        );
        assert.ok(r.ok, JSON.stringify(r));
        rsvs.push({
          id,
          user,
          node: c.node,
          quota: c.quota,
          claimed: 0,
          open: true,
          created: now,
          expires: now + c.lifetime_min * 60_000,
        });
        seen.reserved++;
      } else if (c.t === 'receipt' && rsvs.length > 0) {
        const r = rsvs[c.pick % rsvs.length]!;
        const keyIndex = c.key === -1 ? r.node : c.key;
        const batch: UsageReceipt[] = [];
        for (let i = 0; i < c.n; i++) {
          if (c.replay && used.length > 0) {
            batch.push(used[(c.pick + i) % used.length]!);
            continue;
          }
          const left = r.quota - r.claimed;
          const units =
            c.exact && i === 0
              ? { tokens_in: 0, tokens_out: 0, requests: left, bytes: 0 }
              : { tokens_in: 0, tokens_out: c.tokens + i, requests: 0, bytes: 0 };
          batch.push({
            v: 1,
            reservation_id: r.id,
            reservation_token_sha256: tokenOf(r.id),
            request_id: `req_${reqs++}`,
            request_sha256: '0'.repeat(64),
            response_sha256: '0'.repeat(64),
            kind: 'tokens',
            units,
            unit_prices: PRICES,
            amount_micro_usd: Number(receiptAmount(units, PRICES)),
            agent_id: AGENTS[keyIndex]!,
            key: KEYS[keyIndex]!,
            seq: ++seqs[keyIndex]!,
            time_ms: c.early ? r.created - 1 : now,
          });
        }
        const outcomes = await ledger.submit(
          claimReceiptsOp(
            r.id,
            batch.map((b) => ({ receipt: b, signed: JSON.stringify({ receipt: b, signature: '' }) })),
            timing,
          ),
        );
        // The model: what must happen to each receipt, in order. The operation applies zero tolerance to its
        // reservation before it looks at any receipt.
        const already = new Set(used.map((u) => `${u.key}:${u.seq}`));
        if (r.open && incidents.some((x) => x.node === r.node && x.at >= r.created)) r.open = false;
        const target = r;
        for (const [i, b] of batch.entries()) {
          const keyNode: number = keyIndex === 1 ? 1 : keyIndex === 2 ? -1 : 0;
          const attestedAt: number = keyIndex === 3 ? start + 10 * HOUR : start;
          const expect: boolean =
            b.reservation_id === target.id &&
            target.open &&
            now < target.expires + RECEIPT_GRACE_MS &&
            keyNode === target.node &&
            b.time_ms >= attestedAt &&
            b.time_ms >= target.created &&
            b.time_ms < target.expires &&
            !already.has(`${b.key}:${b.seq}`) &&
            b.amount_micro_usd <= target.quota - target.claimed;
          const o = outcomes[i]!;
          assert.equal(o.ok, expect, `receipt ${b.key.slice(0, 4)}:${b.seq} → ${JSON.stringify(o)}`);
          if (o.ok) {
            target.claimed += b.amount_micro_usd;
            already.add(`${b.key}:${b.seq}`);
            used.push(b);
            seen.accepted++;
            if (target.claimed === target.quota) {
              target.open = false;
              seen.exhausted++;
            }
          } else seen.refused++;
        }
      } else if (c.t === 'cancel' && rsvs.length > 0) {
        const r = rsvs[c.pick % rsvs.length]!;
        const res = await ledger.submit(closeReservationOp(r.id, 'cancelled'));
        assert.equal(res.outcome, r.open ? 'closed' : 'already_closed');
        if (r.open) seen.cancelled++;
        r.open = false;
      } else if (c.t === 'incident') {
        await db
          .insertInto('attestations')
          .values({
            agent_id: AGENTS[c.node]!,
            app_name: 'chat',
            at_ms: now,
            reason: 'interval',
            ok: 0,
            evidence_type: 'sandbox',
            evidence_hash: null,
            policy_version: null,
            failure: 'test',
            missed: 1,
          })
          .execute();
        incidents.push({ node: c.node, at: now });
        seen.incident++;
      } else if (c.t === 'time') {
        const end = now + c.ms;
        if (c.ticking) {
          // The scheduler's sweep a second after every period boundary on the way.
          for (let b = (periodIndex(now, HOUR) + 1) * HOUR; b + 1000 < end; b += HOUR) {
            now = b + 1000;
            await sweep();
          }
        }
        now = end;
        await sweep();
      }

      // ---- invariants after every step ----
      const state = await loadLedgerState(db);
      assert.deepEqual(checkInvariants(state), []);
      const rows = await db.selectFrom('market_reservations').selectAll().execute();
      for (const row of rows) {
        const m = rsvs.find((x) => x.id === row.id)!;
        const claimed = Number(row.claimed);
        assert.ok(claimed <= Number(row.quota), 'claimed ≤ quota');
        assert.equal(claimed, m.claimed, 'claimed = the model’s accepted receipts');
        const receipts = await db
          .selectFrom('market_receipts')
          .select('amount')
          .where('reservation_id', '=', row.id)
          .execute();
        assert.equal(
          receipts.reduce((a: number, x: { amount: number | string }) => a + Number(x.amount), 0),
          claimed,
          'claimed = sum of stored receipts',
        );
        let posted = 0n;
        for (const t of state.transfers.values())
          if (t.id.startsWith(`rsvclaim:${row.id}:`)) {
            assert.ok(t.flags.post_pending);
            posted += t.amount;
          }
        assert.equal(posted, BigInt(claimed), 'claimed = sum of posted claims in the journal');
        const lockIds = [...state.pending].filter(([id, st]) => id.startsWith(`rsv:${row.id}:`) && st === 'pending');
        if (row.status === 'open') {
          assert.equal(m.open, true, `${row.id} open in the store but closed in the model`);
          const current = reservationLockId(row.id, Number(row.lock_seq));
          const st = state.pending.get(current);
          if (Number(row.quota) === claimed) assert.equal(lockIds.length, 0);
          else {
            assert.ok(st === 'pending' || st === 'expired', `current lock is ${st}`);
            if (st === 'pending') {
              assert.deepEqual(
                lockIds.map(([id]) => id),
                [current],
              );
              assert.equal(state.transfers.get(current)!.amount, BigInt(Number(row.quota) - claimed));
              assert.equal(Number(row.lock_period), periodIndex(now, HOUR), 'the lock was rolled into this period');
            }
          }
        } else {
          assert.equal(lockIds.length, 0, 'a closed reservation holds no lock');
          assert.equal(m.open, false, `${row.id} closed in the store but open in the model`);
        }
      }
      // Balances: users paid exactly what was claimed; providers earned exactly that.
      for (const u of USERS) {
        const a = state.accounts.get(u)!;
        const paid = rsvs.filter((r) => r.user === u).reduce((s, r) => s + r.claimed, 0);
        assert.equal(a.credits_posted - a.debits_posted, MINT - BigInt(paid), `${u} total`);
        const locked = rsvs
          .filter((r) => r.user === u && r.open)
          .reduce((s, r) => {
            const row = rows.find((x) => x.id === r.id)!;
            const st = state.pending.get(reservationLockId(r.id, Number(row.lock_seq)));
            return s + (st === 'pending' ? r.quota - r.claimed : 0);
          }, 0);
        assert.equal(a.debits_pending, BigInt(locked), `${u} locked`);
      }
      for (const [i, p] of PROVIDERS.entries()) {
        const a = state.accounts.get(`${p}:earnings`)!;
        const earned = rsvs.filter((r) => r.node === i).reduce((s, r) => s + r.claimed, 0);
        assert.equal(a.credits_posted - a.debits_posted, MINT - STAKE + BigInt(earned), `${p} earned`);
      }
    }
  } finally {
    await ledger.close();
    await store.close();
  }
}

const arb = fc.array(cmd, { minLength: 1, maxLength: 50, size: 'large' });

/** fast-check reports the counterexample; this keeps the assertion that failed on it. */
let lastError: unknown = null;
const remembered = async (fn: () => Promise<void>) => {
  try {
    await fn();
  } catch (err) {
    lastError = err;
    throw err;
  }
};
const withCause = (err: unknown): never => {
  throw new Error(`${(err as Error).message}\nlast failure: ${(lastError as Error | null)?.stack ?? 'none'}`);
};

test('reservation model on SQLite: claimed ≤ quota, claimed = accepted receipts, money only by receipts', async () => {
  await fc
    .assert(
      fc.asyncProperty(arb, (cmds) => remembered(() => run(() => ({ db_path: ':memory:' }), cmds))),
      { numRuns: Number(process.env.EE_MODEL_RUNS ?? 60) },
    )
    .catch(withCause);
  for (const [k, v] of Object.entries(seen)) assert.ok(v > 0, `no ${k} in any run: ${JSON.stringify(seen)}`);
});

describe('reservation model on PostgreSQL', { skip: await pgSkipReason() }, () => {
  test('the same properties on PostgreSQL', async () => {
    await fc
      .assert(
        fc.asyncProperty(arb, (cmds) =>
          remembered(() => withTempPgDatabase((url) => run(() => ({ database_url: url }), cmds))),
        ),
        { numRuns: Number(process.env.EE_MODEL_RUNS_PG ?? 12) },
      )
      .catch(withCause);
  });
});
