// The one path from anything a route, a hook or fastify itself throws to an answer `{error:{code, message,
// type, param?}}`: catalogue errors as they are, schema validation errors as 400 with the field (`param`),
// store faults as 503 store_unavailable + Retry-After (never 500), the writer's back-pressure as 503 busy,
// anything else as 500 internal. Every answer carries the request's id (`Request-Id`).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { WriterBusyError, WriterClosedError } from '../store/writer.js';
import { isStoreUnavailable } from '../store/faults.js';
import { STORE_RETRY_AFTER_S, type StoreHealth } from '../store/health.js';
import { ApiFailure, errorBodyOf, isErrorCode, type ErrorCode } from './error-catalogue.js';
import { declaredCode } from './schemas.js';

/** Validation issues named in one message. */
const MAX_ISSUES_SHOWN = 3;

interface Answer {
  status: number;
  code: string;
  message: string;
  param?: string;
  retry_after_s?: number;
}

interface ValidationIssue {
  instancePath: string;
  message?: string;
  params?: { params?: { code?: unknown } };
}

/** A schema validation failure: the first issue's field is `param`; its declared code, or invalid_request. */
function validationAnswer(req: FastifyRequest, issues: ValidationIssue[], context: string | undefined): Answer {
  const path = (i: ValidationIssue) => i.instancePath.split('/').filter(Boolean).join('.');
  const first = issues[0]!;
  const param = path(first) || undefined;
  const schemas = req.routeOptions.schema as Record<string, unknown> | undefined;
  const issueCode = first.params?.params?.code;
  const code: ErrorCode =
    typeof issueCode === 'string' && isErrorCode(issueCode)
      ? issueCode
      : (declaredCode(schemas?.[context ?? ''], param?.split('.')[0]) ?? 'invalid_request');
  // A coded field's message is a whole sentence; generic ones name where each problem is.
  const message =
    code !== 'invalid_request'
      ? (first.message ?? 'invalid')
      : issues
          .slice(0, MAX_ISSUES_SHOWN)
          .map((i) => `${path(i) || (context ?? 'request')}: ${i.message ?? 'invalid'}`)
          .join('; ');
  return param === undefined ? { status: 400, code, message } : { status: 400, code, message, param };
}

/** Fastify's own client errors (content type parser, body limit) in the catalogue's codes. */
function fastifyClientAnswer(err: FastifyError, status: number): Answer {
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status: 413, code: 'body_too_large', message: err.message };
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return { status: 415, code: 'unsupported_media_type', message: err.message };
  if (status === 404) return { status: 404, code: 'not_found', message: err.message };
  return { status: 400, code: 'bad_request', message: err.message };
}

export function answerFor(err: unknown, req: FastifyRequest, store: StoreHealth): Answer {
  if (err instanceof ApiFailure) {
    const a: Answer = { status: err.status, code: err.code, message: err.message };
    if (err.extra.param !== undefined) a.param = err.extra.param;
    if (err.extra.retry_after_s !== undefined) a.retry_after_s = err.extra.retry_after_s;
    return a;
  }
  if (hasZodFastifySchemaValidationErrors(err))
    return validationAnswer(req, err.validation as unknown as ValidationIssue[], err.validationContext);
  if (err instanceof WriterBusyError) return { status: 503, code: 'busy', message: err.message, retry_after_s: 1 };
  if (err instanceof WriterClosedError)
    return {
      status: 503,
      code: 'shutting_down',
      message: 'the control plane is shutting down; retry',
      retry_after_s: 1,
    };
  if (isStoreUnavailable(err)) {
    store.fault(err);
    return {
      status: 503,
      code: 'store_unavailable',
      message: 'the database is unavailable; retry later',
      retry_after_s: STORE_RETRY_AFTER_S,
    };
  }
  const fe = err as FastifyError;
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500 && !isResponseSerializationError(fe)) return fastifyClientAnswer(fe, status);
  return { status: 500, code: 'internal', message: 'internal error' };
}

export function sendAnswer(reply: FastifyReply, a: Answer): FastifyReply {
  if (a.retry_after_s !== undefined) reply.header('retry-after', String(a.retry_after_s));
  return reply
    .code(a.status)
    .type('application/json; charset=utf-8')
    .send(errorBodyOf(a.code, a.message, a.status, a.param));
}

export function installErrorHandling(app: FastifyInstance, deps: { store: StoreHealth }): void {
  // Every response says which request it answers; the same id is in every log line of the request.
  app.addHook('onRequest', async (req, reply) => {
    reply.header('request-id', req.id);
  });
  app.setNotFoundHandler((req, reply) =>
    sendAnswer(reply, {
      status: 404,
      code: 'not_found',
      message: `no route for ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`,
    }),
  );
  app.setErrorHandler((err: unknown, req, reply) => {
    const a = answerFor(err, req, deps.store);
    if (a.code === 'store_unavailable') {
      // A fault, not a bug: no stack trace per request (the logger also limits repeats).
      const e = err as { code?: unknown; message?: unknown };
      req.log.error({ err_code: e.code, err_message: String(e.message ?? err).slice(0, 200) }, 'store unavailable');
    } else if (a.status >= 500 && a.code !== 'busy' && a.code !== 'shutting_down') {
      req.log.error({ err }, 'request failed');
    }
    return sendAnswer(reply, a);
  });
}
