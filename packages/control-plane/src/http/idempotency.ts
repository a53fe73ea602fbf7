// Idempotency-Key with Stripe's semantics for every POST that changes money:
// - the first request with a key runs, and its response is stored in the same transaction as its effect;
// - a retry with the same key and the same request gets the stored response and `Idempotent-Replayed: true`;
// - the same key with a different request is refused (400 idempotency_key_reused), nothing runs;
// - a retry while the first is still running is refused (409 idempotency_key_in_use);
// - keys are remembered for IDEMPOTENCY_RETENTION_MS; after that the ledger's own transfer ids (derived from
//   the key) still make a late retry harmless: the engine answers 'exists' / 'exists_with_different_fields'.
// Keys are scoped to the caller, so two accounts can never collide on one.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ExtraWrites } from '../ledger-store/batch.js';
import { findIdempotencyRecord, pruneIdempotencyRecords } from '../ledger-store/idempotency-records.js';
import type { Db } from '../store/database.js';
import { apiFailure, errorBodyOf, ERROR_CATALOGUE, type ErrorCode } from './error-catalogue.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body as parsed, before schema validation transformed it (defaults, exact amounts). */
    receivedBody: unknown;
  }
}

/**
 * A request is identified by the body the client sent, not by what validation made of it (defaults added,
 * amounts converted): the same bytes keep the same hash whatever the schemas do.
 */
export function captureReceivedBody(app: FastifyInstance): void {
  app.decorateRequest('receivedBody', undefined);
  app.addHook('preValidation', async (req) => {
    req.receivedBody = req.body;
  });
}

export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
export const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Requests with a key running at once on this replica; beyond that a new key gets 503 (bounded memory). */
export const MAX_IN_FLIGHT_KEYS = 65_536;

/** Nesting accepted in a request that carries an Idempotency-Key (no API body nests deeper than 3). */
export const MAX_CANONICAL_DEPTH = 16;

/** JSON with object keys sorted, so `{a,b}` and `{b,a}` are the same request. */
function canonical(value: unknown, depth = 0): string {
  if (depth > MAX_CANONICAL_DEPTH)
    throw apiFailure('invalid_request', `the request body nests deeper than ${MAX_CANONICAL_DEPTH} levels`);
  if (Array.isArray(value)) return `[${value.map((v) => canonical(v, depth + 1)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v, depth + 1)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export interface StoredResponse {
  status: number;
  body: unknown;
  /**
   * The request changed nothing because what it asks for had already happened (a payment_ref that minted
   * before, a transfer id already applied): answered like a replay (`Idempotent-Replayed: true`). Not stored.
   */
  replayed?: boolean;
}

/** A refusal (a core's, or the route's) as a response to store with the request's effect. */
export function errorResponse(r: { code: ErrorCode; message?: string }): StoredResponse {
  const status = ERROR_CATALOGUE[r.code].status;
  return { status, body: errorBodyOf(r.code, r.message ?? ERROR_CATALOGUE[r.code].message, status) };
}

/** What a route gets to run an idempotent request. */
export interface IdempotentRun {
  /** A transfer id derived from (caller, key) when a key was given; random otherwise. */
  derivedId(prefix: string, fallback: () => string): string;
  /** Call inside the ledger operation: stores the response with the operation's effect. */
  record(writes: ExtraWrites, now_ms: number, response: StoredResponse): void;
}

function send(reply: FastifyReply, r: StoredResponse): FastifyReply {
  if (r.replayed === true) reply.header('idempotent-replayed', 'true');
  return reply.code(r.status).send(r.body);
}

export class IdempotencyKeys {
  readonly #inFlight = new Set<string>();

  constructor(private readonly db: Db) {}

  /**
   * Runs `run` under the request's Idempotency-Key (if any) and sends its response; replays, mismatches and
   * concurrent duplicates are answered here without running it.
   */
  async handle(
    req: FastifyRequest,
    reply: FastifyReply,
    principal: string,
    run: (ctx: IdempotentRun) => Promise<StoredResponse>,
  ): Promise<FastifyReply> {
    const header = req.headers['idempotency-key'];
    if (header === undefined) {
      const response = await run({ derivedId: (_p, fallback) => fallback(), record: () => undefined });
      return send(reply, response);
    }
    if (typeof header !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(header))
      throw apiFailure('invalid_idempotency_key', undefined, { param: 'idempotency-key' });
    const key = header;
    const request_hash = createHash('sha256')
      .update(canonical([req.method, req.routeOptions.url, req.params, req.receivedBody]))
      .digest('hex');
    const slot = `${principal}\n${key}`;
    if (this.#inFlight.has(slot)) throw apiFailure('idempotency_key_in_use');
    if (this.#inFlight.size >= MAX_IN_FLIGHT_KEYS) throw apiFailure('busy', undefined, { retry_after_s: 1 });
    this.#inFlight.add(slot);
    try {
      const stored = await findIdempotencyRecord(this.db, principal, key);
      if (stored) {
        if (stored.request_hash !== request_hash) throw apiFailure('idempotency_key_reused');
        return reply
          .code(stored.status_code)
          .header('idempotent-replayed', 'true')
          .type('application/json; charset=utf-8')
          .send(stored.response);
      }
      const digest = createHash('sha256').update(slot).digest('hex').slice(0, 40);
      const response = await run({
        derivedId: (prefix) => `${prefix}${digest}`,
        record: (writes, now_ms, r) => {
          writes.idempotency.push({
            principal,
            key,
            request_hash,
            status_code: r.status,
            response: JSON.stringify(r.body),
            created_ms: now_ms,
          });
        },
      });
      return send(reply, response);
    } finally {
      this.#inFlight.delete(slot);
    }
  }

  /** Forgets keys older than the retention window. Returns how many were removed. */
  prune(now_ms: number): Promise<number> {
    return pruneIdempotencyRecords(this.db, now_ms - IDEMPOTENCY_RETENTION_MS);
  }
}
