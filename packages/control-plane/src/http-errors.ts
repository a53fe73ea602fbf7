// The one error shape of every HTTP answer: `{"error":{"code","message"}}`, plus Retry-After where waiting helps.
import { STATUS_CODES, type ServerResponse } from 'node:http';

export interface ApiError {
  status: number;
  code: string;
  message: string;
  retry_after_s?: number;
}

export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** Writes a JSON error on a raw response (the proxy path bypasses fastify for speed). */
export function sendRawError(res: ServerResponse, e: ApiError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(e.code, e.message);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  if (e.retry_after_s !== undefined) headers['retry-after'] = e.retry_after_s;
  res.writeHead(e.status, headers);
  res.end(body);
}

/** Writes a JSON error as a raw HTTP/1.1 response on a socket (failed upgrade requests). */
export function rawErrorResponse(e: ApiError): string {
  const body = errorBody(e.code, e.message);
  const retry = e.retry_after_s !== undefined ? `Retry-After: ${e.retry_after_s}\r\n` : '';
  return (
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n${body}`
  );
}
