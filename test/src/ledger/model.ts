/**
 * The reference model of the ledger and the random commands that drive it, shared by the engine's model test
 * and the storage's (LedgerStore on SQLite and PostgreSQL). The model is deliberately naive (plain number
 * balances, no overlay, no bigint) and written from docs/design.md §4 rather than from the engine's code.
 * A Scenario turns commands into requests plus the results the model expects, advancing the model as it goes;
 * each test then submits the requests to its system under test and compares.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Account, TransferInput } from '@easyenclave/control-plane/ledger/types';

export const ISSUANCE = 'platform:issuance';
export const USERS = ['user:u0', 'user:u1', 'user:u2'];
export const ALL = [...USERS, ISSUANCE];
export const USER_FLAGS = { debits_must_not_exceed_credits: true } as const;

type Kind = 'plain' | 'pending' | 'post' | 'void';
export interface Req {
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
export interface Model {
  now: number;
  accounts: Map<string, MAccount>;
  applied: Map<string, string>;
  failed: Set<string>;
  pendings: Map<string, MPending>;
}

const key = (r: Req): string =>
  JSON.stringify([r.kind, r.debit, r.credit, r.amount, r.pendingId, r.timeout, r.memo, r.linked === true]);

/** The model's rules. Mutates m on 'ok'. */
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
    if (p.status !== 'pending')
      return p.status === 'expired' ? 'pending_transfer_expired' : `pending_transfer_already_${p.status}`;
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

const RECORDED_FAILURE = (code: string) =>
  !['ok', 'exists', 'exists_with_different_fields', 'id_already_failed'].includes(code);

export function toInput(r: Req): TransferInput {
  return {
    id: r.id,
    debit_account: r.debit,
    credit_account: r.credit,
    amount: r.amount === undefined ? undefined : BigInt(r.amount),
    flags: {
      pending: r.kind === 'pending',
      post_pending: r.kind === 'post',
      void_pending: r.kind === 'void',
      linked: r.linked,
    },
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
    timeout: fc.option(
      fc.oneof(
        fc.integer({ min: 1, max: 6 }).map((k) => k * 500),
        fc.integer({ min: 1, max: 3_000 }),
      ),
      {
        nil: undefined,
      },
    ),
  });
const moveArb = fc.oneof(moveOf('mint'), moveOf('transfer'), moveOf('lock'));
type Move = typeof moveArb extends fc.Arbitrary<infer T> ? T : never;
// Weighted so users usually hold money and locks exist: otherwise most commands would just fail.
export const commandArb = fc.oneof(
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
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('advance' as const),
      sweep: fc.boolean(),
      ms: fc.oneof(
        fc.integer({ min: 0, max: 4 }).map((k) => k * 500),
        fc.integer({ min: 0, max: 2_000 }),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('retrySame' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('retryDiff' as const),
      pick: fc.nat(),
      field: fc.constantFrom('amount', 'memo'),
    }),
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
export type Command = typeof commandArb extends fc.Arbitrary<infer C> ? C : never;
/** A request of the system under test: the transfers submitted together and the results the model expects. */
export interface Step {
  reqs: Req[];
  expected: string[];
}

export class Scenario {
  readonly m: Model = {
    now: 1_000_000,
    accounts: new Map(),
    applied: new Map(),
    failed: new Set(),
    pendings: new Map(),
  };
  readonly #pool: Req[] = []; // standalone requests, for retries
  #seq = 0;

  constructor() {
    for (const id of ALL) this.m.accounts.set(id, { posted: 0, dPending: 0, cPending: 0, limited: id !== ISSUANCE });
  }

  #fresh = () => `t${this.#seq++}`;

  #fromMove(mv: Move): Req {
    const id = this.#fresh();
    if (mv.t === 'mint') return { id, kind: 'plain', debit: ISSUANCE, credit: USERS[mv.from]!, amount: mv.amount * 3 };
    const r: Req = {
      id,
      kind: mv.t === 'lock' ? 'pending' : 'plain',
      debit: USERS[mv.from]!,
      credit: ALL[mv.to]!,
      amount: mv.amount,
    };
    if (mv.t === 'lock') r.timeout = mv.timeout;
    return r;
  }

  #resolveReq(kind: 'post' | 'void', pick: number, amount?: number): Req {
    // Mostly locks that exist (in any state, so re-resolution is exercised); now and then one that never did.
    const ids = [...this.m.pendings.keys()];
    const pendingId = ids.length === 0 || pick % 10 === 0 ? 'missing' : ids[pick % ids.length]!;
    const p = this.m.pendings.get(pendingId);
    return { id: this.#fresh(), kind, debit: p?.debit ?? USERS[0]!, credit: p?.credit ?? USERS[1]!, pendingId, amount };
  }

  #single(r: Req, remember = true): Step {
    const expected = modelApply(this.m, r);
    if (RECORDED_FAILURE(expected)) this.m.failed.add(r.id);
    if (remember) this.#pool.push(r);
    return { reqs: [r], expected: [expected] };
  }

  /** Releases every lock past its deadline, as the engine's expirePending does; returns their ids in creation order. */
  sweep(): string[] {
    const expired: string[] = [];
    for (const [id, p] of this.m.pendings) {
      if (p.status !== 'pending' || p.expiresAt === undefined || p.expiresAt > this.m.now) continue;
      this.m.accounts.get(p.debit)!.dPending -= p.amount;
      this.m.accounts.get(p.credit)!.cPending -= p.amount;
      p.status = 'expired';
      expired.push(id);
    }
    return expired;
  }

  /** The request for a transfer command and its expected results; undefined for 'advance' and empty retries. */
  step(cmd: Command): Step | undefined {
    switch (cmd.t) {
      case 'mint':
      case 'transfer':
      case 'lock':
        return this.#single(this.#fromMove(cmd));
      case 'post':
        return this.#single(this.#resolveReq('post', cmd.pick, cmd.partial));
      case 'void':
        return this.#single(this.#resolveReq('void', cmd.pick));
      case 'advance':
        this.m.now += cmd.ms;
        return undefined;
      case 'retrySame':
      case 'retryDiff': {
        const original = this.#pool[cmd.pick % Math.max(this.#pool.length, 1)];
        if (!original) return undefined;
        const r = { ...original };
        if (cmd.t === 'retryDiff' && cmd.field === 'amount') r.amount = (r.amount ?? 0) + 1;
        if (cmd.t === 'retryDiff' && cmd.field === 'memo') r.memo = `${r.memo ?? ''}x`;
        return this.#single(r, false);
      }
      case 'chain':
        return this.#chain(cmd);
    }
  }

  #chain(cmd: Extract<Command, { t: 'chain' }>): Step {
    const reqs = cmd.members.map((mv) => this.#fromMove(mv));
    const badAt = cmd.badAt % (reqs.length + 1);
    const bad: Req | undefined =
      cmd.bad === 'same-accounts'
        ? { id: this.#fresh(), kind: 'plain', debit: USERS[0]!, credit: USERS[0]!, amount: 1 }
        : cmd.bad === 'overdraft'
          ? { id: this.#fresh(), kind: 'plain', debit: USERS[1]!, credit: USERS[2]!, amount: 1e9 }
          : cmd.bad === 'missing-pending'
            ? { ...this.#resolveReq('post', 0), pendingId: 'missing' }
            : undefined;
    if (bad) reqs.splice(badAt, 0, bad);
    reqs.forEach((r, i) => (r.linked = i < reqs.length - 1));
    // Apply to a scratch copy; keep it only if every member succeeded.
    const scratch = structuredClone(this.m);
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
    if (failedAt < 0) Object.assign(this.m, scratch);
    else {
      const code = expected[failedAt]!;
      if (RECORDED_FAILURE(code)) this.m.failed.add(reqs[failedAt]!.id);
      expected.length = 0;
      for (let i = 0; i < reqs.length; i++) expected.push(i === failedAt ? code : 'linked_event_failed');
    }
    return { reqs, expected };
  }

  /** Asserts that the stored account `e` has the model's balances for `id`. */
  assertAccount(id: string, e: Account | undefined, context: string): void {
    const a = this.m.accounts.get(id)!;
    assert.ok(e, `${id} missing (${context})`);
    assert.equal(e.credits_posted - e.debits_posted, BigInt(a.posted), `${id} posted (${context})`);
    assert.equal(e.debits_pending, BigInt(a.dPending), `${id} debits_pending (${context})`);
    assert.equal(e.credits_pending, BigInt(a.cPending), `${id} credits_pending (${context})`);
  }
}
