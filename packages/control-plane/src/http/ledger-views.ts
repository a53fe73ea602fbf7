// Request schemas and response shapes of the ledger API. Money leaves as JSON integers of micro-USD (exact:
// every amount and counter is <= 2^53 - 1) next to a "$12.50" string for people.
import { z } from 'zod';
import { AmountError, formatUsd, parseAmount } from '../ledger/amount.js';
import {
  MAX_MEMO_LENGTH,
  REFERENCE_PATTERN,
  type Account,
  type JournalEntry,
  type TransferResult,
} from '../ledger/types.js';
import { MAX_NAME_LENGTH } from '../ledger-store/identities.js';
import { PLATFORM_ISSUANCE } from '../ledger/chart.js';

const PRINTABLE = /^[^\p{Cc}]*$/u;

export const CreateAccountBody = z.strictObject({
  kind: z.enum(['user', 'provider']),
  name: z.string().min(1).max(MAX_NAME_LENGTH).regex(PRINTABLE, 'must not contain control characters'),
});

const amountFields = {
  amount: z.union([z.string().max(40), z.number(), z.boolean(), z.null()]).optional(),
  amount_micro_usd: z.union([z.number(), z.string().max(40), z.boolean(), z.null()]).optional(),
};

export const PurchaseBody = z.strictObject({
  account: z.string().min(1).max(160),
  payment_ref: z.string().regex(REFERENCE_PATTERN, 'must be 1-128 characters of A-Z a-z 0-9 : _ . @ / -'),
  ...amountFields,
});

export const TransferBody = z.strictObject({
  from: z.string().min(1).max(160).optional(),
  to: z.string().min(1).max(160),
  memo: z.string().max(MAX_MEMO_LENGTH).regex(PRINTABLE, 'must not contain control characters').optional(),
  ...amountFields,
});

/** A client error found while handling a request; the route turns it into `{error:{code,message}}`. */
export class BadRequest extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Exactly one of `amount` (a dollar string for people) and `amount_micro_usd` (an integer), converted exactly. */
export function amountOf(body: { amount?: unknown; amount_micro_usd?: unknown }): bigint {
  const hasDollars = body.amount !== undefined;
  const hasMicro = body.amount_micro_usd !== undefined;
  if (hasDollars === hasMicro)
    throw new BadRequest(
      'invalid_amount',
      'give exactly one of amount (a string like "$200" or "12.50") and amount_micro_usd (an integer)',
    );
  try {
    if (hasDollars) {
      if (typeof body.amount !== 'string')
        throw new BadRequest(
          'invalid_amount',
          'amount must be a string of dollars like "$200" or "12.50"; use amount_micro_usd for integers',
        );
      return parseAmount(body.amount);
    }
    if (typeof body.amount_micro_usd !== 'number')
      throw new BadRequest('invalid_amount', 'amount_micro_usd must be a JSON integer');
    return parseAmount(body.amount_micro_usd);
  } catch (err) {
    if (err instanceof AmountError) throw new BadRequest('invalid_amount', err.message);
    throw err;
  }
}

export function zodMessage(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || 'body'}: ${i.message}`)
    .join('; ');
}

const n = (v: bigint) => Number(v);

export function balanceView(account: string, a: Account) {
  const total = a.credits_posted - a.debits_posted;
  const locked = a.debits_pending;
  const available = total - locked;
  return {
    account,
    ledger_account: a.id,
    available_micro_usd: n(available),
    locked_micro_usd: n(locked),
    total_micro_usd: n(total),
    available_usd: formatUsd(available),
    locked_usd: formatUsd(locked),
    total_usd: formatUsd(total),
  };
}

/** One journal line as seen from `ledgerAccounts` (direction in/out relative to them). */
export function historyView(seq: number, e: JournalEntry, ledgerAccounts: readonly string[]) {
  if (e.kind === 'expiry') {
    return {
      seq,
      type: 'expiry',
      transfer_id: null,
      pending_id: e.pending_id,
      from: e.debit_account,
      to: e.credit_account,
      direction: ledgerAccounts.includes(e.debit_account) ? 'out' : 'in',
      amount_micro_usd: n(e.amount),
      amount_usd: formatUsd(e.amount),
      memo: null,
      reference: null,
      timestamp_ms: e.timestamp_ms,
      timestamp: new Date(e.timestamp_ms).toISOString(),
    };
  }
  const t = e.transfer;
  const type =
    t.debit_account === PLATFORM_ISSUANCE
      ? 'purchase'
      : t.flags.pending
        ? 'lock'
        : t.flags.post_pending
          ? 'settle'
          : t.flags.void_pending
            ? 'refund'
            : 'transfer';
  return {
    seq,
    type,
    transfer_id: t.id,
    pending_id: t.pending_id ?? null,
    from: t.debit_account,
    to: t.credit_account,
    direction: ledgerAccounts.includes(t.debit_account) ? 'out' : 'in',
    amount_micro_usd: n(t.amount),
    amount_usd: formatUsd(t.amount),
    memo: t.memo ?? null,
    reference: t.reference ?? null,
    timestamp_ms: t.timestamp_ms,
    timestamp: new Date(t.timestamp_ms).toISOString(),
  };
}

/** HTTP status, code and message for an engine result that is not ok/exists. */
export function transferFailure(result: TransferResult): { status: number; code: string; message: string } {
  switch (result) {
    case 'exceeds_credits':
      return {
        status: 402,
        code: 'insufficient_funds',
        message: 'the source account does not have enough available credits',
      };
    case 'account_not_found':
      return { status: 404, code: 'unknown_account', message: 'an account of this transfer does not exist' };
    case 'overflows_debits':
    case 'overflows_credits':
      return {
        status: 400,
        code: 'amount_too_large',
        message: 'the transfer would push an account past 2^53 - 1 micro-USD',
      };
    case 'exists_with_different_fields':
      return {
        status: 409,
        code: 'transfer_conflict',
        message: 'this transfer id was already used for a different transfer',
      };
    case 'accounts_must_be_different':
      return { status: 400, code: 'same_account', message: 'from and to must be different accounts' };
    default:
      return { status: 400, code: result, message: `transfer refused: ${result}` };
  }
}
