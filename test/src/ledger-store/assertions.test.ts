// The ledger's production assertions fire: an operation touching an account or transfer it did not declare
// fails loudly (not account_not_found), and a batch whose counters disagree with its journal entries, or that
// overdraws a no-overdraft account, is refused before anything is written. Other operations of the same batch
// are unaffected (the writer reruns them alone).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createTransfers } from '@easyenclave/control-plane/ledger/engine';
import { UndeclaredInputError } from '@easyenclave/control-plane/ledger/declared';
import { LedgerInvariantError } from '@easyenclave/control-plane/ledger/commit-check';
import type { LedgerOp } from '@easyenclave/control-plane/ledger-store/batch';
import { ISSUANCE } from '../ledger/model.js';
import { BACKENDS, populate, U0, U1, type LedgerUnderTest } from './harness.js';

/** A transfer op that declares only `declared` accounts (and its own id). */
function payOp(id: string, declared: string[]): LedgerOp<string> {
  return {
    accounts: declared,
    transfers: [id],
    apply: (ctx) =>
      createTransfers(ctx.state, [{ id, debit_account: U0, credit_account: U1, amount: 1n }], ctx.now_ms)[0]!,
  };
}

async function balances(l: LedgerUnderTest): Promise<[bigint, bigint]> {
  const [a, b] = await Promise.all([l.ledger.account(U0), l.ledger.account(U1)]);
  return [a!.credits_posted - a!.debits_posted, b!.credits_posted - b!.debits_posted];
}

for (const backend of BACKENDS) {
  describe(`ledger assertions: ${backend.name}`, { skip: backend.skip }, () => {
    test('an operation touching an undeclared account fails loudly; its neighbours commit', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          const before = await balances(l);
          // Submitted in one turn: one batch. The good op declares both accounts, so U1 is loaded for the batch;
          // the bad op must still fail, not borrow its neighbour's row.
          const [good, bad] = await Promise.allSettled([
            l.ledger.submit(payOp('good-pay', [U0, U1])),
            l.ledger.submit(payOp('bad-pay', [U0])),
          ]);
          assert.deepEqual(good, { status: 'fulfilled', value: 'ok' });
          assert.equal(bad.status, 'rejected');
          assert.ok(bad.reason instanceof UndeclaredInputError, String(bad.reason));
          assert.match(bad.reason.message, /account user:t1 that it did not declare/);
          // Alone, too: never account_not_found.
          await assert.rejects(l.ledger.submit(payOp('bad-pay-2', [U0])), UndeclaredInputError);
          const after = await balances(l);
          assert.deepEqual(after, [before[0] - 1n, before[1] + 1n]);
          assert.equal(await l.ledger.transfer('bad-pay'), undefined);
          assert.deepEqual((await l.verify()).errors, []);
        }),
      ));

    test('an operation resolving an undeclared transfer fails loudly', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          const op: LedgerOp<string> = {
            accounts: [U0, U1],
            transfers: ['post-lock'], // the pending id 'lock' is missing
            apply: (ctx) =>
              createTransfers(
                ctx.state,
                [
                  {
                    id: 'post-lock',
                    debit_account: U0,
                    credit_account: U1,
                    pending_id: 'lock',
                    flags: { post_pending: true },
                  },
                ],
                ctx.now_ms,
              )[0]!,
          };
          await assert.rejects(l.ledger.submit(op), /transfer lock that it did not declare/);
          assert.deepEqual((await l.verify()).errors, []);
        }),
      ));

    test('counters moved without a journal entry: the batch is refused, nothing is written', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          const before = await balances(l);
          const forged: LedgerOp<string> = {
            accounts: [U0],
            transfers: [],
            apply: (ctx) => {
              ctx.state.accounts.get(U0)!.credits_posted += 5n; // money from nowhere
              return 'ok';
            },
          };
          const [good, bad] = await Promise.allSettled([
            l.ledger.submit(payOp('good-pay', [U0, U1])),
            l.ledger.submit(forged),
          ]);
          assert.deepEqual(good, { status: 'fulfilled', value: 'ok' });
          assert.equal(bad.status, 'rejected');
          assert.ok(bad.reason instanceof LedgerInvariantError, String(bad.reason));
          assert.match(bad.reason.message, /account user:t0: credits_posted moved by 5, its journal entries say 0/);
          assert.deepEqual(await balances(l), [before[0] - 1n, before[1] + 1n]);
          assert.deepEqual((await l.verify()).errors, []);
        }),
      ));

    test('an overdraft of a no-overdraft account is refused even with matching journal entries', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          const overdraw: LedgerOp<string> = {
            accounts: [U0, ISSUANCE],
            transfers: ['overdraw'],
            apply: (ctx) => {
              // What a broken engine would do: journal a transfer without the overdraft check.
              const u0 = ctx.state.accounts.get(U0)!;
              const amount = u0.credits_posted + 1n;
              u0.debits_posted += amount;
              ctx.state.accounts.get(ISSUANCE)!.credits_posted += amount;
              const transfer = {
                id: 'overdraw',
                debit_account: U0,
                credit_account: ISSUANCE,
                amount,
                requested_amount: amount,
                flags: {
                  pending: false,
                  post_pending: false,
                  void_pending: false,
                  linked: false,
                  balancing_debit: false,
                },
                timestamp_ms: ctx.now_ms,
              };
              ctx.state.transfers.set('overdraw', transfer);
              ctx.state.journal.push({ kind: 'transfer', transfer });
              return 'ok';
            },
          };
          await assert.rejects(l.ledger.submit(overdraw), /account user:t0 is overdrawn/);
          assert.equal(await l.ledger.transfer('overdraw'), undefined);
          assert.deepEqual((await l.verify()).errors, []);
        }),
      ));
  });
}
