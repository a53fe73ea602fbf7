// The API's access log, as fastify's log controller: one line per request when it completes (method, path
// without the query string, route, status, duration), written with the request's child logger so it carries
// `request_id`. EE_ACCESS_LOG: `off`; `sampled` (default): every error answer (status >= 400) and one in
// ACCESS_LOG_SAMPLE_EVERY of the others; `full`: every request. Proxied requests (both entry points) are raw
// paths: observe/http.ts writes their line through `proxied`, under the same rule, with the entry and app.
import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';

export type AccessLogMode = 'off' | 'sampled' | 'full';
export const ACCESS_LOG_SAMPLE_EVERY = 100;

export class AccessLog extends LogController {
  #completed = 0;

  constructor(private readonly mode: AccessLogMode) {
    super({ requestIdLogLabel: 'request_id' });
  }

  /** One line per request, when it completes (fastify's default also logs its arrival). */
  override incomingRequest(): void {}

  /** Whether the request that ended with `status` gets its line. */
  #wanted(status: number): boolean {
    if (this.mode === 'off') return false;
    return this.mode === 'full' || status >= 400 || ++this.#completed % ACCESS_LOG_SAMPLE_EVERY === 0;
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const status = reply.statusCode;
    if (!this.#wanted(status)) return;
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

  /** The line of one proxied request; `aborted` when the client left before the response ended. */
  proxied(
    log: FastifyBaseLogger,
    req: IncomingMessage,
    fields: { request_id: string; entry: string; app: string; status: number; duration_ms: number; aborted: boolean },
  ): void {
    if (!this.#wanted(fields.status)) return;
    log.info(
      {
        request_id: fields.request_id,
        method: req.method,
        path: (req.url ?? '').split('?')[0],
        route: fields.entry === 'path' ? '/v1/proxy/{app}/{path}' : 'host',
        entry: fields.entry,
        app: fields.app,
        status: fields.status,
        duration_ms: Math.round(fields.duration_ms * 10) / 10,
        ...(fields.aborted ? { aborted: true } : {}),
      },
      'request',
    );
  }
}
