// Request ids: every response carries `Request-Id`, and every log line of a request names it. A well-formed
// id the caller sent (`Request-Id` or `X-Request-Id`, e.g. from a proxy in front) is kept, so one id follows
// the request through every hop; anything else gets a fresh UUID.
import { randomUUID } from 'node:crypto';
import { IncomingMessage } from 'node:http';

/** Longest incoming id accepted; longer ones are replaced (they end up in every log line of the request). */
export const MAX_REQUEST_ID_CHARS = 128;
/** Characters safe in a header and a log line: no spaces, quotes, commas or control characters. */
const WELL_FORMED = new RegExp(`^[A-Za-z0-9._:@+=/-]{1,${MAX_REQUEST_ID_CHARS}}$`);

const kRequestId = Symbol('ee.request_id');

/**
 * The request class our servers create (http.ServerOptions.IncomingMessage): the id's slot is declared, so
 * tagging a request keeps its shape. Added later to a plain IncomingMessage, the property changes the
 * object's hidden class on every request, a cost measured on the proxy's hot path.
 */
export class TaggedIncomingMessage extends IncomingMessage {
  [kRequestId]: string | undefined = undefined;
}

export const newRequestId = (): string => randomUUID();

export function wellFormedRequestId(value: unknown): value is string {
  return typeof value === 'string' && WELL_FORMED.test(value);
}

/** The request's id (computed once per request and kept on it). */
export function requestIdOf(req: IncomingMessage | undefined): string {
  if (req === undefined) return newRequestId();
  const tagged = req as IncomingMessage & { [kRequestId]?: string };
  let id = tagged[kRequestId];
  if (id === undefined) {
    const given = req.headers['request-id'] ?? req.headers['x-request-id'];
    id = wellFormedRequestId(given) ? given : newRequestId();
    tagged[kRequestId] = id;
  }
  return id;
}
