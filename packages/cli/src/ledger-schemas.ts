// zod schemas of the ledger API's answers (packages/control-plane/src/http/ledger-routes.ts). Loose objects,
// like api-schemas.ts: fields added later pass through to --json.
import { z } from 'zod';

const micro = z.number().int();

export const BalanceSchema = z.looseObject({
  account: z.string(),
  available_micro_usd: micro,
  locked_micro_usd: micro,
  total_micro_usd: micro,
  available_usd: z.string(),
  locked_usd: z.string(),
  total_usd: z.string(),
});
export type Balance = z.infer<typeof BalanceSchema>;

export const CreatedAccountSchema = z.looseObject({
  account_id: z.string(),
  kind: z.string(),
  name: z.string(),
  api_key: z.string().nullable(),
  ledger_accounts: z.array(z.string()),
});

export const PurchaseSchema = z.looseObject({
  transfer_id: z.string(),
  account: z.string(),
  payment_ref: z.string(),
  amount_micro_usd: micro,
  amount_usd: z.string(),
  /** true when this payment_ref had already minted: nothing new was minted. */
  replayed: z.boolean().optional(),
  balance: BalanceSchema,
});

export const TransferSchema = z.looseObject({
  transfer_id: z.string(),
  from: z.string(),
  to: z.string(),
  amount_micro_usd: micro,
  amount_usd: z.string(),
  memo: z.string().nullable(),
  /** true when this transfer had already been applied (a late retry): nothing moved. */
  replayed: z.boolean().optional(),
  balance: BalanceSchema,
});

export const HistorySchema = z.looseObject({
  account: z.string(),
  transfers: z.array(
    z.looseObject({
      seq: z.number(),
      type: z.string(),
      transfer_id: z.string().nullable(),
      from: z.string(),
      to: z.string(),
      direction: z.string(),
      amount_micro_usd: micro,
      amount_usd: z.string(),
      memo: z.string().nullable(),
      reference: z.string().nullable(),
      timestamp: z.string(),
    }),
  ),
  next_cursor: z.string().nullable(),
});
export type History = z.infer<typeof HistorySchema>;
