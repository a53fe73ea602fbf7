// JSON calls to the control plane's API: a body serialised with exact bigints, a response read within the
// deadline, non-2xx answers as typed errors, and every 2xx body validated with zod (never trusted as typed).
// Micro-USD amounts are JSON integers that may exceed 2^53: lossless-json (a real parser that hands over each
// number's source text) reads every field named `*_micro_usd` as a bigint, wherever it is in the body, so
// money is exact even in fields no schema names; other numbers are plain JS numbers.
import { isLosslessNumber, parse as parseLossless, stringify as stringifyLossless } from 'lossless-json';
import { z } from 'zod';
import { errorFromResponse, InvalidResponseError } from './errors.js';
import type { Deadline, SendRequest, Transport } from './http.js';

/** Schema mismatches named in an InvalidResponseError (the first few say enough). */
const MAX_REPORTED_ISSUES = 5;

/** Largest JSON body the SDK reads from the control plane's API. */
export const MAX_JSON_BODY_BYTES = 8 * 1024 * 1024;

/** A micro-USD amount from the wire: an integer (as parsed by parseJsonExact, a digit string or a safe JSON
 *  number), as bigint. */
export const MicroUsd = z
  .union([z.bigint(), z.string().regex(/^-?\d+$/), z.number().int()])
  .transform((v) => BigInt(v));

const MICRO_USD_SUFFIX = '_micro_usd';
const INTEGER_TEXT = /^-?\d+$/;

/** JSON.stringify that writes bigints as exact JSON integers (`space` as in JSON.stringify). */
export function stringifyJson(value: unknown, space?: number): string {
  const text = stringifyLossless(value, null, space);
  if (text === undefined) throw new TypeError('the value has no JSON form');
  return text;
}

/**
 * JSON.parse that keeps money exact: every integer under a key ending in `_micro_usd` becomes a bigint (any
 * depth, typed by a schema or not); every other number a JS number. A non-integer under such a key stays a
 * number, so the schema refuses it by name instead of BigInt throwing here.
 */
export function parseJsonExact(text: string): unknown {
  return parseLossless(text, (key, value) => {
    if (!isLosslessNumber(value)) return value;
    if (key.endsWith(MICRO_USD_SUFFIX) && INTEGER_TEXT.test(value.value)) return BigInt(value.value);
    return Number(value.value);
  });
}

export interface JsonResult<T> {
  data: T;
  status: number;
  headers: Headers;
}

export interface JsonRequest extends Omit<SendRequest, 'body'> {
  body?: unknown;
}

/** The body as text, at most MAX_JSON_BODY_BYTES whether or not the server declared its length. */
async function readText(res: Response, deadline: Deadline): Promise<string> {
  const tooLarge = () => new InvalidResponseError(res.status, `response body exceeds ${MAX_JSON_BODY_BYTES} bytes`);
  const len = Number(res.headers.get('content-length') ?? '0');
  if (len > MAX_JSON_BODY_BYTES) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total_bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total_bytes += value.byteLength;
      if (total_bytes > MAX_JSON_BODY_BYTES) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  } catch (err) {
    if (deadline.signal.aborted) throw deadline.reason();
    throw err;
  }
  const all = new Uint8Array(total_bytes);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** A JSON call: the parsed, validated 2xx body, or a typed error. */
export async function callJson<S extends z.ZodType>(
  t: Transport,
  req: JsonRequest,
  schema: S,
): Promise<JsonResult<z.output<S>>> {
  const headers = new Headers(req.headers);
  headers.set('accept', 'application/json');
  let body: string | undefined;
  if (req.body !== undefined) {
    body = stringifyJson(req.body);
    headers.set('content-type', 'application/json');
  }
  const { body: _json, ...rest } = req;
  const { res, deadline } = await t.send({ ...rest, headers, ...(body !== undefined ? { body } : {}) });
  try {
    if (res.status < 200 || res.status > 299) throw await errorFromResponse(res);
    const text = await readText(res, deadline);
    let json: unknown;
    try {
      json = parseJsonExact(text);
    } catch {
      throw new InvalidResponseError(res.status, `${req.method} ${req.path.split('?')[0]}: response is not JSON`);
    }
    const r = schema.safeParse(json);
    if (!r.success) {
      const issues = r.error.issues
        .slice(0, MAX_REPORTED_ISSUES)
        .map((i) => ({ path: i.path.join('.'), message: i.message }));
      const first = issues[0];
      throw new InvalidResponseError(
        res.status,
        `${req.method} ${req.path.split('?')[0]}: unexpected response: ${first?.path || '(root)'}: ${first?.message ?? 'invalid'}`,
        issues,
      );
    }
    return { data: r.data, status: res.status, headers: res.headers };
  } catch (err) {
    if (deadline.signal.aborted) throw deadline.reason();
    throw err;
  } finally {
    deadline.done();
  }
}
