/**
 * Model-based test: random command sequences run against the engine and against the reference model
 * (./model.ts), comparing every result code and every balance, and running checkInvariants after every command.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  createAccounts,
  createLedgerState,
  createTransfers,
  expirePending,
} from '@easyenclave/control-plane/ledger/engine';
import { checkInvariants } from '@easyenclave/control-plane/ledger/invariants';
import type { LedgerState } from '@easyenclave/control-plane/ledger/types';
import { ALL, commandArb, ISSUANCE, Scenario, toInput, USER_FLAGS, USERS, type Command } from './model.js';

function runSequence(commands: Command[]): void {
  const state: LedgerState = createLedgerState();
  createAccounts(state, [{ id: ISSUANCE }, ...USERS.map((id) => ({ id, flags: USER_FLAGS }))]);
  const scenario = new Scenario();
  for (const cmd of commands) {
    const step = scenario.step(cmd);
    if (step) {
      assert.deepEqual(
        createTransfers(state, step.reqs.map(toInput), scenario.m.now),
        step.expected,
        JSON.stringify(step.reqs),
      );
    } else if (cmd.t === 'advance' && cmd.sweep) {
      // Without a sweep, overdue locks must still refuse post/void (checked against the clock, not the status).
      assert.deepEqual(expirePending(state, scenario.m.now), scenario.sweep());
    }
    assert.deepEqual(checkInvariants(state), [], `after ${JSON.stringify(cmd)}`);
    for (const id of ALL) scenario.assertAccount(id, state.accounts.get(id), JSON.stringify(cmd));
  }
}

test('model-based: engine matches the reference model and keeps its invariants', () => {
  fc.assert(
    fc.property(fc.array(commandArb, { minLength: 1, maxLength: 80, size: 'max' }), (commands) =>
      runSequence(commands),
    ),
    { numRuns: 300 },
  );
});
