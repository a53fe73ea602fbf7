// The API's access log, as fastify's log controller: one line per request when it completes (method, path
// without the query string, route, status, duration), written with the request's child logger so it carries
// `request_id`. EE_ACCESS_LOG: `off`; `sampled` (default): every error answer (status >= 400) and one in
// ACCESS_LOG_SAMPLE_EVERY of the others; `full`: every request. The proxy and the tunnel are raw paths and
// are not in it (the proxy's own failures are logged with their request id).
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

export type AccessLogMode = 'off' | 'sampled' | 'full';
export const ACCESS_LOG_SAMPLE_EVERY = 100;

export class AccessLog extends LogController {
  #completed = 0;

  constructor(private readonly mode: AccessLogMode) {
    super({ requestIdLogLabel: 'request_id' });
  }

  /** One line per request, when it completes (fastify's default also logs its arrival). */
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.mode === 'off') return;
    const status = reply.statusCode;
    if (this.mode === 'sampled' && status < 400 && ++this.#completed % ACCESS_LOG_SAMPLE_EVERY !== 0) return;
    request.log.info(
      {
        method: request.method,
        path: request.url.split('?')[0],
        route: request.routeOptions.url ?? null,
        status,
        duration_ms: Math.round(reply.elapsedTime * 10) / 10,
        ...(error ? { error: error.message } : {}),
      },
      'request',
    );
  }
}
