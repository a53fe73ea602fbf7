// POST /v1/accounts/{account}/keys: API key rotation (docs/security.md). The account's own key or the admin
// token issues a new key, shown once in the answer and stored only as a hash; the older keys keep working for
// `grace_ms` (0: refused at once), then answer 401. Honours Idempotency-Key: a retry gets the first answer
// without the key (it is not stored), and no second key is made.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IDENTITY_ID_PATTERN } from '../ledger/chart.js';
import {
  DEFAULT_KEY_GRACE_MS,
  forgetKeys,
  MAX_KEY_GRACE_MS,
  MAX_LIVE_API_KEYS,
  rotateKeyOp,
} from '../ledger-store/api-keys.js';
import { getIdentity, newApiKey } from '../ledger-store/identities.js';
import type { LedgerStore } from '../ledger-store/ledger-store.js';
import { authHooks, principalOf } from './auth-hooks.js';
import { apiFailure } from './error-catalogue.js';
import type { IdempotencyKeys } from './idempotency.js';
import { AccountParams } from './ledger-views.js';
import { BEARER, errorResponses, IdempotencyHeaders, IsoTime } from './schemas.js';

const RotateKeyBody = z.strictObject({
  grace_ms: z
    .number()
    .int()
    .min(0)
    .max(MAX_KEY_GRACE_MS)
    .default(DEFAULT_KEY_GRACE_MS)
    .meta({ description: 'how long the older keys stay valid (0: refused at once; default 24 h, at most 7 days)' }),
});

const RotatedKeyView = z.looseObject({
  account_id: z.string(),
  api_key: z.string().nullable().meta({ description: 'the new key, shown once; null in a replayed answer' }),
  created_at: IsoTime,
  previous_keys_expire_at: IsoTime.meta({ description: 'when the older keys stop working' }),
});

export async function accountKeyRoutes(
  base: FastifyInstance,
  opts: { ledger: LedgerStore; idempotency: IdempotencyKeys; admin_token: string | undefined },
): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { ledger } = opts;
  const auth = authHooks({ db: ledger.db, now: ledger.now, admin_token: opts.admin_token });
  app.post(
    '/v1/accounts/:account/keys',
    {
      onRequest: auth.caller,
      schema: {
        tags: ['ledger'],
        summary: `Issue a new API key for an account (its own key or admin); older keys end after grace_ms (at most ${MAX_LIVE_API_KEYS} valid at once)`,
        security: BEARER,
        headers: IdempotencyHeaders,
        params: AccountParams,
        body: RotateKeyBody,
        response: { 201: RotatedKeyView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const id = req.params.account;
      if (p.kind === 'identity' && p.id !== id)
        throw apiFailure('forbidden', "an API key may rotate only its own account's keys");
      const identity = IDENTITY_ID_PATTERN.test(id) ? await getIdentity(ledger.db, id) : undefined;
      if (!identity) throw apiFailure('unknown_account', `no account ${JSON.stringify(id.slice(0, 80))}`);
      const fresh = newApiKey(identity.id);
      const grace_ms = req.body.grace_ms;
      const answer = await opts.idempotency.handle(req, reply, p.id, (run) =>
        ledger.submit(
          rotateKeyOp({ identity, key_hash: fresh.key_hash, grace_ms }, (ctx, old_expires_ms) => {
            const summary = {
              account_id: identity.id,
              created_at: new Date(ctx.now_ms).toISOString(),
              previous_keys_expire_at: new Date(old_expires_ms).toISOString(),
            };
            // The key is never stored: a replay of this request says so instead of returning it.
            run.record(ctx.writes, ctx.now_ms, {
              status: 201,
              body: { ...summary, api_key: null, api_key_note: 'shown once, in the first response' },
            });
            return { status: 201, body: { ...summary, api_key: fresh.api_key } };
          }),
        ),
      );
      forgetKeys(ledger.db, identity.id);
      return answer;
    },
  );
}
