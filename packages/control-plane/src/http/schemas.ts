// Zod pieces every route plugin declares its schemas with (fastify-type-provider-zod validates requests with
// them and /openapi.json is generated from them), and the lookup the error handler uses to name a validation
// error's code: a field declared with `coded(schema, code)` fails with that code instead of invalid_request.
import { z } from 'zod';
import { APP_NAME_RE } from '@easyenclave/protocol';
import { ERROR_TYPES, type ErrorCode } from './error-catalogue.js';
import { IDEMPOTENCY_KEY_PATTERN } from './idempotency.js';

const ERROR_CODE_META = 'x-error-code';

/** Validation errors of this field answer `code` (documented in the OpenAPI schema as `x-error-code`). */
export function coded<T extends z.ZodType>(schema: T, code: ErrorCode): T {
  return schema.meta({ [ERROR_CODE_META]: code });
}

/** The code declared (with `coded`) on the field `name` of an object schema, through optional/default/nullable. */
export function declaredCode(schema: unknown, name: string | undefined): ErrorCode | undefined {
  // A body with a transform (withAmount) or a default is a pipe or a wrapper around its object.
  for (let depth = 0; schema instanceof z.ZodType && !(schema instanceof z.ZodObject) && depth < 8; depth++) {
    const def = schema._zod.def as { in?: unknown; innerType?: unknown };
    schema = def.in ?? def.innerType;
  }
  if (name === undefined || !(schema instanceof z.ZodObject)) return undefined;
  let field: unknown = (schema.shape as Record<string, unknown>)[name];
  for (let depth = 0; field instanceof z.ZodType && depth < 8; depth++) {
    const code = z.globalRegistry.get(field)?.[ERROR_CODE_META];
    if (typeof code === 'string') return code as ErrorCode;
    field = (field._zod.def as { innerType?: unknown }).innerType;
  }
  return undefined;
}

/** No control characters (names, memos, reasons end up in tables and logs). */
export const PRINTABLE = /^[^\p{Cc}]*$/u;
export const printable = (max: number) =>
  z.string().min(1).max(max).regex(PRINTABLE, 'must not contain control characters');

/**
 * A path segment naming something (an account, node, lease, report, payout): free text up to `max`
 * characters without control characters. What does not exist is the route's 404; a NUL byte or a
 * 10 KiB id never reaches the database (PostgreSQL refuses NUL in text: that was a 500).
 */
export const pathId = (max = 160) => z.string().min(1).max(max).regex(PRINTABLE, 'must not contain control characters');

/** An app name in a path: anything that is not a DNS label is simply not an app (404 unknown_app). */
export const isAppName = (name: string): boolean => APP_NAME_RE.test(name);

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'machine-readable code (README: error catalogue)' }),
      message: z.string(),
      type: z.enum(ERROR_TYPES),
      param: z.string().optional().meta({ description: 'the request field a validation error is about' }),
    }),
  })
  .meta({ id: 'Error' });

/** Money as `{name}_micro_usd` (a JSON integer) and `{name}_usd` ("$12.50"). */
export const MicroUsd = z
  .number()
  .int()
  .min(-(2 ** 53) + 1)
  .max(2 ** 53 - 1);
export const Usd = z.string().meta({ description: 'the same amount for people, e.g. "$12.50"' });
export const IsoTime = z.string().meta({ description: 'ISO-8601 UTC time' });

/** Every POST that changes state takes an Idempotency-Key (docs/ledger.md). */
export const IdempotencyHeaders = z.looseObject({
  'idempotency-key': coded(
    z
      .string()
      .regex(IDEMPOTENCY_KEY_PATTERN, 'must be 1 to 255 printable ASCII characters')
      .optional()
      .meta({ description: 'makes a retry safe: the first answer is stored and replayed (24 h)' }),
    'invalid_idempotency_key',
  ),
});

/** Error responses a route documents next to its success (the catalogue has every code). */
export const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, ErrorBody])) as Record<number, typeof ErrorBody>;

/** OpenAPI security requirements: bearer tokens (API key, admin token or a service token per route). */
export const BEARER = [{ bearer: [] }];
