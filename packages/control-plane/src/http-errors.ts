// The one error shape of every HTTP answer, `{"error":{"code","message","type"}}` (type from the error
// catalogue, http/error-catalogue.ts), plus Retry-After where waiting helps and the request's Request-Id. This
// file writes it on the raw paths (the proxy, failed upgrades, parser errors) that bypass fastify.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { errorBodyOf } from './http/error-catalogue.js';
import { newRequestId, requestIdOf } from './http/request-id.js';

export interface ApiError {
  status: number;
  code: string;
  message: string;
  retry_after_s?: number;
}

export function errorBody(e: ApiError): string {
  return JSON.stringify(errorBodyOf(e.code, e.message, e.status));
}

/** Writes a JSON error on a raw response (the proxy path bypasses fastify for speed). */
export function sendRawError(res: ServerResponse, e: ApiError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(e);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'request-id': requestIdOf((res as ServerResponse & { req?: IncomingMessage }).req),
  };
  if (e.retry_after_s !== undefined) headers['retry-after'] = e.retry_after_s;
  res.writeHead(e.status, headers);
  res.end(body);
}

/** Writes a JSON error as a raw HTTP/1.1 response on a socket (failed upgrade requests, parser errors). */
export function rawErrorResponse(e: ApiError, req?: IncomingMessage): string {
  const body = errorBody(e);
  const retry = e.retry_after_s !== undefined ? `Retry-After: ${e.retry_after_s}\r\n` : '';
  const id = req ? requestIdOf(req) : newRequestId();
  return (
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${retry}Request-Id: ${id}\r\nConnection: close\r\n\r\n${body}`
  );
}
