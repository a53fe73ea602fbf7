// Request and response schemas of the ledger API, and the views that fill them. Money leaves as JSON integers
// of micro-USD (exact: every amount and counter is <= 2^53 - 1) next to a "$12.50" string for people.
import { z } from 'zod';
import { AmountError, formatUsd, parseAmount } from '../ledger/amount.js';
import { availableBalance, totalBalance } from '../ledger/accounts.js';
import { PLATFORM_ISSUANCE } from '../ledger/chart.js';
import { MAX_MEMO_LENGTH, REFERENCE_PATTERN, type Account, type JournalEntry } from '../ledger/types.js';
import { MAX_NAME_LENGTH } from '../ledger-store/identities.js';
import { MAX_HISTORY_PAGE } from '../ledger-store/ledger-store.js';
import { coded, IsoTime, MicroUsd, pathId, printable, Usd } from './schemas.js';

// ---------- Amounts ----------

const DOLLARS_HINT = 'a string like "$200" or "12.50"';

/** Characters of a dollar amount ("$1,000,000.000001" and more fit). */
const MAX_DOLLARS_CHARS = 40;
/** Characters of an account id in a body (two ids of the chart of accounts fit). */
const MAX_ACCOUNT_CHARS = 160;
/** Characters of a history page cursor (base64url of `seq:` and 16 digits). */
const MAX_CURSOR_CHARS = 64;

/** `amount` (dollars, for people) and `amount_micro_usd` (an integer, for machines): exactly one. */
export const amountFields = (name = 'amount') => ({
  [name]: coded(
    z
      .string({
        error: `${name} must be a string of dollars like "$200" or "12.50"; use ${name}_micro_usd for integers`,
      })
      .max(MAX_DOLLARS_CHARS)
      .optional()
      .meta({ description: `dollars, ${DOLLARS_HINT} (at most 6 decimals)` }),
    'invalid_amount',
  ),
  [`${name}_micro_usd`]: coded(
    z
      .number({ error: `${name}_micro_usd must be a JSON integer` })
      .optional()
      .meta({ description: 'micro-USD, a JSON integer (1 USD = 1,000,000)' }),
    'invalid_amount',
  ),
});

/**
 * The exact amount of `body` in micro-USD, or the reason it has none; `optional` accepts neither field.
 * Dollar strings are converted by string arithmetic (ledger/amount.ts), never through a float.
 */
export function amountIn(
  body: Record<string, unknown>,
  name = 'amount',
  optional = false,
): { ok: true; micro: bigint | undefined } | { ok: false; message: string } {
  const dollars = body[name];
  const micro = body[`${name}_micro_usd`];
  if (dollars === undefined && micro === undefined && optional) return { ok: true, micro: undefined };
  if ((dollars === undefined) === (micro === undefined))
    return {
      ok: false,
      message: `give exactly one of ${name} (${DOLLARS_HINT}) and ${name}_micro_usd (an integer)`,
    };
  try {
    return { ok: true, micro: parseAmount((dollars ?? micro) as string | number) };
  } catch (err) {
    if (err instanceof AmountError) return { ok: false, message: err.message };
    throw err;
  }
}

/** Adds `micro` (the exact amount) to a body schema with amount fields; a bad amount is 400 invalid_amount. */
export function withAmount<T extends z.ZodType<object>>(schema: T, name = 'amount', optional = false) {
  return schema.transform((body, ctx) => {
    const r = amountIn(body as Record<string, unknown>, name, optional);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', path: [name], message: r.message, params: { code: 'invalid_amount' } });
      return z.NEVER;
    }
    return { ...body, micro: r.micro };
  });
}

// ---------- Requests ----------

export const CreateAccountBody = z.strictObject({
  kind: z.enum(['user', 'provider']),
  name: printable(MAX_NAME_LENGTH),
});

export const PurchaseBody = withAmount(
  z.strictObject({
    account: z.string().min(1).max(MAX_ACCOUNT_CHARS),
    payment_ref: z.string().regex(REFERENCE_PATTERN, 'must be 1-128 characters of A-Z a-z 0-9 : _ . @ / -'),
    ...amountFields(),
  }),
);

export const TransferBody = withAmount(
  z.strictObject({
    from: z.string().min(1).max(MAX_ACCOUNT_CHARS).optional(),
    to: z.string().min(1).max(MAX_ACCOUNT_CHARS),
    memo: z
      .string()
      .max(MAX_MEMO_LENGTH)
      .regex(/^[^\p{Cc}]*$/u, 'must not contain control characters')
      .optional(),
    ...amountFields(),
  }),
);

export const AccountParams = z.object({ account: pathId() });

export const HistoryQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_HISTORY_PAGE).default(50),
  cursor: z.string().max(MAX_CURSOR_CHARS).optional(),
});

// ---------- Responses ----------

export const BalanceView = z
  .looseObject({
    account: z.string(),
    ledger_account: z.string(),
    available_micro_usd: MicroUsd,
    locked_micro_usd: MicroUsd,
    total_micro_usd: MicroUsd,
    available_usd: Usd,
    locked_usd: Usd,
    total_usd: Usd,
    stake_micro_usd: MicroUsd.optional().meta({ description: "a provider's stake, beside its earnings" }),
  })
  .meta({ id: 'Balance' });

export const CreatedAccountView = z.looseObject({
  account_id: z.string(),
  kind: z.enum(['user', 'provider']),
  name: z.string(),
  ledger_accounts: z.array(z.string()),
  created_at: IsoTime,
  api_key: z.string().nullable().meta({ description: 'shown once; null in a replayed answer' }),
});

export const PurchaseView = z.looseObject({
  transfer_id: z.string(),
  account: z.string(),
  payment_ref: z.string(),
  amount_micro_usd: MicroUsd,
  amount_usd: Usd,
  replayed: z.boolean().meta({
    description: 'true when this payment_ref had already minted: nothing new was minted by this request',
  }),
  balance: BalanceView,
});

export const TransferView = z.looseObject({
  transfer_id: z.string(),
  from: z.string(),
  to: z.string(),
  amount_micro_usd: MicroUsd,
  amount_usd: Usd,
  memo: z.string().nullable(),
  replayed: z.boolean().meta({ description: 'true when this transfer had already been applied (a late retry)' }),
  balance: BalanceView,
});

const HistoryEntry = z.looseObject({
  seq: z.number().int(),
  type: z.enum(['purchase', 'transfer', 'lock', 'settle', 'refund', 'expiry']),
  transfer_id: z.string().nullable(),
  pending_id: z.string().nullable(),
  from: z.string(),
  to: z.string(),
  direction: z.enum(['in', 'out']),
  amount_micro_usd: MicroUsd,
  amount_usd: Usd,
  memo: z.string().nullable(),
  reference: z.string().nullable(),
  timestamp_ms: z.number().int(),
  timestamp: IsoTime,
});

export const HistoryView = z.looseObject({
  account: z.string(),
  transfers: z.array(HistoryEntry),
  next_cursor: z.string().nullable(),
});

const n = (v: bigint) => Number(v);

export function balanceView(account: string, a: Account) {
  const total = totalBalance(a);
  const available = availableBalance(a);
  const locked = total - available;
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
      type: 'expiry' as const,
      transfer_id: null,
      pending_id: e.pending_id,
      from: e.debit_account,
      to: e.credit_account,
      direction: ledgerAccounts.includes(e.debit_account) ? ('out' as const) : ('in' as const),
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
      ? ('purchase' as const)
      : t.flags.pending
        ? ('lock' as const)
        : t.flags.post_pending
          ? ('settle' as const)
          : t.flags.void_pending
            ? ('refund' as const)
            : ('transfer' as const);
  return {
    seq,
    type,
    transfer_id: t.id,
    pending_id: t.pending_id ?? null,
    from: t.debit_account,
    to: t.credit_account,
    direction: ledgerAccounts.includes(t.debit_account) ? ('out' as const) : ('in' as const),
    amount_micro_usd: n(t.amount),
    amount_usd: formatUsd(t.amount),
    memo: t.memo ?? null,
    reference: t.reference ?? null,
    timestamp_ms: t.timestamp_ms,
    timestamp: new Date(t.timestamp_ms).toISOString(),
  };
}
