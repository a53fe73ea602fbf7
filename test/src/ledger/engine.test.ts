import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createAccounts,
  createLedgerState,
  createTransfers,
  expirePending,
} from '@easyenclave/control-plane/ledger/engine';
import { checkInvariants } from '@easyenclave/control-plane/ledger/invariants';
import type { LedgerState, TransferInput, TransferResult } from '@easyenclave/control-plane/ledger/types';

const T0 = 1_700_000_000_000;

/** issuance (unflagged) → alice holds 100, bob and carol start empty; all users have no-overdraft. */
function setup(): LedgerState {
  const s = createLedgerState();
  const users = { debits_must_not_exceed_credits: true };
  assert.deepEqual(
    createAccounts(s, [
      { id: 'platform:issuance' },
      { id: 'user:alice', flags: users },
      { id: 'user:bob', flags: users },
      { id: 'user:carol', flags: users },
      { id: 'capped', flags: { credits_must_not_exceed_debits: true } },
    ]),
    ['ok', 'ok', 'ok', 'ok', 'ok'],
  );
  run(s, [{ id: 'mint-1', debit_account: 'platform:issuance', credit_account: 'user:alice', amount: 100n }], ['ok']);
  return s;
}

function run(s: LedgerState, ts: TransferInput[], expected: TransferResult[], now = T0): void {
  assert.deepEqual(createTransfers(s, ts, now), expected);
  assert.deepEqual(checkInvariants(s), []);
}

const pay = (id: string, amount: bigint, from = 'user:alice', to = 'user:bob'): TransferInput => ({
  id,
  debit_account: from,
  credit_account: to,
  amount,
});
const lock = (id: string, amount: bigint, timeout_ms?: number): TransferInput => ({
  ...pay(id, amount),
  flags: { pending: true },
  timeout_ms,
});
const post = (id: string, pending_id: string, amount?: bigint): TransferInput => ({
  ...pay(id, 0n),
  amount,
  pending_id,
  flags: { post_pending: true },
});
const voidT = (id: string, pending_id: string): TransferInput => ({
  ...post(id, pending_id),
  flags: { void_pending: true },
});

const bal = (s: LedgerState, id: string) => {
  const a = s.accounts.get(id);
  assert.ok(a);
  return { posted: a.credits_posted - a.debits_posted, pending: a.debits_pending, incoming: a.credits_pending };
};

test('accounts: ok, exists, exists_with_different_flags, id_invalid, flags_are_mutually_exclusive', () => {
  const s = setup();
  assert.deepEqual(
    createAccounts(s, [
      { id: 'user:alice', flags: { debits_must_not_exceed_credits: true } },
      { id: 'user:alice' },
      { id: 'bad id!' },
      { id: 'x', flags: { debits_must_not_exceed_credits: true, credits_must_not_exceed_debits: true } },
    ]),
    ['exists', 'exists_with_different_flags', 'id_invalid', 'flags_are_mutually_exclusive'],
  );
});

test('plain transfer moves posted money; idempotent retries', () => {
  const s = setup();
  run(s, [pay('p1', 30n)], ['ok']);
  assert.deepEqual(bal(s, 'user:bob'), { posted: 30n, pending: 0n, incoming: 0n });
  run(s, [pay('p1', 30n)], ['exists']);
  run(s, [pay('p1', 31n)], ['exists_with_different_fields']);
  run(s, [{ ...pay('p1', 30n), memo: 'x' }], ['exists_with_different_fields']);
  assert.deepEqual(bal(s, 'user:alice').posted, 70n);
  assert.equal(s.journal.length, 2);
});

test('validation codes', () => {
  const s = setup();
  run(s, [pay('bad id', 1n)], ['id_invalid']);
  run(s, [pay('x'.repeat(65), 1n)], ['id_invalid']);
  run(s, [pay('z', 0n)], ['amount_must_not_be_zero']);
  run(s, [{ ...pay('z2', 0n), amount: undefined }], ['amount_must_not_be_zero']);
  run(s, [pay('neg', -1n)], ['amount_invalid']);
  run(s, [pay('huge', 2n ** 53n)], ['amount_invalid']);
  run(s, [pay('same', 1n, 'user:alice', 'user:alice')], ['accounts_must_be_different']);
  run(s, [pay('nf', 1n, 'user:alice', 'user:nobody')], ['account_not_found']);
  run(s, [pay('nf2', 1n, 'user:nobody', 'user:alice')], ['account_not_found']);
  run(s, [{ ...pay('mx', 1n), flags: { pending: true, post_pending: true } }], ['flags_are_mutually_exclusive']);
  run(
    s,
    [{ ...post('mx2', 'p'), flags: { void_pending: true, balancing_debit: true } }],
    ['flags_are_mutually_exclusive'],
  );
  run(s, [{ ...pay('memo', 1n), memo: 'm'.repeat(257) }], ['memo_invalid']);
  run(s, [{ ...pay('pid', 1n), pending_id: 'x' }], ['pending_id_must_not_be_set']);
  run(s, [{ ...pay('tmo', 1n), timeout_ms: 5 }], ['timeout_reserved_for_pending_transfer']);
  run(s, [lock('tmo2', 1n, -1)], ['timeout_invalid']);
  run(s, [lock('tmo3', 1n, 1.5)], ['timeout_invalid']);
  run(s, [{ ...post('pr', 'x'), pending_id: undefined }], ['pending_id_required']);
  run(s, [post('self', 'self')], ['pending_id_must_be_different']);
  // Every failure above except id_invalid burns its id.
  run(s, [pay('same', 1n)], ['id_already_failed']);
  run(s, [pay('z', 5n)], ['id_already_failed']);
  assert.equal(s.failed.get('nf'), 'account_not_found');
  assert.equal(s.transfers.size, 1);
});

test('no overdraft: exceeds_credits counts pending debits; exceeds_debits mirrors it', () => {
  const s = setup();
  run(s, [pay('over', 101n)], ['exceeds_credits']);
  run(s, [lock('l1', 60n)], ['ok']);
  run(s, [pay('over2', 41n)], ['exceeds_credits']);
  run(s, [pay('fits', 40n)], ['ok']);
  run(s, [pay('cap', 1n, 'platform:issuance', 'capped')], ['exceeds_debits']);
  run(s, [pay('over', 1n)], ['id_already_failed']);
  // The issuance account has no flag, so it can go as negative as the money minted.
  run(s, [pay('mint-2', 1_000n, 'platform:issuance', 'user:carol')], ['ok']);
  assert.equal(bal(s, 'platform:issuance').posted, -1_100n);
});

test('two-phase: lock, partial post releases the rest, void refunds, resolve at most once', () => {
  const s = setup();
  run(s, [lock('l1', 50n), lock('l2', 30n)], ['ok', 'ok']);
  assert.deepEqual(bal(s, 'user:alice'), { posted: 100n, pending: 80n, incoming: 0n });
  assert.deepEqual(bal(s, 'user:bob'), { posted: 0n, pending: 0n, incoming: 80n });
  run(s, [post('s1', 'l1', 51n)], ['exceeds_pending_transfer_amount']);
  run(s, [post('s1b', 'l1', 20n)], ['ok']);
  assert.deepEqual(bal(s, 'user:alice'), { posted: 80n, pending: 30n, incoming: 0n });
  assert.deepEqual(bal(s, 'user:bob'), { posted: 20n, pending: 0n, incoming: 30n });
  run(s, [post('s1c', 'l1')], ['pending_transfer_already_posted']);
  run(s, [voidT('v1', 'l1')], ['pending_transfer_already_posted']);
  run(s, [{ ...voidT('v2', 'l2'), amount: 29n }], ['pending_transfer_has_different_amount']);
  run(s, [{ ...voidT('v2b', 'l2'), credit_account: 'user:carol' }], ['pending_transfer_has_different_accounts']);
  run(s, [voidT('v2c', 'l2')], ['ok']);
  run(s, [post('s2', 'l2')], ['pending_transfer_already_voided']);
  run(s, [voidT('v2d', 'l2')], ['pending_transfer_already_voided']);
  run(s, [voidT('v2c', 'l2')], ['exists']);
  run(s, [post('s3', 'nope')], ['pending_transfer_not_found']);
  run(s, [post('s4', 'mint-1')], ['pending_transfer_not_pending']);
  assert.deepEqual(bal(s, 'user:alice'), { posted: 80n, pending: 0n, incoming: 0n });
  assert.equal(s.pending.get('l1'), 'posted');
  assert.equal(s.pending.get('l2'), 'voided');
});

test('expiry: timeout voids automatically and blocks late post/void', () => {
  const s = setup();
  run(s, [lock('l1', 50n, 1_000), lock('l2', 10n)], ['ok', 'ok']);
  assert.deepEqual(expirePending(s, T0 + 999), []);
  run(s, [post('late', 'l1')], ['pending_transfer_expired'], T0 + 1_000); // past timeout, not yet swept
  assert.equal(bal(s, 'user:alice').pending, 60n);
  assert.deepEqual(expirePending(s, T0 + 1_000), ['l1']);
  assert.deepEqual(expirePending(s, T0 + 5_000), []); // idempotent; l2 has no timeout
  assert.deepEqual(checkInvariants(s), []);
  assert.equal(s.pending.get('l1'), 'expired');
  assert.deepEqual(bal(s, 'user:alice'), { posted: 100n, pending: 10n, incoming: 0n });
  run(s, [voidT('late2', 'l1')], ['pending_transfer_expired'], T0 + 2_000);
  assert.equal(s.journal.at(-1)?.kind, 'expiry');
});

test('balancing_debit moves at most what is available; clamp to zero is exceeds_credits', () => {
  const s = setup();
  run(s, [lock('l1', 30n)], ['ok']);
  run(s, [{ ...pay('slash', 1_000n), flags: { balancing_debit: true } }], ['ok']);
  assert.equal(s.transfers.get('slash')?.amount, 70n);
  run(s, [{ ...pay('slash', 1_000n), flags: { balancing_debit: true } }], ['exists']);
  run(s, [{ ...pay('slash2', 1n), flags: { balancing_debit: true } }], ['exceeds_credits']);
  run(s, [{ ...pay('under', 5n, 'user:bob', 'user:carol'), flags: { balancing_debit: true } }], ['ok']);
  assert.equal(s.transfers.get('under')?.amount, 5n);
  // Unflagged debit accounts have no limit, so nothing is clamped.
  run(s, [{ ...pay('big', 500n, 'platform:issuance', 'user:carol'), flags: { balancing_debit: true } }], ['ok']);
  assert.equal(s.transfers.get('big')?.amount, 500n);
});

test('linked chains succeed or fail together; a failed chain changes nothing', () => {
  const s = setup();
  const linked = (t: TransferInput): TransferInput => ({ ...t, flags: { ...t.flags, linked: true } });
  const before = structuredClone([...s.accounts.values()]);
  run(
    s,
    [linked(pay('a', 10n)), linked(pay('b', 500n, 'user:bob', 'user:carol')), pay('c', 1n)],
    ['linked_event_failed', 'exceeds_credits', 'linked_event_failed'],
  );
  assert.deepEqual([...s.accounts.values()], before);
  assert.equal(s.journal.length, 1);
  // The members that did not fail themselves may be retried; the failed one is burned.
  run(s, [linked(pay('a', 10n)), pay('c', 1n, 'user:bob', 'user:carol')], ['ok', 'ok']);
  run(s, [pay('b', 5n, 'user:bob', 'user:carol')], ['id_already_failed']);
  // Retrying a committed chain is 'exists' all along; an independent chain in the same batch still applies.
  run(s, [linked(pay('a', 10n)), pay('c', 1n, 'user:bob', 'user:carol'), pay('d', 1n)], ['exists', 'exists', 'ok']);
  run(s, [pay('e', 1n), linked(pay('f', 1n))], ['ok', 'linked_event_chain_open']);
  run(s, [linked(pay('g', 1n)), linked(pay('h', 1n))], ['linked_event_failed', 'linked_event_chain_open']);
  assert.ok(!s.failed.has('f') && !s.transfers.has('g'));
  // A chain can lock and settle in one go, and a later duplicate id inside a chain is seen.
  run(s, [linked(lock('l', 5n)), post('lp', 'l')], ['ok', 'ok']);
  run(s, [linked(pay('i', 1n)), pay('i', 2n)], ['linked_event_failed', 'exists_with_different_fields']);
  assert.ok(!s.transfers.has('i') && !s.failed.has('i'));
});

test('checkInvariants detects tampering', () => {
  const s = setup();
  run(s, [lock('l1', 5n)], ['ok']);
  const alice = s.accounts.get('user:alice');
  assert.ok(alice);
  alice.credits_posted += 1n;
  const errors = checkInvariants(s);
  assert.ok(
    errors.some((e) => e.includes('posted debits')),
    errors.join('\n'),
  );
  assert.ok(
    errors.some((e) => e.includes('folds to')),
    errors.join('\n'),
  );
  alice.credits_posted -= 1n;
  s.pending.set('l1', 'posted');
  assert.ok(checkInvariants(s).some((e) => e.includes('pending l1')));
});
