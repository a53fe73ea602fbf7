// Who is calling, as fastify hooks: a route declares its access in `onRequest` and its handler finds the
// caller in `req.principal`. One place for the rules: no credentials or wrong ones → 401 unauthorized; admin
// endpoints with no EE_ADMIN_TOKEN configured → 403 admin_disabled (money is never minted unauthenticated);
// the right credentials for another account → 403 (decided by the route with `mayActFor`). Tokens are
// compared in constant time (auth.ts).
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { bearerToken, tokensEqual } from '../auth.js';
import { ownerOf } from '../ledger/chart.js';
import { authenticate } from '../ledger-store/api-keys.js';
import type { Identity } from '../ledger-store/identities.js';
import type { Db } from '../store/database.js';
import { apiFailure } from './error-catalogue.js';

export type Principal = { kind: 'admin'; id: 'admin' } | { kind: 'identity'; id: string; identity: Identity };

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the `caller` and `admin` hooks; null on routes without them. */
    principal: Principal | null;
  }
}

export interface AuthDeps {
  db: Db;
  /** The ledger's clock: a rotated-out API key is refused from its expiry on. */
  now: () => number;
  admin_token: string | undefined;
}

async function resolve(req: FastifyRequest, deps: AuthDeps): Promise<Principal> {
  const token = bearerToken(req.headers.authorization);
  if (token === null) throw apiFailure('unauthorized', 'missing Authorization: Bearer <API key or admin token>');
  if (deps.admin_token !== undefined && tokensEqual(token, deps.admin_token)) return { kind: 'admin', id: 'admin' };
  const identity = await authenticate(deps.db, token, deps.now());
  if (identity) return { kind: 'identity', id: identity.id, identity };
  throw apiFailure('unauthorized', 'invalid API key or admin token');
}

export interface AuthHooks {
  /** An account's API key or the admin token. */
  caller: onRequestAsyncHookHandler;
  /** The admin token only. */
  admin: onRequestAsyncHookHandler;
  /** Operator views: the admin token when one is configured, open otherwise (read-only, no money). */
  operator: onRequestAsyncHookHandler;
  /** A service token (launcher, uptime reporter): 403 endpoint_disabled when not configured, 401 when wrong. */
  service(expected: string | undefined, name: string): onRequestAsyncHookHandler;
}

export function authHooks(deps: AuthDeps): AuthHooks {
  return {
    async caller(req) {
      req.principal = await resolve(req, deps);
    },
    async admin(req) {
      if (deps.admin_token === undefined) throw apiFailure('admin_disabled');
      const p = await resolve(req, deps);
      if (p.kind !== 'admin') throw apiFailure('forbidden', 'this endpoint needs the admin token');
      req.principal = p;
    },
    operator: operatorHook(deps.admin_token),
    service(expected, name) {
      return async (req) => {
        if (expected === undefined)
          throw apiFailure('endpoint_disabled', `this endpoint needs ${name}, and it is not configured`);
        const token = bearerToken(req.headers.authorization);
        if (token === null || !tokensEqual(token, expected))
          throw apiFailure('unauthorized', `missing or invalid Authorization: Bearer <${name}>`);
      };
    },
  };
}

/** Operator views (apps, metrics): the admin token when one is configured, open otherwise (read-only). */
export function operatorHook(admin_token: string | undefined): onRequestAsyncHookHandler {
  return async (req) => {
    if (admin_token === undefined) return;
    const token = bearerToken(req.headers.authorization);
    if (token === null) throw apiFailure('unauthorized', 'missing Authorization: Bearer <admin token>');
    if (!tokensEqual(token, admin_token)) throw apiFailure('unauthorized', 'invalid admin token');
    req.principal = { kind: 'admin', id: 'admin' };
  };
}

/** The caller a `caller`/`admin` hook resolved (a route without one of them has none: a bug). */
export function principalOf(req: FastifyRequest): Principal {
  const p = req.principal;
  if (p === null) throw new Error(`route ${req.routeOptions.url} has no auth hook but needs a principal`);
  return p;
}

/** Whether the caller may act on `account` (an identity id or one of its ledger accounts). */
export function mayActFor(p: Principal, account: string): boolean {
  return p.kind === 'admin' || ownerOf(account) === p.id;
}
