// Sealed requests to an app (browser-safe): the body and the headers you pass are sealed with HPKE to the
// app's agent's X25519 key (take it from evidence you verified: `AppClient.verified.keyset`), and the answer
// is opened and authenticated before you read it. The control plane relays only ciphertext. A tampered or
// truncated answer errors the body stream; it is never returned as data. Wire format: docs/confidential.md.
//
// `ee.connect(app, { confidential: true })` does this for every request (confidential.ts); sealedFetch seals one
// request to a key you choose.
import { SealedHttpRequest, type HttpHeaderList } from '@easyenclave/protocol/seal/index';
import type { AppClient, AppRequestOptions } from './app-client.js';

export interface SealedFetchInit extends Omit<AppRequestOptions, 'headers' | 'idempotency_key'> {
  method?: string;
  /** Sealed inside the request (content type, credentials): the control plane never sees them. */
  headers?: Record<string, string> | Array<[string, string]>;
  body?: Uint8Array | string | ReadableStream<Uint8Array> | null;
}

/**
 * Sends one sealed request through `app` to the agent holding `hpke_public_key` (64 lowercase hex).
 * Resolves with the app's response, opened: its status and headers are the sealed ones (a changed status
 * is an error). An answer that is not sealed (a 421 wrong_key from another agent, a 503 from the control
 * plane) is returned as it came, with `sealed` false on the result: it is not from the app, and unauthenticated.
 */
export async function sealedFetch(
  app: AppClient,
  hpke_public_key: string,
  path: string,
  init: SealedFetchInit = {},
): Promise<{ sealed: boolean; response: Response }> {
  const { method: m, headers: h, body: b, ...rest } = init;
  const method = (m ?? 'GET').toUpperCase();
  // The path as the agent will see it (fetch normalises it the same way), bound into the seal.
  const u = new URL(path.startsWith('/') ? path : `/${path}`, 'http://app.invalid');
  const target = u.pathname + u.search;
  const headers: HttpHeaderList = Array.isArray(h) ? [...h] : Object.entries(h ?? {});
  const body = typeof b === 'string' ? new TextEncoder().encode(b) : b;
  const req = await SealedHttpRequest.create(hpke_public_key, { method, path: target, headers, body });
  const res = await app.fetch(target, {
    ...rest,
    method,
    headers: req.headers,
    ...(req.body !== null ? { body: req.body as Uint8Array | ReadableStream<Uint8Array> } : {}),
  });
  const opened = await req.openResponse(res);
  if (!opened.sealed) return { sealed: false, response: res };
  return { sealed: true, response: new Response(opened.body, { status: opened.status, headers: opened.headers }) };
}
