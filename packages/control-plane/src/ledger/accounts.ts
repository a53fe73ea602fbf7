/** Ledger state construction and account creation (kept apart from transfers to keep each file small). */
import { ACCOUNT_ID_PATTERN, type Account, type AccountInput, type AccountResult, type LedgerState } from './types.js';

/** Money the account holds (posted credits − posted debits), open locks included. */
export function totalBalance(a: Account): bigint {
  return a.credits_posted - a.debits_posted;
}

/**
 * The one available-balance formula: what the account can still spend. Pending debits (open locks) count
 * against it before they settle; pending credits do not count until posted.
 */
export function availableBalance(a: Account): bigint {
  return totalBalance(a) - a.debits_pending;
}

export function createLedgerState(): LedgerState {
  return { accounts: new Map(), transfers: new Map(), failed: new Map(), pending: new Map(), journal: [] };
}

/** Creates accounts with zero counters; idempotent on id (same flags → 'exists'). Each account is independent. */
export function createAccounts(state: LedgerState, inputs: readonly AccountInput[]): AccountResult[] {
  return inputs.map((input) => {
    if (typeof input.id !== 'string' || !ACCOUNT_ID_PATTERN.test(input.id)) return 'id_invalid';
    const flags = {
      debits_must_not_exceed_credits: input.flags?.debits_must_not_exceed_credits === true,
      credits_must_not_exceed_debits: input.flags?.credits_must_not_exceed_debits === true,
    };
    // Both flags would freeze the account forever (nothing could ever be credited first).
    if (flags.debits_must_not_exceed_credits && flags.credits_must_not_exceed_debits) {
      return 'flags_are_mutually_exclusive';
    }
    const existing = state.accounts.get(input.id);
    if (existing) {
      const same =
        (existing.flags.debits_must_not_exceed_credits === true) === flags.debits_must_not_exceed_credits &&
        (existing.flags.credits_must_not_exceed_debits === true) === flags.credits_must_not_exceed_debits;
      return same ? 'exists' : 'exists_with_different_flags';
    }
    state.accounts.set(input.id, {
      id: input.id,
      flags,
      debits_pending: 0n,
      debits_posted: 0n,
      credits_pending: 0n,
      credits_posted: 0n,
    });
    return 'ok';
  });
}
