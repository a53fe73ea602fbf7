/**
 * Model-based test: random command sequences run against the engine and against a deliberately naive reference
 * model (plain number balances, no overlay, no bigint), comparing every result code and every balance, and
 * running checkInvariants after every command.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createAccounts, createLedgerState, createTransfers, expirePending } from '@easyenclave/control-plane/ledger/engine';
import { checkInvariants } from '@easyenclave/control-plane/ledger/invariants';
import type { LedgerState, TransferInput } from '@easyenclave/control-plane/ledger/types';

const ISSUANCE = 'platform:issuance';
const USERS = ['user:u0', 'user:u1', 'user:u2'];
const ALL = [...USERS, ISSUANCE];

type Kind = 'plain' | 'pending' | 'post' | 'void';
interface Req {
  id: string;
  kind: Kind;
  debit: string;
  credit: string;
  amount?: number;
  pendingId?: string;
  timeout?: number;
  memo?: string;
  linked?: boolean;
}
interface MAccount {
  posted: number; // credits_posted - debits_posted
  dPending: number;
  cPending: number;
  limited: boolean;
}
interface MPending {
  debit: string;
  credit: string;
  amount: number;
  expiresAt: number | undefined;
  status: 'pending' | 'posted' | 'voided' | 'expired';
}
interface Model {
  now: number;
  accounts: Map<string, MAccount>;
  applied: Map<string, string>;
  failed: Set<string>;
  pendings: Map<string, MPending>;
}

const key = (r: Req): string =>
  JSON.stringify([r.kind, r.debit, r.credit, r.amount, r.pendingId, r.timeout, r.memo, r.linked === true]);

/** The model's rules, written from DESIGN.md §4 rather than from the engine's code. Mutates m on 'ok'. */
function modelApply(m: Model, r: Req): string {
  if (m.failed.has(r.id)) return 'id_already_failed';
  const prior = m.applied.get(r.id);
  if (prior !== undefined) return prior === key(r) ? 'exists' : 'exists_with_different_fields';
  if (r.kind === 'plain' || r.kind === 'pending') {
    if (r.debit === r.credit) return 'accounts_must_be_different';
    const d = m.accounts.get(r.debit)!;
    const c = m.accounts.get(r.credit)!;
    const amount = r.amount!;
    if (d.limited && d.posted - d.dPending < amount) return 'exceeds_credits';
    if (r.kind === 'plain') {
      d.posted -= amount;
      c.posted += amount;
    } else {
      d.dPending += amount;
      c.cPending += amount;
      const expiresAt = r.timeout ? m.now + r.timeout : undefined;
      m.pendings.set(r.id, { debit: r.debit, credit: r.credit, amount, expiresAt, status: 'pending' });
    }
  } else {
    const p = m.pendings.get(r.pendingId!);
    if (!p) return 'pending_transfer_not_found';
    if (p.status !== 'pending') return p.status === 'expired' ? 'pending_transfer_expired' : `pending_transfer_already_${p.status}`;
    if (p.expiresAt !== undefined && m.now >= p.expiresAt) return 'pending_transfer_expired';
    const amount = r.amount ?? p.amount;
    if (amount > p.amount) return 'exceeds_pending_transfer_amount';
    const d = m.accounts.get(p.debit)!;
    const c = m.accounts.get(p.credit)!;
    d.dPending -= p.amount;
    c.cPending -= p.amount;
    if (r.kind === 'post') {
      d.posted -= amount;
      c.posted += amount;
    }
    p.status = r.kind === 'post' ? 'posted' : 'voided';
  }
  m.applied.set(r.id, key(r));
  return 'ok';
}

const RECORDED_FAILURE = (code: string) => !['ok', 'exists', 'exists_with_different_fields', 'id_already_failed'].includes(code);

function toInput(r: Req): TransferInput {
  return {
    id: r.id,
    debit_account: r.debit,
    credit_account: r.credit,
    amount: r.amount === undefined ? undefined : BigInt(r.amount),
    flags: { pending: r.kind === 'pending', post_pending: r.kind === 'post', void_pending: r.kind === 'void', linked: r.linked },
    pending_id: r.pendingId,
    timeout_ms: r.timeout,
    memo: r.memo,
  };
}

const amountArb = fc.integer({ min: 1, max: 200 });
const moveOf = (t: 'mint' | 'transfer' | 'lock') =>
  fc.record({
    t: fc.constant(t),
    from: fc.nat(2),
    to: fc.nat(3),
    amount: amountArb,
    // Multiples of 500 ms (like the clock steps) so a post lands exactly on a deadline now and then.
    timeout: fc.option(fc.oneof(fc.integer({ min: 1, max: 6 }).map((k) => k * 500), fc.integer({ min: 1, max: 3_000 })), {
      nil: undefined,
    }),
  });
const moveArb = fc.oneof(moveOf('mint'), moveOf('transfer'), moveOf('lock'));
type Move = typeof moveArb extends fc.Arbitrary<infer T> ? T : never;
// Weighted so users usually hold money and locks exist: otherwise most commands would just fail.
const commandArb = fc.oneof(
  { weight: 3, arbitrary: moveOf('mint') },
  { weight: 4, arbitrary: moveOf('transfer') },
  { weight: 4, arbitrary: moveOf('lock') },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('post' as const),
      pick: fc.nat(),
      partial: fc.option(fc.integer({ min: 1, max: 220 }), { nil: undefined }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('void' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('advance' as const), sweep: fc.boolean(), ms: fc.oneof(fc.integer({ min: 0, max: 4 }).map((k) => k * 500), fc.integer({ min: 0, max: 2_000 })) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('retrySame' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('retryDiff' as const), pick: fc.nat(), field: fc.constantFrom('amount', 'memo') }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('chain' as const),
      members: fc.array(moveArb, { minLength: 1, maxLength: 3 }),
      bad: fc.constantFrom('none', 'same-accounts', 'overdraft', 'missing-pending'),
      badAt: fc.nat(3),
    }),
  },
);

type Command = typeof commandArb extends fc.Arbitrary<infer C> ? C : never;

function runSequence(commands: Command[]): void {
  const state: LedgerState = createLedgerState();
  const flagged = { debits_must_not_exceed_credits: true };
  createAccounts(state, [{ id: ISSUANCE }, ...USERS.map((id) => ({ id, flags: flagged }))]);
  const m: Model = { now: 1_000_000, accounts: new Map(), applied: new Map(), failed: new Set(), pendings: new Map() };
  for (const id of ALL) m.accounts.set(id, { posted: 0, dPending: 0, cPending: 0, limited: id !== ISSUANCE });
  const pool: Req[] = []; // standalone requests, for retries
  let seq = 0;
  const fresh = () => `t${seq++}`;

  const fromMove = (mv: Move): Req => {
    const id = fresh();
    if (mv.t === 'mint') return { id, kind: 'plain', debit: ISSUANCE, credit: USERS[mv.from]!, amount: mv.amount * 3 };
    const r: Req = { id, kind: mv.t === 'lock' ? 'pending' : 'plain', debit: USERS[mv.from]!, credit: ALL[mv.to]!, amount: mv.amount };
    if (mv.t === 'lock') r.timeout = mv.timeout;
    return r;
  };
  const resolveReq = (kind: 'post' | 'void', pick: number, amount?: number): Req => {
    // Mostly locks that exist (in any state, so re-resolution is exercised); now and then one that never did.
    const ids = [...m.pendings.keys()];
    const pendingId = ids.length === 0 || pick % 10 === 0 ? 'missing' : ids[pick % ids.length]!;
    const p = m.pendings.get(pendingId);
    return { id: fresh(), kind, debit: p?.debit ?? USERS[0]!, credit: p?.credit ?? USERS[1]!, pendingId, amount };
  };
  const single = (r: Req, remember = true): void => {
    const expected = modelApply(m, r);
    if (RECORDED_FAILURE(expected)) m.failed.add(r.id);
    assert.deepEqual(createTransfers(state, [toInput(r)], m.now), [expected], JSON.stringify(r));
    if (remember) pool.push(r);
  };

  for (const cmd of commands) {
    switch (cmd.t) {
      case 'mint':
      case 'transfer':
      case 'lock':
        single(fromMove(cmd));
        break;
      case 'post':
        single(resolveReq('post', cmd.pick, cmd.partial));
        break;
      case 'void':
        single(resolveReq('void', cmd.pick));
        break;
      case 'advance': {
        m.now += cmd.ms;
        // Without a sweep, overdue locks must still refuse post/void (checked against the clock, not the status).
        if (!cmd.sweep) break;
        const expected: string[] = [];
        for (const [id, p] of m.pendings) {
          if (p.status !== 'pending' || p.expiresAt === undefined || p.expiresAt > m.now) continue;
          m.accounts.get(p.debit)!.dPending -= p.amount;
          m.accounts.get(p.credit)!.cPending -= p.amount;
          p.status = 'expired';
          expected.push(id);
        }
        assert.deepEqual(expirePending(state, m.now), expected);
        break;
      }
      case 'retrySame':
      case 'retryDiff': {
        const original = pool[cmd.pick % Math.max(pool.length, 1)];
        if (!original) break;
        const r = { ...original };
        if (cmd.t === 'retryDiff' && cmd.field === 'amount') r.amount = (r.amount ?? 0) + 1;
        if (cmd.t === 'retryDiff' && cmd.field === 'memo') r.memo = `${r.memo ?? ''}x`;
        single(r, false);
        break;
      }
      case 'chain': {
        const reqs = cmd.members.map(fromMove);
        const badAt = cmd.badAt % (reqs.length + 1);
        const bad: Req | undefined =
          cmd.bad === 'same-accounts' ? { id: fresh(), kind: 'plain', debit: USERS[0]!, credit: USERS[0]!, amount: 1 }
          : cmd.bad === 'overdraft' ? { id: fresh(), kind: 'plain', debit: USERS[1]!, credit: USERS[2]!, amount: 1e9 }
          : cmd.bad === 'missing-pending' ? { ...resolveReq('post', 0), pendingId: 'missing' }
          : undefined;
        if (bad) reqs.splice(badAt, 0, bad);
        reqs.forEach((r, i) => (r.linked = i < reqs.length - 1));
        // Model: apply to a scratch copy; keep it only if every member succeeded.
        const scratch = structuredClone(m);
        const expected: string[] = [];
        let failedAt = -1;
        for (const [i, r] of reqs.entries()) {
          const code = modelApply(scratch, r);
          expected.push(code);
          if (code !== 'ok' && code !== 'exists') {
            failedAt = i;
            break;
          }
        }
        if (failedAt < 0) Object.assign(m, scratch);
        else {
          const code = expected[failedAt]!;
          if (RECORDED_FAILURE(code)) m.failed.add(reqs[failedAt]!.id);
          expected.length = 0;
          for (let i = 0; i < reqs.length; i++) expected.push(i === failedAt ? code : 'linked_event_failed');
        }
        assert.deepEqual(createTransfers(state, reqs.map(toInput), m.now), expected);
        break;
      }
    }
    assert.deepEqual(checkInvariants(state), [], `after ${JSON.stringify(cmd)}`);
    for (const [id, a] of m.accounts) {
      const e = state.accounts.get(id)!;
      assert.equal(e.credits_posted - e.debits_posted, BigInt(a.posted), `${id} posted`);
      assert.equal(e.debits_pending, BigInt(a.dPending), `${id} debits_pending`);
      assert.equal(e.credits_pending, BigInt(a.cPending), `${id} credits_pending`);
    }
  }
}

test('model-based: engine matches the reference model and keeps its invariants', () => {
  fc.assert(
    fc.property(fc.array(commandArb, { minLength: 1, maxLength: 80, size: 'max' }), (commands) => runSequence(commands)),
    { numRuns: 300 },
  );
});
