// History is append-only in the database itself, and what gets past that (someone drops a trigger first) is
// caught by verifyLedger: each kind of tampering below must be named in its report.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { ISSUANCE } from '../ledger/model.js';
import { BACKENDS, dropAppendOnly, populate, U0, U1, type LedgerUnderTest } from './harness.js';

async function errorsAfter(l: LedgerUnderTest, tamper: string[], drop: string[] = []): Promise<string[]> {
  for (const table of drop) await dropAppendOnly(l.db, l.dialect, table);
  for (const statement of tamper) await sql.raw(statement).execute(l.db);
  const report = await l.verify();
  assert.equal(report.ok, report.errors.length === 0);
  return report.errors;
}

const has = (errors: string[], pattern: RegExp) =>
  assert.ok(
    errors.some((e) => pattern.test(e)),
    `${pattern} not in:\n${errors.join('\n')}`,
  );

for (const backend of BACKENDS) {
  describe(`ledger tampering: ${backend.name}`, { skip: backend.skip }, () => {
    test('UPDATE and DELETE on journal, audit and failed ids are refused by triggers', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          const attempts = [
            `UPDATE ledger_journal SET amount = amount + 1`,
            `DELETE FROM ledger_journal`,
            `UPDATE ledger_audit SET payload = 'x'`,
            `DELETE FROM ledger_audit WHERE seq = (SELECT max(seq) FROM ledger_audit)`,
            `UPDATE ledger_failed SET result = 'ok'`,
            `DELETE FROM ledger_failed`,
          ];
          for (const statement of attempts) {
            await assert.rejects(sql.raw(statement).execute(l.db), /append-only/, statement);
          }
          assert.deepEqual((await l.verify()).errors, []);
        }),
      ));

    test('an altered journal amount', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          const errors = await errorsAfter(
            l,
            [`UPDATE ledger_journal SET amount = 31 WHERE transfer_id = 'pay'`],
            ['ledger_journal'],
          );
          has(errors, /^audit seq \d+: differs from journal seq \d+$/);
          has(errors, /^user:t1\.credits_posted is 30 but the journal folds to 31$/);
        }),
      ));

    test('an altered account counter', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          const errors = await errorsAfter(l, [
            `UPDATE ledger_accounts SET credits_posted = credits_posted + 5 WHERE id = '${U1}'`,
          ]);
          has(errors, /^user:t1\.credits_posted is 35 but the journal folds to 30$/);
          has(errors, /^posted debits 130 != posted credits 135$/);
        }),
      ));

    test('an altered audit payload', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          const errors = await errorsAfter(
            l,
            [`UPDATE ledger_audit SET payload = replace(payload, '"100"', '"900"') WHERE kind = 'transfer'`],
            ['ledger_audit'],
          );
          has(errors, /^audit seq \d+: hash does not match its contents$/);
          has(errors, /^audit seq \d+: differs from journal seq \d+$/);
        }),
      ));

    test('the last audit row deleted', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          const errors = await errorsAfter(
            l,
            [`DELETE FROM ledger_audit WHERE seq = (SELECT max(seq) FROM ledger_audit)`],
            ['ledger_audit'],
          );
          has(errors, /^audit head \(\d+, [0-9a-f]{12}…\) is not the last audit row/);
          // The last row was the failed id's.
          has(errors, /^ledger_failed has 1 rows but the audit log records 0$/);
        }),
      ));

    test('a lock status changed behind the engine', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          const errors = await errorsAfter(l, [`UPDATE ledger_pending SET status = 'voided' WHERE id = 'lock'`]);
          has(errors, /^pending lock is voided but the journal says pending$/);
        }),
      ));

    test('a failed id that is also in the journal', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          const errors = await errorsAfter(l, [
            `INSERT INTO ledger_failed (id, result, timestamp_ms) VALUES ('pay', 'exceeds_credits', 1)`,
          ]);
          has(errors, /^id pay is both failed and in the journal$/);
          has(errors, /^ledger_failed has 2 rows but the audit log records 1$/);
        }),
      ));

    test('an overdraft hidden by a later credit is still found', () =>
      backend.session((withLedger) =>
        withLedger(async (l) => {
          await populate(l);
          // u1 pays 25 out of the 30 it received; rewriting 'pay' to 10 makes that payment an overdraft at its
          // step even though the final counters (rewritten to match) look fine.
          assert.deepEqual(
            await l.ledger.createTransfers([{ id: 'spend', debit_account: U1, credit_account: U0, amount: 25n }]),
            ['ok'],
          );
          assert.deepEqual(
            await l.ledger.createTransfers([
              { id: 'refill', debit_account: ISSUANCE, credit_account: U1, amount: 50n },
            ]),
            ['ok'],
          );
          const errors = await errorsAfter(
            l,
            [
              `UPDATE ledger_journal SET amount = 10 WHERE transfer_id = 'pay'`,
              `UPDATE ledger_accounts SET credits_posted = credits_posted - 20 WHERE id = '${U1}'`,
              `UPDATE ledger_accounts SET debits_posted = debits_posted - 20 WHERE id = '${U0}'`,
            ],
            ['ledger_journal'],
          );
          has(errors, /^journal seq \d+: user:t1 is overdrawn$/);
          assert.ok(!errors.some((e) => /folds to/.test(e)), errors.join('\n'));
        }),
      ));
  });
}
