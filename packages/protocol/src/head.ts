// Request/response heads carried in HEADERS and TRAILERS frames, encoded as JSON.
// Validated by hand rather than with zod: this runs twice per proxied request on the hot path, and the
// shape is tiny and fixed. Any deviation is a protocol error.

import { DEFAULT_MAX_HEADER_BYTES, MAX_HEADER_COUNT, MAX_REQUEST_PATH_BYTES } from './limits.js';

export type HeaderList = Array<[string, string]>;

export interface RequestHead {
  method: string;
  /** Path and query as sent to the backend, starting with '/'. */
  path: string;
  headers: HeaderList;
  /** Deadline for response headers, so the agent can time its backend out first and name the cause. */
  timeout_ms: number;
  /** Connection upgrade (WebSocket): on 101 both directions become raw byte streams. */
  upgrade?: boolean;
}

export interface ResponseHead {
  status: number;
  headers: HeaderList;
}

export class HeadError extends Error {
  override readonly name = 'HeadError';
  constructor(
    message: string,
    readonly too_large = false,
  ) {
    super(message);
  }
}

const METHOD_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}$/;
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Node's own rule (http.validateHeaderValue): no control characters but horizontal tab, no DEL.
const INVALID_VALUE_RE = /[^\t\x20-\x7e\x80-\xff]/;
const MAX_TIMEOUT_MS = 24 * 3600 * 1000;

/** Sum of name and value lengths; the unit the header limit is expressed in. */
export function headerBytes(headers: HeaderList): number {
  let n = 0;
  for (const [k, v] of headers) n += k.length + v.length;
  return n;
}

function checkHeaders(value: unknown, max_header_bytes: number): HeaderList {
  if (!Array.isArray(value)) throw new HeadError('headers must be an array of [name, value] pairs');
  if (value.length > MAX_HEADER_COUNT) throw new HeadError(`more than ${MAX_HEADER_COUNT} headers`, true);
  let bytes = 0;
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new HeadError('each header must be a [name, value] pair of strings');
    }
    // Names must be HTTP tokens and values free of control characters (RFC 9110 §5): anything else could
    // smuggle header lines into the message written onward, and Node's writeHead would throw on it.
    if (!TOKEN_RE.test(pair[0])) throw new HeadError('header name is not an HTTP token');
    if (INVALID_VALUE_RE.test(pair[1])) throw new HeadError('header value contains a control character');
    bytes += pair[0].length + pair[1].length;
  }
  if (bytes > max_header_bytes) throw new HeadError(`header block of ${bytes} bytes exceeds ${max_header_bytes}`, true);
  return value as HeaderList;
}

function parseJsonObject(buf: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch {
    throw new HeadError('head is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new HeadError('head must be a JSON object');
  return value as Record<string, unknown>;
}

function rejectUnknownKeys(obj: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw new HeadError(`unknown field in head: ${k}`);
}

export function encodeHead(head: RequestHead | ResponseHead | { headers: HeaderList }): Buffer {
  return Buffer.from(JSON.stringify(head), 'utf8');
}

const REQUEST_KEYS = ['method', 'path', 'headers', 'timeout_ms', 'upgrade'] as const;
export function decodeRequestHead(buf: Buffer, max_header_bytes = DEFAULT_MAX_HEADER_BYTES): RequestHead {
  const o = parseJsonObject(buf);
  rejectUnknownKeys(o, REQUEST_KEYS);
  if (typeof o.method !== 'string' || !METHOD_RE.test(o.method)) throw new HeadError('invalid method');
  if (
    typeof o.path !== 'string' ||
    !o.path.startsWith('/') ||
    o.path.length > MAX_REQUEST_PATH_BYTES ||
    /[\s\0]/.test(o.path)
  ) {
    throw new HeadError('invalid path');
  }
  if (
    typeof o.timeout_ms !== 'number' ||
    !Number.isInteger(o.timeout_ms) ||
    o.timeout_ms < 1 ||
    o.timeout_ms > MAX_TIMEOUT_MS
  ) {
    throw new HeadError('invalid timeout_ms');
  }
  if (o.upgrade !== undefined && typeof o.upgrade !== 'boolean') throw new HeadError('invalid upgrade flag');
  const head: RequestHead = {
    method: o.method,
    path: o.path,
    headers: checkHeaders(o.headers, max_header_bytes),
    timeout_ms: o.timeout_ms,
  };
  if (o.upgrade) head.upgrade = true;
  return head;
}

export function decodeResponseHead(buf: Buffer, max_header_bytes = DEFAULT_MAX_HEADER_BYTES): ResponseHead {
  const o = parseJsonObject(buf);
  rejectUnknownKeys(o, ['status', 'headers']);
  if (typeof o.status !== 'number' || !Number.isInteger(o.status) || o.status < 100 || o.status > 599) {
    throw new HeadError('invalid status');
  }
  return { status: o.status, headers: checkHeaders(o.headers, max_header_bytes) };
}

export function decodeTrailers(buf: Buffer, max_header_bytes = DEFAULT_MAX_HEADER_BYTES): HeaderList {
  const o = parseJsonObject(buf);
  rejectUnknownKeys(o, ['headers']);
  return checkHeaders(o.headers, max_header_bytes);
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) are never forwarded; each hop manages its own connection. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Converts Node's rawHeaders ([k, v, k, v, ...]) into a list, dropping hop-by-hop headers and any the
 *  Connection header names. `keep` lets upgrade requests carry `upgrade`/`connection` through. */
export function headersFromRaw(raw: string[], keep?: ReadonlySet<string>): HeaderList {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      for (const token of raw[i + 1]!.split(',')) (named ??= new Set()).add(token.trim().toLowerCase());
    }
  }
  const out: HeaderList = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if ((HOP_BY_HOP.has(lower) || named?.has(lower)) && !keep?.has(lower)) continue;
    out.push([name, raw[i + 1]!]);
  }
  return out;
}
