// Error coverage, driven by the OpenAPI document: every mutating operation that declares a JSON body gets one
// bad body (a required field missing, or a declared field of the wrong type), and must answer 400 with
// `{error:{code,message,type:"invalid_request",param}}` naming that field — whichever credential the route
// takes; the bodiless ones get a path parameter over its limit, and must name it the same way. A route added with a body but without a schema, or whose errors lose `type`/`param`, fails here.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { ADMIN_TOKEN, closeAll, startCp } from '../helpers/network.js';
import { createAccount } from '../ledger-http/client.js';

const LAUNCHER_TOKEN = 'test-launcher-token-0123456789';
const UPTIME_TOKEN = 'test-uptime-token-0123456789';
const MUTATING = ['post', 'put', 'patch', 'delete'];
/** Mutating operations that take no body (their input is the path); any other must declare a body schema. */
const BODILESS = new Set([
  'DELETE /v1/leases/{id}',
  'POST /v1/settlements/{period}/finalize',
  'POST /v1/abuse/reports/{id}/authorize',
  'POST /v1/payouts/{id}/confirm',
  'POST /v1/payouts/{id}/cancel',
  'DELETE /v1/jobs/{id}',
  'DELETE /v1/reservations/{id}',
  'DELETE /v1/deployments/{id}',
]);

type Schema = { type?: string | string[]; anyOf?: Schema[]; oneOf?: Schema[]; allOf?: Schema[] } & Record<
  string,
  unknown
>;

/** Every JSON type a schema could accept (`undefined` when it accepts anything). */
function acceptedTypes(s: Schema): Set<string> | undefined {
  const branches = [...(s.anyOf ?? []), ...(s.oneOf ?? [])];
  if (branches.length > 0) {
    const all = new Set<string>();
    for (const b of branches) {
      const t = acceptedTypes(b);
      if (t === undefined) return undefined;
      for (const x of t) all.add(x);
    }
    return all;
  }
  if (s.type === undefined) return s.enum || s.const !== undefined ? new Set(['string', 'number']) : undefined;
  return new Set([s.type].flat());
}

/** A value the schema refuses by its type alone, or undefined when it accepts every type. */
function wrongTypeFor(s: Schema): unknown {
  const t = acceptedTypes(s);
  if (t === undefined) return undefined;
  if (!t.has('object')) return { not: 'this' };
  if (!t.has('array')) return ['not', 'this'];
  return undefined;
}

/** One bad body for the schema and the field it breaks. */
export function badBody(schema: Schema): { body: unknown; param: string } | null {
  const props = (schema.properties ?? {}) as Record<string, Schema>;
  const required = (schema.required ?? []) as string[];
  const minimal: Record<string, unknown> = {};
  if (required.length > 0) {
    // Every required field but the first present with a wrong type would also fail; leaving all out names the
    // first missing one, which is the field the error must name.
    return { body: minimal, param: required[0]! };
  }
  for (const [name, s] of Object.entries(props)) {
    const wrong = wrongTypeFor(s);
    if (wrong !== undefined) return { body: { [name]: wrong }, param: name };
  }
  return null;
}

describe('every mutating route answers a bad body with type and param (from the OpenAPI document)', () => {
  let cp: ControlPlane;
  let doc: any;
  let credentials: string[];

  before(async () => {
    cp = await startCp({ EE_LAUNCHER_TOKEN: LAUNCHER_TOKEN, EE_UPTIME_TOKEN: UPTIME_TOKEN });
    doc = await (await fetch(`${cp.api_url}/openapi.json`)).json();
    const user = await createAccount(cp.api_url, 'user', 'badbody-user');
    const provider = await createAccount(cp.api_url, 'provider', 'badbody-provider');
    credentials = [ADMIN_TOKEN, user.key, provider.key, LAUNCHER_TOKEN, UPTIME_TOKEN];
  });
  after(closeAll);

  it('400 invalid_request with the field (or path parameter) as param, for each one', async () => {
    const checked: string[] = [];
    const failures: string[] = [];
    const bodiless: { what: string; method: string; path: string; op: any }[] = [];
    for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
      if (path.startsWith('/v1/proxy/')) continue; // the apps' own bodies
      for (const [method, op] of Object.entries<any>(item)) {
        if (!MUTATING.includes(method)) continue;
        const schema = op.requestBody?.content?.['application/json']?.schema;
        const what = `${method.toUpperCase()} ${path}`;
        if (schema === undefined) {
          if (!BODILESS.has(what)) failures.push(`${what}: mutating, but declares no JSON body schema`);
          else bodiless.push({ what, method, path, op });
          continue;
        }
        const bad = badBody(schema);
        if (bad === null) {
          failures.push(`${what}: its body schema refuses nothing (no required field, no typed field)`);
          continue;
        }
        const url = cp.api_url + path.replace(/\{[^}]+\}/g, 'x0');
        let answered: { status: number; body: any } | null = null;
        for (const token of credentials) {
          const res = await fetch(url, {
            method: method.toUpperCase(),
            headers: {
              authorization: `Bearer ${token}`,
              'content-type': 'application/json',
              'idempotency-key': `bad-body-${checked.length}`,
            },
            body: JSON.stringify(bad.body),
          });
          const body = await res.json();
          if (res.status === 401 || res.status === 403) continue;
          answered = { status: res.status, body };
          break;
        }
        checked.push(what);
        if (answered === null) {
          failures.push(`${what}: no credential got past authentication`);
          continue;
        }
        const err = answered.body?.error;
        if (answered.status !== 400 || err?.type !== 'invalid_request' || err?.param !== bad.param) {
          failures.push(
            `${what} with ${JSON.stringify(bad.body)}: ${answered.status} ${JSON.stringify(answered.body)}`,
          );
          continue;
        }
        assert.ok(doc.info.description.includes(err.code), `${what}: ${err.code} is not in the catalogue`);
        assert.equal(typeof err.message, 'string');
      }
    }
    // Bodiless ones take their input from the path: a path parameter one character over its limit.
    for (const { what, method, path, op } of bodiless) {
      const param = (op.parameters ?? []).find((p: any) => p.in === 'path' && p.schema?.maxLength !== undefined);
      if (param === undefined) {
        failures.push(`${what}: no path parameter with a declared length limit`);
        continue;
      }
      const long = 'x'.repeat(param.schema.maxLength + 1);
      const url = cp.api_url + path.replace(`{${param.name}}`, long).replace(/\{[^}]+\}/g, 'x0');
      let answered: { status: number; body: any } | null = null;
      for (const token of credentials) {
        const res = await fetch(url, { method: method.toUpperCase(), headers: { authorization: `Bearer ${token}` } });
        const body = await res.json();
        if (res.status === 401 || res.status === 403) continue;
        answered = { status: res.status, body };
        break;
      }
      checked.push(what);
      const err = answered?.body?.error;
      if (answered?.status !== 400 || err?.type !== 'invalid_request' || err?.param !== param.name)
        failures.push(`${what} with a long ${param.name}: ${answered?.status} ${JSON.stringify(answered?.body)}`);
    }
    assert.deepEqual(failures, []);
    assert.ok(checked.length >= 20, `only ${checked.length} mutating routes with a body: ${checked.join(', ')}`);
  });

  it('the bad-body maker breaks what it says it breaks', () => {
    assert.deepEqual(badBody({ type: 'object', required: ['to'], properties: { to: { type: 'string' } } }), {
      body: {},
      param: 'to',
    });
    assert.deepEqual(
      badBody({
        type: 'object',
        properties: { amount: { anyOf: [{ type: 'string' }, { type: 'integer' }] } },
      }),
      { body: { amount: { not: 'this' } }, param: 'amount' },
    );
    assert.equal(badBody({ type: 'object', properties: { any: {} } }), null);
  });
});
