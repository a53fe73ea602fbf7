// The ledger's HTTP API (issue 4): accounts with API keys, purchase (mint), transfer, balances, history.
// Every POST honours Idempotency-Key; every route authenticates (principal.ts) before reading anything.
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { formatUsd } from '../ledger/amount.js';
import { IDENTITY_ID_PATTERN, ownedAccounts, ownerOf, PLATFORM_ISSUANCE } from '../ledger/chart.js';
import type { Account, TransferInput } from '../ledger/types.js';
import type { ApplyContext } from '../ledger-store/batch.js';
import { createIdentityOp, getIdentity, newIdentity } from '../ledger-store/identities.js';
import { MAX_HISTORY_PAGE, transfersOp, type LedgerStore } from '../ledger-store/ledger-store.js';
import { type IdempotencyKeys, type IdempotentRun, type StoredResponse } from './idempotency.js';
import {
  amountOf,
  BadRequest,
  balanceView,
  CreateAccountBody,
  historyView,
  PurchaseBody,
  transferFailure,
  TransferBody,
} from './ledger-views.js';
import { mayActFor, principalOf, requireAdminPrincipal, type Principal, type PrincipalDeps } from './principal.js';
import { apiError } from './routes.js';
import { guard, parse } from './route-guard.js';

export interface LedgerRoutesOptions {
  ledger: LedgerStore;
  idempotency: IdempotencyKeys;
  clock: Clock;
  admin_token: string | undefined;
}

const HistoryQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_HISTORY_PAGE).default(50),
  cursor: z.string().max(64).optional(),
});

const encodeCursor = (seq: number) => Buffer.from(`seq:${seq}`).toString('base64url');
function decodeCursor(cursor: string): number {
  const m = /^seq:(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new BadRequest('invalid_cursor', 'cursor is not one this API returned');
  return Number(m[1]);
}

const error = (status: number, code: string, message: string): StoredResponse => ({
  status,
  body: { error: { code, message } },
});

export async function ledgerRoutes(app: FastifyInstance, opts: LedgerRoutesOptions): Promise<void> {
  const { ledger, clock } = opts;
  const deps: PrincipalDeps = { db: ledger.db, admin_token: opts.admin_token };
  const { idempotency } = opts;

  /** An identity id (`user:…`, `provider:…`) → its primary ledger account, if the identity exists. */
  const primaryAccount = async (identity: string): Promise<string> => {
    if (!IDENTITY_ID_PATTERN.test(identity) || !(await getIdentity(ledger.db, identity))) {
      throw new BadRequest('unknown_account', `no account ${JSON.stringify(identity.slice(0, 80))}`, 404);
    }
    return ownedAccounts(identity)[0]!;
  };

  /** Runs transfers as one ledger operation; `view` builds the success body from the batch's state. */
  const runTransfers = (
    run: IdempotentRun,
    inputs: TransferInput[],
    view: (ctx: ApplyContext) => object,
    okStatus = 200,
  ) =>
    ledger.submit(
      transfersOp(inputs, (results, ctx) => {
        const bad = results.find((r) => r !== 'ok' && r !== 'exists');
        let response: StoredResponse;
        if (bad === undefined) response = { status: okStatus, body: view(ctx) };
        else {
          // A retried id that failed for good answers with its original reason.
          const why = bad === 'id_already_failed' ? (ctx.state.failed.get(inputs[0]!.id) ?? bad) : bad;
          const f = transferFailure(why);
          response = error(f.status, f.code, f.message);
        }
        run.record(ctx.writes, ctx.now_ms, response);
        return response;
      }),
    );

  const balanceIn = (ctx: ApplyContext, account: string): Account => ctx.state.accounts.get(account)!;

  app.post('/v1/accounts', async (req, reply) =>
    guard(reply, async () => {
      const p = await requireAdminPrincipal(req, reply, deps);
      if (!p) return reply;
      const body = parse(CreateAccountBody, req.body);
      const created = newIdentity(body.kind, body.name, clock.now());
      return idempotency.handle(req, reply, p.id, (run) =>
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
        ),
      );
    }),
  );

  app.post('/v1/credits/purchase', async (req, reply) =>
    guard(reply, async () => {
      const p = await requireAdminPrincipal(req, reply, deps);
      if (!p) return reply;
      const body = parse(PurchaseBody, req.body);
      const amount = amountOf(body);
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
      return idempotency.handle(req, reply, p.id, (run) =>
        runTransfers(
          run,
          [input],
          (ctx) => ({
            transfer_id: id,
            account: body.account,
            payment_ref: body.payment_ref,
            amount_micro_usd: Number(amount),
            amount_usd: formatUsd(amount),
            balance: balanceView(body.account, balanceIn(ctx, to)),
          }),
          201,
        ),
      );
    }),
  );

  app.post('/v1/credits/transfer', async (req, reply) =>
    guard(reply, async () => {
      const p = await principalOf(req, reply, deps);
      if (!p) return reply;
      const body = parse(TransferBody, req.body);
      const amount = amountOf(body);
      const fromId = body.from ?? (p.kind === 'identity' ? p.id : undefined);
      if (fromId === undefined)
        throw new BadRequest('invalid_request', 'from is required when the admin token makes a transfer');
      if (!mayActFor(p, fromId))
        return apiError(reply, 403, 'forbidden', 'an API key can only move money out of its own account');
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
        return runTransfers(run, [input], (ctx) => ({
          transfer_id: id,
          from: fromId,
          to: body.to,
          amount_micro_usd: Number(amount),
          amount_usd: formatUsd(amount),
          memo: body.memo ?? null,
          balance: balanceView(fromId, balanceIn(ctx, from)),
        }));
      });
    }),
  );

  /** `account` param → the ledger accounts the caller may read, or an error already sent. */
  const readable = async (
    req: FastifyRequest,
    reply: FastifyReply,
  ): Promise<{ p: Principal; account: string; ledgerAccounts: string[] } | null> => {
    const p = await principalOf(req, reply, deps);
    if (!p) return null;
    const account = (req.params as { account: string }).account;
    if (!mayActFor(p, account)) {
      void apiError(reply, 403, 'forbidden', 'an API key can only read its own account');
      return null;
    }
    if (IDENTITY_ID_PATTERN.test(account))
      return { p, account, ledgerAccounts: [await primaryAccount(account), ...ownedAccounts(account).slice(1)] };
    if (ownerOf(account) !== undefined || p.kind === 'admin') return { p, account, ledgerAccounts: [account] };
    void apiError(reply, 404, 'unknown_account', `no account ${JSON.stringify(account.slice(0, 80))}`);
    return null;
  };

  app.get('/v1/balances/:account', async (req, reply) =>
    guard(reply, async () => {
      const r = await readable(req, reply);
      if (!r) return reply;
      const primary = r.ledgerAccounts[0]!;
      const a = await ledger.account(primary);
      if (!a) return apiError(reply, 404, 'unknown_account', `no account ${JSON.stringify(r.account.slice(0, 80))}`);
      const view: Record<string, unknown> = balanceView(r.account, a);
      if (r.ledgerAccounts.length > 1) {
        // A provider: its earnings are the balance; its stake is shown beside it.
        const stake = await ledger.account(r.ledgerAccounts[1]!);
        if (stake) view.stake_micro_usd = Number(stake.credits_posted - stake.debits_posted);
      }
      return view;
    }),
  );

  app.get('/v1/accounts/:account/transfers', async (req, reply) =>
    guard(reply, async () => {
      const r = await readable(req, reply);
      if (!r) return reply;
      const q = parse(HistoryQuery, req.query);
      const page = await ledger.history(r.ledgerAccounts, {
        limit: q.limit,
        ...(q.cursor !== undefined ? { before_seq: decodeCursor(q.cursor) } : {}),
      });
      return {
        account: r.account,
        transfers: page.entries.map((e) => historyView(e.seq, e.entry, r.ledgerAccounts)),
        next_cursor: page.next_before_seq === null ? null : encodeCursor(page.next_before_seq),
      };
    }),
  );
}
