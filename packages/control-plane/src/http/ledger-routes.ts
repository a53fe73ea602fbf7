// The ledger's HTTP API (docs/ledger.md): accounts with API keys, purchase (mint), transfer, balances, history.
// Every POST honours Idempotency-Key; every route authenticates in its onRequest hook before reading anything.
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Clock } from '../clock.js';
import { totalBalance } from '../ledger/accounts.js';
import { formatUsd } from '../ledger/amount.js';
import { IDENTITY_ID_PATTERN, ownedAccounts, ownerOf, PLATFORM_ISSUANCE } from '../ledger/chart.js';
import { transferRefusal } from '../ledger/refusal.js';
import type { Account, TransferInput } from '../ledger/types.js';
import type { ApplyContext } from '../ledger-store/batch.js';
import { createIdentityOp, getIdentity, newIdentity } from '../ledger-store/identities.js';
import { transfersOp, type LedgerStore } from '../ledger-store/ledger-store.js';
import { authHooks, mayActFor, principalOf } from './auth-hooks.js';
import { apiFailure } from './error-catalogue.js';
import { errorResponse, type IdempotencyKeys, type IdempotentRun, type StoredResponse } from './idempotency.js';
import {
  AccountParams,
  BalanceView,
  balanceView,
  CreateAccountBody,
  CreatedAccountView,
  HistoryQuery,
  HistoryView,
  historyView,
  PurchaseBody,
  PurchaseView,
  TransferBody,
  TransferView,
} from './ledger-views.js';
import { BEARER, errorResponses, IdempotencyHeaders } from './schemas.js';

export interface LedgerRoutesOptions {
  ledger: LedgerStore;
  idempotency: IdempotencyKeys;
  clock: Clock;
  admin_token: string | undefined;
}

const encodeCursor = (seq: number) => Buffer.from(`seq:${seq}`).toString('base64url');
function decodeCursor(cursor: string): number {
  const m = /^seq:(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw apiFailure('invalid_cursor', undefined, { param: 'cursor' });
  return Number(m[1]);
}

const noAccount = (id: string) => apiFailure('unknown_account', `no account ${JSON.stringify(id.slice(0, 80))}`);

export async function ledgerRoutes(base: FastifyInstance, opts: LedgerRoutesOptions): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { ledger, clock, idempotency } = opts;
  const auth = authHooks({ db: ledger.db, now: ledger.now, admin_token: opts.admin_token });
  const tags = ['ledger'];

  /** An identity id (`user:…`, `provider:…`) → its primary ledger account, if the identity exists. */
  const primaryAccount = async (identity: string): Promise<string> => {
    if (!IDENTITY_ID_PATTERN.test(identity) || !(await getIdentity(ledger.db, identity))) throw noAccount(identity);
    return ownedAccounts(identity)[0]!;
  };

  /**
   * Runs transfers as one ledger operation; `view` builds the success body from the batch's state. When every
   * transfer already existed (a payment_ref minted before, a late retry) nothing moved: `replayed` says so.
   */
  const runTransfers = (
    req: FastifyRequest,
    run: IdempotentRun,
    inputs: TransferInput[],
    view: (ctx: ApplyContext, replayed: boolean) => object,
    okStatus = 200,
  ) =>
    ledger.submit(
      transfersOp(inputs, (results, ctx) => {
        const bad = results.find((r) => r !== 'ok' && r !== 'exists');
        let response: StoredResponse;
        if (bad === undefined) {
          const replayed = results.every((r) => r === 'exists');
          response = { status: okStatus, body: view(ctx, replayed), replayed };
        } else {
          // A retried id that failed for good answers with its original reason.
          const why = bad === 'id_already_failed' ? (ctx.state.failed.get(inputs[0]!.id) ?? bad) : bad;
          response = errorResponse(transferRefusal(why));
        }
        run.record(ctx.writes, ctx.now_ms, response);
        return response;
      }),
      req.id,
    );

  const balanceIn = (ctx: ApplyContext, account: string): Account => ctx.state.accounts.get(account)!;

  app.post(
    '/v1/accounts',
    {
      onRequest: auth.admin,
      schema: {
        tags,
        summary: 'Create a user or provider account; its API key is returned once',
        security: BEARER,
        headers: IdempotencyHeaders,
        body: CreateAccountBody,
        response: { 201: CreatedAccountView, ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const created = newIdentity(body.kind, body.name, clock.now());
      return idempotency.handle(req, reply, principalOf(req).id, (run) =>
        ledger.submit(
          createIdentityOp(created, (ctx) => {
            const id = created.identity.id;
            const summary = {
              account_id: id,
              kind: body.kind,
              name: body.name,
              ledger_accounts: ownedAccounts(id),
              created_at: new Date(created.identity.created_ms).toISOString(),
            };
            // The key is never stored: a replay of this request says so instead of returning it.
            run.record(ctx.writes, ctx.now_ms, {
              status: 201,
              body: { ...summary, api_key: null, api_key_note: 'shown once, in the first response' },
            });
            return { status: 201, body: { ...summary, api_key: created.api_key } };
          }),
          req.id,
        ),
      );
    },
  );

  app.post(
    '/v1/credits/purchase',
    {
      onRequest: auth.admin,
      schema: {
        tags,
        summary: 'Mint credits for an external payment (one payment_ref mints at most once)',
        security: BEARER,
        headers: IdempotencyHeaders,
        body: PurchaseBody,
        response: { 201: PurchaseView, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const amount = body.micro!;
      const to = await primaryAccount(body.account);
      // One payment mints at most once, with or without an Idempotency-Key: the id comes from payment_ref.
      const id = `purchase:${createHash('sha256').update(body.payment_ref).digest('hex').slice(0, 40)}`;
      const input: TransferInput = {
        id,
        debit_account: PLATFORM_ISSUANCE,
        credit_account: to,
        amount,
        reference: body.payment_ref,
      };
      return idempotency.handle(req, reply, principalOf(req).id, (run) =>
        runTransfers(
          req,
          run,
          [input],
          (ctx, replayed) => ({
            transfer_id: id,
            account: body.account,
            payment_ref: body.payment_ref,
            amount_micro_usd: Number(amount),
            amount_usd: formatUsd(amount),
            replayed,
            balance: balanceView(body.account, balanceIn(ctx, to)),
          }),
          201,
        ),
      );
    },
  );

  app.post(
    '/v1/credits/transfer',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: "Move credits between accounts (from the caller's account; the admin names `from`)",
        security: BEARER,
        headers: IdempotencyHeaders,
        body: TransferBody,
        response: { 200: TransferView, ...errorResponses(400, 401, 402, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const body = req.body;
      const amount = body.micro!;
      const fromId = body.from ?? (p.kind === 'identity' ? p.id : undefined);
      if (fromId === undefined)
        throw apiFailure('invalid_request', 'from is required when the admin token makes a transfer', {
          param: 'from',
        });
      if (!mayActFor(p, fromId)) throw apiFailure('forbidden', 'an API key can only move money out of its own account');
      const from = await primaryAccount(fromId);
      const to = await primaryAccount(body.to);
      return idempotency.handle(req, reply, p.id, (run) => {
        // randomUUID draws from a cached entropy buffer: much cheaper per request than randomBytes.
        const id = run.derivedId('tx:', () => `tx:${randomUUID().replaceAll('-', '')}`);
        const input: TransferInput = {
          id,
          debit_account: from,
          credit_account: to,
          amount,
          ...(body.memo !== undefined ? { memo: body.memo } : {}),
        };
        return runTransfers(req, run, [input], (ctx, replayed) => ({
          transfer_id: id,
          from: fromId,
          to: body.to,
          amount_micro_usd: Number(amount),
          amount_usd: formatUsd(amount),
          memo: body.memo ?? null,
          replayed,
          balance: balanceView(fromId, balanceIn(ctx, from)),
        }));
      });
    },
  );

  /** `account` param → the ledger accounts the caller may read. */
  const readable = async (req: FastifyRequest, account: string): Promise<string[]> => {
    const p = principalOf(req);
    if (!mayActFor(p, account)) throw apiFailure('forbidden', 'an API key can only read its own account');
    if (IDENTITY_ID_PATTERN.test(account)) return [await primaryAccount(account), ...ownedAccounts(account).slice(1)];
    if (ownerOf(account) !== undefined || p.kind === 'admin') return [account];
    throw noAccount(account);
  };

  app.get(
    '/v1/balances/:account',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: 'Available, locked and total credits of an account (and a provider’s stake)',
        security: BEARER,
        params: AccountParams,
        response: { 200: BalanceView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const { account } = req.params;
      const ledgerAccounts = await readable(req, account);
      const a = await ledger.account(ledgerAccounts[0]!);
      if (!a) throw noAccount(account);
      const view: ReturnType<typeof balanceView> & { stake_micro_usd?: number } = balanceView(account, a);
      if (ledgerAccounts.length > 1) {
        // A provider: its earnings are the balance; its stake is shown beside it.
        const stake = await ledger.account(ledgerAccounts[1]!);
        if (stake) view.stake_micro_usd = Number(totalBalance(stake));
      }
      return view;
    },
  );

  app.get(
    '/v1/accounts/:account/transfers',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: "An account's history, newest first, cursor-paged",
        security: BEARER,
        params: AccountParams,
        querystring: HistoryQuery,
        response: { 200: HistoryView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const { account } = req.params;
      const ledgerAccounts = await readable(req, account);
      const q = req.query;
      const page = await ledger.history(ledgerAccounts, {
        limit: q.limit,
        ...(q.cursor !== undefined ? { before_seq: decodeCursor(q.cursor) } : {}),
      });
      return {
        account,
        transfers: page.entries.map((e) => historyView(e.seq, e.entry, ledgerAccounts)),
        next_cursor: page.next_before_seq === null ? null : encodeCursor(page.next_before_seq),
      };
    },
  );
}
