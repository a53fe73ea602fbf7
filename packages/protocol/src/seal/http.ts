// Sealed HTTP, version 1 (docs/confidential.md): what travels in clear and what is sealed.
//
// Request:  EE-Sealed: v1; key=<key id hex>            body = sealed request (Content-Type: application/ee-sealed+v1)
//           EE-Sealed: v1; key=<hex>; envelope=<b64u>  no body: the sealed request (empty body) rides in the header
// Response: EE-Sealed: v1                              body = sealed response
//           EE-Sealed: v1; envelope=<b64u>             no body (HEAD, 204, 304)
//
// Method, path, status and the routing headers stay in clear; the request is sealed with additional data
// "ee-http-v1" ‖ 0 ‖ method ‖ 0 ‖ path, so neither can be changed in transit. The inner headers (content
// type, credentials, the backend's response headers) and the response's true status are in the meta frame.
import { concatBytes, fromBase64Url, toBase64Url, utf8 } from './bytes.js';
import { MAX_AAD_BYTES, MAX_META_BYTES } from './constants.js';
import { SealError } from './errors.js';

export const SEALED_MEDIA_TYPE = 'application/ee-sealed+v1';
export const SEALED_HEADER = 'ee-sealed';
export const SEALED_HEADER_VERSION = 'v1';
/** Largest envelope carried in a header (base64url characters): an empty body and its meta record. */
export const MAX_HEADER_ENVELOPE_CHARS = 12 * 1024;
/** Most inner headers a meta record may carry (as the tunnel's MAX_HEADER_COUNT). */
export const MAX_META_HEADERS = 256;

export type HttpHeaderList = Array<[string, string]>;

export interface SealedHeader {
  version: typeof SEALED_HEADER_VERSION;
  /** Request: the key id (64 lowercase hex) the request is sealed to. */
  key: string | null;
  /** The whole sealed message, when the HTTP message has no body. */
  envelope: Uint8Array | null;
}

const KEY_ID_HEX_RE = /^[0-9a-f]{64}$/;

/** Parses an EE-Sealed value strictly: `v1` then `; key=…` and/or `; envelope=…`, each at most once. */
export function parseSealedHeader(value: string): SealedHeader {
  const parts = value.split(';').map((p) => p.trim());
  const version = parts[0];
  if (version !== SEALED_HEADER_VERSION) {
    throw new SealError(/^v\d+$/.test(version ?? '') ? 'unsupported' : 'malformed', `EE-Sealed version "${version}"`);
  }
  const out: SealedHeader = { version: SEALED_HEADER_VERSION, key: null, envelope: null };
  const seen = new Set<string>();
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    const name = eq < 0 ? p : p.slice(0, eq).trim().toLowerCase();
    const v = eq < 0 ? '' : p.slice(eq + 1).trim();
    if (seen.has(name)) throw new SealError('malformed', `EE-Sealed parameter "${name}" given twice`);
    seen.add(name);
    if (name === 'key') {
      if (!KEY_ID_HEX_RE.test(v)) throw new SealError('malformed', 'EE-Sealed key must be 64 lowercase hex characters');
      out.key = v;
    } else if (name === 'envelope') {
      if (v.length > MAX_HEADER_ENVELOPE_CHARS) throw new SealError('too_large', 'EE-Sealed envelope is too large');
      try {
        out.envelope = fromBase64Url(v);
      } catch {
        throw new SealError('malformed', 'EE-Sealed envelope is not base64url');
      }
    } else {
      throw new SealError('malformed', `unknown EE-Sealed parameter "${name}"`);
    }
  }
  return out;
}

export function formatSealedHeader(o: { key?: string; envelope?: Uint8Array } = {}): string {
  let s = SEALED_HEADER_VERSION;
  if (o.key !== undefined) s += `; key=${o.key}`;
  if (o.envelope !== undefined) s += `; envelope=${toBase64Url(o.envelope)}`;
  return s;
}

/** The additional data of a sealed request: binds its method and target (path and query as the backend
 *  sees them, i.e. after the proxy's /v1/proxy/{app} prefix). */
export function requestAad(method: string, path: string): Uint8Array {
  const aad = concatBytes([utf8('ee-http-v1'), new Uint8Array(1), utf8(method), new Uint8Array(1), utf8(path)]);
  if (aad.length > MAX_AAD_BYTES) throw new SealError('too_large', 'request target too long to seal');
  return aad;
}

/** Statuses and methods whose responses have no body: their sealed response rides in the header. */
export function responseHasNoBody(method: string, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
}

// Same rules as the tunnel's heads (RFC 9110 §5): names are tokens, values have no control characters.
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const INVALID_VALUE_RE = /[^\t\x20-\x7e\x80-\xff]/;

export interface HttpMeta {
  /** Response only: the status the backend answered with (the clear one must match). */
  status?: number;
  headers: HttpHeaderList;
}

export function encodeHttpMeta(meta: HttpMeta): Uint8Array {
  const bytes = utf8(JSON.stringify(meta.status === undefined ? { headers: meta.headers } : meta));
  if (bytes.length > MAX_META_BYTES)
    throw new SealError('too_large', `headers too large to seal (${bytes.length} bytes)`);
  return bytes;
}

/** Parses a meta record strictly (exact fields, valid header names and values, bounded). */
export function decodeHttpMeta(bytes: Uint8Array | null, kind: 'request' | 'response'): HttpMeta {
  if (bytes === null) {
    if (kind === 'request') return { headers: [] };
    throw new SealError('malformed', 'a sealed response must carry its status and headers');
  }
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new SealError('malformed', 'sealed meta is not UTF-8 JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new SealError('malformed', 'sealed meta must be an object');
  const o = v as Record<string, unknown>;
  const allowed = kind === 'request' ? ['headers'] : ['status', 'headers'];
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) throw new SealError('malformed', `unknown field "${k}" in sealed meta`);
  const meta: HttpMeta = { headers: checkHeaderList(o.headers) };
  if (kind === 'response') {
    if (typeof o.status !== 'number' || !Number.isInteger(o.status) || o.status < 100 || o.status > 599) {
      throw new SealError('malformed', 'sealed meta has no valid status');
    }
    meta.status = o.status;
  }
  return meta;
}

function checkHeaderList(value: unknown): HttpHeaderList {
  if (!Array.isArray(value) || value.length > MAX_META_HEADERS) {
    throw new SealError('malformed', `sealed headers must be a list of at most ${MAX_META_HEADERS} pairs`);
  }
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new SealError('malformed', 'each sealed header must be a [name, value] pair of strings');
    }
    if (!TOKEN_RE.test(pair[0])) throw new SealError('malformed', 'sealed header name is not an HTTP token');
    if (INVALID_VALUE_RE.test(pair[1]))
      throw new SealError('malformed', 'sealed header value contains a control character');
  }
  return value as HttpHeaderList;
}
