// What of an agent's response head reaches the client. The agent is not trusted with the connection's framing:
// hop-by-hop fields (RFC 9110 §7.6.1, any Proxy-* field and whatever Connection names) and Transfer-Encoding
// are dropped, Content-Length is validated and re-stated by us, and the body is held to it (BodyLength), so
// no response can end early or run into the next one on a keep-alive or pipelined connection. Node frames the
// response (chunked when no length is known).
//
// The path entry (`/v1/proxy/{app}` on the API port) shares the API's origin with every other app, so unless
// the operator allows it there, it never lets an app set cookies on that origin or serve a document or
// script a browser would run in it. The host entry gives each app its own origin; its cookies are kept
// host-only (a Domain attribute would share them with sibling apps or the API's domain).

import { HOP_BY_HOP, type HeaderList, type ResponseHead } from '@easyenclave/protocol';

export interface EntryPolicy {
  /** Reached through `/v1/proxy/{app}`, on the API's origin. */
  path_entry: boolean;
  /** EE_PROXY_PATH_ACTIVE_CONTENT: the path entry passes cookies and active content like the host entry. */
  path_active_content: boolean;
}

export interface ClientHead {
  status: number;
  /** Flat [name, value, ...] for res.writeHead. */
  headers: string[];
  /** Body bytes the client must receive: the declared length, 0 for a bodiless answer, null when unknown. */
  body_bytes: number | null;
}

export type HeadRefusal = { refused: 'bad_response' | 'content_type_refused'; message: string };

/** The control plane's own field: every response names the request in our logs, whatever the app sends. */
export const OUR_REQUEST_ID = 'request-id';
const CONTENT_LENGTH_RE = /^[0-9]{1,16}$/;
const COOKIE_FIELDS = new Set(['set-cookie', 'set-cookie2']);

/**
 * Media types a browser runs script in, or renders as a document that can: HTML, XHTML, SVG and any XML
 * (XSLT, XHTML namespaces), JavaScript by any name, and multipart/x-mixed-replace (its parts are documents).
 */
export function isActiveContentType(content_type: string): boolean {
  const essence = content_type.split(';', 1)[0]!.trim().toLowerCase();
  return (
    essence === 'text/html' ||
    essence === 'multipart/x-mixed-replace' ||
    essence.endsWith('/xml') ||
    essence.endsWith('+xml') ||
    essence.endsWith('xsl') ||
    /script/.test(essence) ||
    essence === 'text/jscript' ||
    essence === 'text/livescript'
  );
}

/** `Set-Cookie` without any Domain attribute: the cookie stays with the host that set it. */
export function hostOnlyCookie(value: string): string {
  const parts = value.split(';');
  const kept = parts.filter((p, i) => i === 0 || p.trim().slice(0, 6).toLowerCase() !== 'domain');
  return kept.length === parts.length ? value : kept.join(';');
}

/** The head to write to the client for the agent's head, or why there is none. */
export function clientHead(head: ResponseHead, request_method: string, policy: EntryPolicy): ClientHead | HeadRefusal {
  const strict_path = policy.path_entry && !policy.path_active_content;
  let named: Set<string> | null = null;
  for (const [k, v] of head.headers) {
    if (k.length === 10 && k.toLowerCase() === 'connection') {
      for (const t of v.split(',')) (named ??= new Set()).add(t.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  let length: string | null = null;
  for (const [k, v] of head.headers) {
    const lower = k.toLowerCase();
    if (HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || named?.has(lower)) continue;
    if (lower === OUR_REQUEST_ID) continue;
    if (lower === 'content-length') {
      for (const part of v.split(',')) {
        const n = part.trim();
        if (!CONTENT_LENGTH_RE.test(n) || (length !== null && n !== length))
          return { refused: 'bad_response', message: 'the agent sent an invalid or conflicting Content-Length' };
        length = n;
      }
      continue;
    }
    if (COOKIE_FIELDS.has(lower)) {
      if (strict_path) continue;
      out.push(k, policy.path_entry ? v : hostOnlyCookie(v));
      continue;
    }
    if (strict_path && lower === 'content-type' && isActiveContentType(v)) {
      return {
        refused: 'content_type_refused',
        message:
          `/v1/proxy/{app} shares the API's origin and does not serve ${v.split(';', 1)[0]!.trim()}: ` +
          'open the app on its own host ({app}.<EE_APP_DOMAIN>)',
      };
    }
    out.push(k, v);
  }
  const declared = length === null ? null : Number(length);
  if (declared !== null && !Number.isSafeInteger(declared))
    return { refused: 'bad_response', message: 'the agent sent a Content-Length beyond 2^53 - 1' };
  if (strict_path) {
    // Nothing the browser sniffs into a document, and any document there runs without script in an opaque origin.
    out.push('x-content-type-options', 'nosniff', 'content-security-policy', 'sandbox');
  }
  const bodiless = request_method === 'HEAD' || head.status === 204 || head.status === 304 || head.status < 200;
  // A 204 never states a length (RFC 9110 §8.6); HEAD and 304 state the representation's, with no body.
  if (declared !== null && head.status !== 204) out.push('content-length', String(declared));
  return { status: head.status, headers: out, body_bytes: bodiless ? 0 : declared };
}

/** Counts response body bytes against what the head promised. */
export class BodyLength {
  private received = 0;
  constructor(readonly expected: number | null) {}

  /** False when `n` more bytes would exceed the promised length (the response must be cut). */
  take(n: number): boolean {
    this.received += n;
    return this.expected === null || this.received <= this.expected;
  }

  /** False when the body ended short of the promised length. */
  get complete(): boolean {
    return this.expected === null || this.received === this.expected;
  }
}

/** Trailer fields never carry framing, routing or cookies (RFC 9110 §6.5.1); the rest pass. */
export function trailersForClient(trailers: HeaderList): HeaderList {
  return trailers.filter(([k]) => {
    const lower = k.toLowerCase();
    return (
      !HOP_BY_HOP.has(lower) &&
      !lower.startsWith('proxy-') &&
      lower !== 'content-length' &&
      lower !== 'host' &&
      !COOKIE_FIELDS.has(lower)
    );
  });
}
