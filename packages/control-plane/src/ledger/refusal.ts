// What a core (the ledger, the market) answers when it refuses a request: a machine code from the API's error
// vocabulary and, where it helps, a sentence with the particulars. No HTTP here: the HTTP layer's error
// catalogue (http/error-catalogue.ts) maps each code to a status and a type, once.
import type { TransferResult } from './types.js';

export interface Refusal<C extends string = string> {
  readonly ok: false;
  readonly code: C;
  /** Overrides the catalogue's default message when the particulars help (an amount, a date, a name). */
  readonly message?: string;
}

export type TransferRefusalCode =
  | 'insufficient_funds'
  | 'unknown_account'
  | 'amount_too_large'
  | 'transfer_conflict'
  | 'same_account'
  | 'transfer_refused';

/** The one translation of an engine result that is not ok/exists into a refusal. */
export function transferRefusal(result: TransferResult): Refusal<TransferRefusalCode> {
  switch (result) {
    case 'exceeds_credits':
      return { ok: false, code: 'insufficient_funds' };
    case 'account_not_found':
      return { ok: false, code: 'unknown_account', message: 'an account of this transfer does not exist' };
    case 'overflows_debits':
    case 'overflows_credits':
      return { ok: false, code: 'amount_too_large' };
    case 'exists_with_different_fields':
      return { ok: false, code: 'transfer_conflict' };
    case 'accounts_must_be_different':
      return { ok: false, code: 'same_account' };
    default:
      // Results the API's own checks make unreachable (ids, memo, pending ids it chose itself).
      return { ok: false, code: 'transfer_refused', message: `transfer refused: ${result}` };
  }
}
