// JSON calls to the control plane's API: a body serialised with exact bigints, a response read within the
// deadline, non-2xx answers as typed errors, and every 2xx body validated with zod (never trusted as typed).
// Micro-USD amounts are JSON integers that may exceed 2^53, so fields named `*_micro_usd` are read as
// strings before JSON.parse and turned into bigint by the schemas (MicroUsd).
import { z } from 'zod';
import { newNonceHex } from './bytes.js';
import { errorFromResponse, InvalidResponseError } from './errors.js';
import type { Deadline, SendRequest, Transport } from './http.js';

/** Largest JSON body the SDK reads from the control plane's API. */
export const MAX_JSON_BODY_BYTES = 8 * 1024 * 1024;

/** A micro-USD amount from the wire: an integer (as a JSON number or a digit string), as bigint. */
export const MicroUsd = z.union([z.string().regex(/^-?\d+$/), z.number().int()]).transform((v) => BigInt(v));

/** JSON.stringify that writes bigints as exact JSON integers. */
export function stringifyJson(value: unknown): string {
  // Bigints go through a marker string that is random per call, so no string of the caller can match it.
  const tag = `\u0000${newNonceHex()}:`;
  const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${tag}${v.toString()}` : v));
  return text.replace(new RegExp(`"\\\\u0000${tag.slice(1)}(-?\\d+)"`, 'g'), '$1');
}

/** JSON.parse that keeps every `*_micro_usd` integer exact (as a digit string for the schema). */
export function parseJsonExact(text: string): unknown {
  // A match needs an unescaped quote after the key, so the pattern cannot fire inside a JSON string.
  return JSON.parse(text.replace(/"([A-Za-z0-9_]*_micro_usd)"(\s*):(\s*)(-?\d+)(?=[\s,}\]])/g, '"$1"$2:$3"$4"'));
}

export interface JsonResult<T> {
  data: T;
  status: number;
  headers: Headers;
}

export interface JsonRequest extends Omit<SendRequest, 'body'> {
  body?: unknown;
}

async function readText(res: Response, deadline: Deadline): Promise<string> {
  const len = Number(res.headers.get('content-length') ?? '0');
  if (len > MAX_JSON_BODY_BYTES) {
    await res.body?.cancel().catch(() => {});
    throw new InvalidResponseError(res.status, `response body of ${len} bytes exceeds ${MAX_JSON_BODY_BYTES}`);
  }
  try {
    return await res.text();
  } catch (err) {
    if (deadline.signal.aborted) throw deadline.reason();
    throw err;
  }
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
      const issue = r.error.issues[0];
      throw new InvalidResponseError(
        res.status,
        `${req.method} ${req.path.split('?')[0]}: unexpected response: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
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
