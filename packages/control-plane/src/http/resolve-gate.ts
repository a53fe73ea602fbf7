// GET /v1/resolve/{app} as an external proxy's gate (nginx `auth_request`, Caddy `forward_auth`). Such a
// proxy understands 2xx (let the request through) and 401/403 (refuse it); any other status — a 404 for an
// unknown app, a 400 for a malformed name — nginx turns into a 500 for the visitor. With `?auth_request=1`
// every refusal is therefore a 403 (the JSON error and its code unchanged), and the app may be named by the
// host the visitor asked for (`{app}.<EE_APP_DOMAIN>`), so a proxy can pass `$host` as is. Every answer about
// a known app carries its state in EE-App-* headers an `auth_request_set` / `copy_headers` can read (never
// EE-Sealed, which marks a sealed request to an agent).

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { StoreHealth } from '../store/health.js';
import { answerFor, sendAnswer } from './error-handler.js';
import { appFromHost } from './proxy-routing.js';

export const ResolveParams = z.object({
  app: z
    .string()
    .max(253)
    .meta({ description: 'the app name, or (with auth_request=1) the host {app}.<EE_APP_DOMAIN>' }),
});

export const ResolveQuery = z.object({
  auth_request: z
    .enum(['0', '1'])
    .optional()
    .meta({ description: '1: every refusal is a 403 (what nginx auth_request and Caddy forward_auth understand)' }),
});

/** The headers an external proxy can pass on or log: the app's state at the time of the check. */
export const RESOLVE_HEADERS = {
  status: 'ee-app-status',
  agents: 'ee-app-agents',
  sealed: 'ee-app-sealed',
  network: 'ee-app-network',
  last_attestation: 'ee-app-last-attestation',
  expires_at: 'ee-app-expires-at',
} as const;

export interface ResolveState {
  status: string;
  agents: number;
  sealed: boolean | null;
  network: string;
  last_attest: string | null;
  expires_at: string | null;
}

export function setResolveHeaders(reply: FastifyReply, s: ResolveState): void {
  reply.header(RESOLVE_HEADERS.status, s.status);
  reply.header(RESOLVE_HEADERS.agents, String(s.agents));
  reply.header(RESOLVE_HEADERS.sealed, s.sealed === null ? 'unknown' : String(s.sealed));
  reply.header(RESOLVE_HEADERS.network, s.network);
  reply.header(RESOLVE_HEADERS.last_attestation, s.last_attest ?? 'none');
  reply.header(RESOLVE_HEADERS.expires_at, s.expires_at ?? 'none');
}

/** Whether the caller asked for gate answers (any value of the flag counts, even a malformed one). */
export function isGateRequest(req: FastifyRequest): boolean {
  const q = req.query as Record<string, unknown> | undefined;
  return q !== undefined && q !== null && q.auth_request !== undefined && q.auth_request !== '0';
}

/** The app a gate request names: a host under the app domain stands for its app. */
export function appOfGateRequest(name: string, app_domain: string | undefined): string {
  if (!name.includes('.')) return name;
  return appFromHost(name, app_domain) ?? name;
}

/** The route's error handler: the usual answer, but a gate request only ever hears 401 or 403. */
export function gateErrorHandler(store: StoreHealth) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const a = answerFor(err, req, store);
    if (a.status >= 500) req.log.error({ err }, 'resolve failed');
    if (!isGateRequest(req) || a.status === 401 || a.status === 403) return sendAnswer(reply, a);
    return sendAnswer(reply, { status: 403, code: a.code, message: a.message });
  };
}

/** Fastify's router path-parameter limit: long enough for a host name (253) as resolve's parameter. */
export const MAX_PATH_PARAM_CHARS = 256;

/**
 * Fastify's router refusals (a malformed URL, a path parameter over MAX_PATH_PARAM_CHARS) in the one error
 * shape, and as a 403 for a gate request, like every other refusal of resolve.
 */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const too_long = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
  const gate = req.url.startsWith('/v1/resolve/') && /[?&]auth_request=/.test(req.url);
  return sendAnswer(reply, {
    status: gate ? 403 : too_long ? 414 : 400,
    code: too_long ? 'uri_too_long' : 'bad_request',
    message: too_long ? `a path segment is longer than ${MAX_PATH_PARAM_CHARS} characters` : 'malformed URL',
  });
}
