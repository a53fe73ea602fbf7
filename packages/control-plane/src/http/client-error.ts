// Requests Node's HTTP parser refuses (malformed request line, bytes outside HTTP's grammar, oversized
// header block, request timeout) never reach a route: Node answers them from 'clientError'. Its defaults
// (and fastify's) answer in other shapes; this one answers in ours, `{"error":{"code","message"}}`, and
// closes the connection, since the parser cannot find where the next request would start.

import type { Duplex } from 'node:stream';
import { rawErrorResponse, type ApiError } from '../http-errors.js';
import { answerAndClose } from './edge-guard.js';

interface ParserError extends Error {
  code?: string;
  reason?: string;
}

export function clientErrorAnswer(err: ParserError): ApiError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, code: 'headers_too_large', message: 'the request header block exceeds the limit' };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, code: 'body_too_large', message: 'chunk extensions exceed the limit' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'request_timeout', message: 'the request head did not arrive in time' };
    default: {
      // llhttp's reason names the violation ("Invalid method encountered"); it never echoes request bytes.
      const why =
        typeof err.reason === 'string' && err.reason.length > 0 ? err.reason.slice(0, 200) : 'malformed request';
      return { status: 400, code: 'bad_request', message: `malformed HTTP request: ${why}` };
    }
  }
}

export function onClientError(err: ParserError, socket: Duplex): void {
  // A reset peer, or a response already under way on this socket: nothing can be said any more.
  const inflight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inflight?.headersSent) {
    socket.destroy();
    return;
  }
  answerAndClose(socket, rawErrorResponse(clientErrorAnswer(err)));
}
