// Who is calling: the operator (admin token) or an API identity (its key). Shared by every route that moves
// money, so the rules live in one place: no credentials → 401, wrong credentials → 401, right credentials for
// the wrong account → 403 (decided by the route with `mayActFor`).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { bearerToken, tokensEqual } from '../auth.js';
import { ownerOf } from '../ledger/chart.js';
import { authenticate, type Identity } from '../ledger-store/identities.js';
import type { LedgerDatabase } from '../ledger-store/schema.js';
import { apiError } from './routes.js';

export type Principal = { kind: 'admin'; id: 'admin' } | { kind: 'identity'; id: string; identity: Identity };

export interface PrincipalDeps {
  db: Kysely<LedgerDatabase>;
  admin_token: string | undefined;
}

/** Resolves the caller, or sends 401 and returns null. */
export async function principalOf(
  req: FastifyRequest,
  reply: FastifyReply,
  deps: PrincipalDeps,
): Promise<Principal | null> {
  const token = bearerToken(req.headers.authorization);
  if (token === null) {
    void apiError(reply, 401, 'unauthorized', 'missing Authorization: Bearer <API key or admin token>');
    return null;
  }
  if (deps.admin_token !== undefined && tokensEqual(token, deps.admin_token)) return { kind: 'admin', id: 'admin' };
  const identity = await authenticate(deps.db, token);
  if (identity) return { kind: 'identity', id: identity.id, identity };
  void apiError(reply, 401, 'unauthorized', 'invalid API key or admin token');
  return null;
}

/** Admin-only routes. With no EE_ADMIN_TOKEN configured nobody is admin: money is never minted unauthenticated. */
export async function requireAdminPrincipal(
  req: FastifyRequest,
  reply: FastifyReply,
  deps: PrincipalDeps,
): Promise<Principal | null> {
  if (deps.admin_token === undefined) {
    void apiError(
      reply,
      403,
      'admin_disabled',
      'this endpoint needs the admin token, and EE_ADMIN_TOKEN is not configured',
    );
    return null;
  }
  const p = await principalOf(req, reply, deps);
  if (p === null) return null;
  if (p.kind !== 'admin') {
    void apiError(reply, 403, 'forbidden', 'this endpoint needs the admin token');
    return null;
  }
  return p;
}

/** Whether the caller may act on `account` (an identity id or one of its ledger accounts). */
export function mayActFor(p: Principal, account: string): boolean {
  return p.kind === 'admin' || ownerOf(account) === p.id;
}
