// The JSON calls of the ledger and the market share these: which credential a call sends, and POSTs that carry
// an Idempotency-Key made once per logical call and reused on the SDK's retries (so a retry can never move
// money twice); a replay answers with `Idempotent-Replayed: true` (`replayed` in the result).
import type { z } from 'zod';
import { newIdempotencyKey } from './bytes.js';
import { callJson } from './json.js';
import { InvalidResponseError } from './errors.js';
import type { CallOptions, Transport } from './http.js';

/** The credentials a client holds; each call picks the one its route needs. */
export interface Auth {
  api_key?: string;
  admin_token?: string;
  launcher_token?: string;
}

export interface IdempotentOptions extends CallOptions {
  /** Your own key (e.g. to make a retry of yours, across processes, safe too); default a fresh UUID. */
  idempotency_key?: string;
}

export type Replayable<T> = T & { replayed: boolean };

export type AuthHeader = Record<string, string>;

/** The given credential, required: a local TypeError instead of a 401 from the server. */
export function bearer(token: string | undefined, what: string): AuthHeader {
  if (token === undefined) throw new TypeError(`${what} is required for this call`);
  return { authorization: `Bearer ${token}` };
}

/** Calls the server answers for "an account or the admin": the API key when there is one, else the admin token. */
export function principal(auth: Auth): AuthHeader {
  return bearer(auth.api_key ?? auth.admin_token, 'apiKey (or adminToken)');
}

/** Like principal(), but a call without credentials is still made (public reads; the server decides). */
export function optionalPrincipal(auth: Auth): AuthHeader {
  const token = auth.api_key ?? auth.admin_token;
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

export function mergeHeaders(auth: AuthHeader, o: CallOptions): Headers {
  const h = new Headers(o.headers);
  for (const [k, v] of Object.entries(auth)) h.set(k, v);
  return h;
}

export async function get<S extends z.ZodType>(
  t: Transport,
  path: string,
  auth: AuthHeader,
  o: CallOptions,
  schema: S,
): Promise<z.output<S>> {
  return (await callJson(t, { ...o, method: 'GET', path, headers: mergeHeaders(auth, o) }, schema)).data;
}

/** A DELETE the server treats as idempotent: the key is only there to let the transport retry it. */
export function del<S extends z.ZodType>(
  t: Transport,
  path: string,
  auth: AuthHeader,
  o: CallOptions,
  schema: S,
): Promise<z.output<S>> {
  return callJson(
    t,
    { ...o, headers: mergeHeaders(auth, o), method: 'DELETE', path, idempotency_key: newIdempotencyKey() },
    schema,
  ).then((r) => r.data);
}

/** A POST under one Idempotency-Key for all its attempts. */
export async function post<S extends z.ZodType>(
  t: Transport,
  path: string,
  body: unknown,
  auth: AuthHeader,
  o: IdempotentOptions,
  schema: S,
): Promise<Replayable<z.output<S>>> {
  const { idempotency_key = newIdempotencyKey(), ...rest } = o;
  const r = await callJson(
    t,
    { ...rest, method: 'POST', path, body, idempotency_key, headers: mergeHeaders(auth, o) },
    schema,
  );
  // Two kinds of replay, both "nothing new happened": the same Idempotency-Key (the server's header), or the
  // same operation under a new key (e.g. a purchase's payment_ref that minted before: the body's `replayed`).
  const data = r.data as { replayed?: unknown };
  const replayed = r.headers.get('idempotent-replayed') === 'true' || data.replayed === true;
  return { ...data, replayed } as Replayable<z.output<S>>;
}

/** The request fields that are set: an optional field left undefined is not sent. */
export function defined<T extends Record<string, unknown>>(fields: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

/** Reading and ending one resource of the caller's (a lease, a reservation) by id, as its principal: GET and
 *  DELETE on its path (ending is idempotent on the server: a second DELETE answers the ended resource). */
export function ownedResource<S extends z.ZodType>(pathOf: (id: string) => string, schema: S) {
  return {
    read: (t: Transport, auth: Auth, id: string, o: CallOptions = {}): Promise<z.output<S>> =>
      get(t, pathOf(id), principal(auth), o, schema),
    end: (t: Transport, auth: Auth, id: string, o: CallOptions = {}): Promise<z.output<S>> =>
      del(t, pathOf(id), principal(auth), o, schema),
  };
}

/** An account id the caller gives (user:…, provider:… or a ledger account): a TypeError naming `what` when it
 *  is missing or not a bounded string, before any request. */
export function checkAccount(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '' || value.length > MAX_ACCOUNT_CHARS)
    throw new TypeError(`${what} must be an account id such as "user:0123456789abcdef0123"`);
  return value;
}

/** Longest account id the SDK sends (the server's ids are far shorter). */
export const MAX_ACCOUNT_CHARS = 200;

/** A path segment (an id the server names): non-empty, encoded. */
export function segment(value: string, what: string): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${what} must be a non-empty string`);
  return encodeURIComponent(value);
}

/** Largest page the list endpoints serve. */
export const MAX_PAGE_SIZE = 200;

/**
 * Every item of a cursor-paged list, newest first, fetching `limit` per page. Stops (InvalidResponseError)
 * if the server hands back a cursor it already gave, instead of looping.
 */
export async function* paged<S extends z.ZodType, T>(
  t: Transport,
  path: string,
  auth: AuthHeader,
  p: { limit?: number; query?: Record<string, string> },
  o: CallOptions,
  schema: S,
  items: (page: z.output<S>) => { rows: T[]; next_cursor: string | null },
): AsyncGenerator<T, void, undefined> {
  if (p.limit !== undefined && (!Number.isSafeInteger(p.limit) || p.limit < 1 || p.limit > MAX_PAGE_SIZE))
    throw new TypeError(`limit must be an integer from 1 to ${MAX_PAGE_SIZE} (the page size)`);
  const seen = new Set<string>();
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams(p.query);
    if (p.limit !== undefined) q.set('limit', String(p.limit));
    if (cursor !== null) q.set('cursor', cursor);
    const qs = q.toString();
    const page = items(await get(t, qs === '' ? path : `${path}?${qs}`, auth, o, schema));
    for (const row of page.rows) yield row;
    if (page.next_cursor !== null && seen.has(page.next_cursor))
      throw new InvalidResponseError(200, `${path}: the server repeated cursor ${page.next_cursor}`);
    cursor = page.next_cursor;
    if (cursor !== null) seen.add(cursor);
  } while (cursor !== null);
}
