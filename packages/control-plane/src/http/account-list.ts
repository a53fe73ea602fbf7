// GET /v1/accounts (admin): the user and provider accounts, newest first, cursor-paged, optionally of one kind.
// Never a key or its hash: an API key is shown once, when the account is created.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ownedAccounts } from '../ledger/chart.js';
import { identitiesPage, MAX_IDENTITIES_PAGE } from '../ledger-store/identities.js';
import type { LedgerStore } from '../ledger-store/ledger-store.js';
import { authHooks } from './auth-hooks.js';
import { apiFailure } from './error-catalogue.js';
import { BEARER, errorResponses, IsoTime } from './schemas.js';

/** Rows per page unless the caller asks otherwise. */
const DEFAULT_PAGE_ROWS = 50;
const MAX_CURSOR_CHARS = 200;

const AccountListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_IDENTITIES_PAGE).default(DEFAULT_PAGE_ROWS),
  cursor: z.string().max(MAX_CURSOR_CHARS).optional(),
  kind: z.enum(['user', 'provider']).optional(),
});
const AccountListView = z.looseObject({
  accounts: z.array(
    z.looseObject({
      account_id: z.string(),
      kind: z.enum(['user', 'provider']),
      name: z.string(),
      ledger_accounts: z.array(z.string()),
      created_at: IsoTime,
    }),
  ),
  next_cursor: z.string().nullable().meta({ description: 'pass as `cursor` for the next page; null at the end' }),
});

const encodeCursor = (after: { ms: number; id: string } | null) =>
  after === null ? null : Buffer.from(`${after.ms}:${after.id}`, 'utf8').toString('base64url');
function decodeCursor(cursor: string | undefined): { ms: number; id: string } | undefined {
  if (cursor === undefined) return undefined;
  const m = /^(\d{1,16}):((?:user|provider):[0-9a-f]{20})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw apiFailure('invalid_cursor', undefined, { param: 'cursor' });
  return { ms: Number(m[1]), id: m[2]! };
}

export async function accountListRoutes(
  base: FastifyInstance,
  opts: { ledger: LedgerStore; admin_token: string | undefined },
): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const auth = authHooks({ db: opts.ledger.db, now: opts.ledger.now, admin_token: opts.admin_token });
  app.get(
    '/v1/accounts',
    {
      onRequest: auth.admin,
      schema: {
        tags: ['ledger'],
        summary: 'User and provider accounts, newest first (admin)',
        security: BEARER,
        querystring: AccountListQuery,
        response: { 200: AccountListView, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await identitiesPage(opts.ledger.db, q.limit, decodeCursor(q.cursor), q.kind);
      return {
        accounts: page.rows.map((r) => ({
          account_id: r.id,
          kind: r.kind,
          name: r.name,
          ledger_accounts: ownedAccounts(r.id),
          created_at: new Date(r.created_ms).toISOString(),
        })),
        next_cursor: encodeCursor(page.next),
      };
    },
  );
}
