// Model-based: random command sequences (mint, transfer, lock with timeout, post, void, expiry through the
// injected clock, retries with the same and with a different body, failed ids retried, linked chains, and
// groups submitted concurrently so they share one group-commit batch) run against LedgerStore and against the
// reference model (../ledger/model.ts). After every command: every result code as the model says, verifyLedger
// finds nothing, and the stored balances equal the model's. On SQLite file, SQLite :memory: and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ALL, commandArb, ISSUANCE, Scenario, toInput, USER_FLAGS, USERS, type Command } from '../ledger/model.js';
import { BACKENDS, type LedgerUnderTest } from './harness.js';

const RUNS_PER_BACKEND = 30;
const MAX_COMMANDS = 25;
const MAX_CONCURRENT_OPS = 5;

async function checkAll(l: LedgerUnderTest, s: Scenario, context: string): Promise<void> {
  const report = await l.verify();
  assert.deepEqual(report.errors, [], `verify after ${context}`);
  assert.equal(report.ok, true);
  for (const id of ALL) s.assertAccount(id, await l.ledger.account(id), context);
}

class One implements fc.AsyncCommand<Scenario, LedgerUnderTest> {
  constructor(readonly cmd: Command) {}
  check = () => true;
  async run(s: Scenario, l: LedgerUnderTest): Promise<void> {
    if (this.cmd.t === 'advance') {
      l.clock.now_ms += this.cmd.ms;
      s.step(this.cmd);
      // Every batch starts with the expiry sweep: run an otherwise idle one so the sweep is visible now.
      s.sweep();
      assert.deepEqual(await l.ledger.createAccounts([{ id: ISSUANCE }]), ['exists']);
    } else {
      const step = s.step(this.cmd);
      if (step)
        assert.deepEqual(
          await l.ledger.createTransfers(step.reqs.map(toInput)),
          step.expected,
          JSON.stringify(step.reqs),
        );
    }
    await checkAll(l, s, this.toString());
  }
  toString = () => JSON.stringify(this.cmd);
}

/** Several requests submitted in one event-loop turn: one batch, applied in submission order. */
class Concurrent implements fc.AsyncCommand<Scenario, LedgerUnderTest> {
  constructor(readonly cmds: Command[]) {}
  check = () => true;
  async run(s: Scenario, l: LedgerUnderTest): Promise<void> {
    const steps = this.cmds.map((c) => s.step(c)).filter((x) => x !== undefined);
    const batchesBefore = l.ledger.writer.stats.batches;
    const results = await Promise.all(steps.map((st) => l.ledger.createTransfers(st.reqs.map(toInput))));
    assert.deepEqual(
      results,
      steps.map((st) => st.expected),
      JSON.stringify(steps.map((st) => st.reqs)),
    );
    if (steps.length > 0) assert.equal(l.ledger.writer.stats.batches, batchesBefore + 1, 'one group-commit batch');
    await checkAll(l, s, this.toString());
  }
  toString = () => `concurrent ${JSON.stringify(this.cmds)}`;
}

// The clock must not move inside a batch, so concurrent groups hold no 'advance'.
const noAdvance = commandArb.filter((c) => c.t !== 'advance');
const commands = fc.commands(
  [
    commandArb.map((c) => new One(c)),
    fc.array(noAdvance, { minLength: 2, maxLength: MAX_CONCURRENT_OPS }).map((cs) => new Concurrent(cs)),
  ],
  { maxCommands: MAX_COMMANDS, size: 'max' },
);

for (const backend of BACKENDS) {
  describe(`LedgerStore model-based: ${backend.name}`, { skip: backend.skip }, () => {
    test('matches the reference model; verifyLedger passes after every command', async () => {
      await backend.session((withLedger) =>
        fc.assert(
          fc.asyncProperty(commands, (cmds) =>
            withLedger(async (l) => {
              const created = await l.ledger.createAccounts(USERS.map((id) => ({ id, flags: USER_FLAGS })));
              assert.deepEqual(
                created,
                USERS.map(() => 'ok'),
              );
              await fc.asyncModelRun(() => ({ model: new Scenario(), real: l }), cmds);
            }),
          ),
          { numRuns: RUNS_PER_BACKEND },
        ),
      );
    });
  });
}
