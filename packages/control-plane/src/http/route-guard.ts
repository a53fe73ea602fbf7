// Shared by the JSON API's plugins: zod parsing that throws BadRequest, and the one place that turns
// BadRequest and the ledger writer's back-pressure errors into `{error:{code,message}}` answers.
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import { LedgerBusyError, LedgerClosedError } from '../ledger-store/writer.js';
import { BadRequest, zodMessage } from './ledger-views.js';
import { apiError } from './routes.js';

export function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new BadRequest('invalid_request', zodMessage(r.error));
  return r.data;
}

export async function guard(reply: FastifyReply, fn: () => Promise<unknown>): Promise<unknown> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof BadRequest) return apiError(reply, err.status, err.code, err.message);
    if (err instanceof LedgerBusyError) return apiError(reply, 503, 'busy', err.message);
    if (err instanceof LedgerClosedError)
      return apiError(reply, 503, 'shutting_down', 'the control plane is shutting down; retry');
    throw err;
  }
}
