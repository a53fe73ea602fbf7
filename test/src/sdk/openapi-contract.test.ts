// The SDK's types against the API's contract: every JSON call of the SDK is made against a fetch that answers
// with a document generated from the OpenAPI schema of the operation it reached (two samples each: every
// property with the first branch of each union, and only the required properties with the last branch, so
// nullable and optional fields are exercised). The SDK's zod schema must accept both, and every `*_micro_usd`
// field it returns must be a bigint. A documented field renamed or removed, a type that drifts, or money that
// arrives as a number or string fails here. Calls that do more than one JSON round trip (verification,
// sealing, streaming) are listed with the reason they are left out.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EasyEnclave } from '@easyenclave/sdk';
import { closeAll, startCp } from '../helpers/network.js';

type Json = Record<string, any>;
type Variant = 'full' | 'required';

/** Largest safe integer: money samples use it so a lossy parse (through a JS number) would show. */
const BIG_MICRO_USD = 9007199254740991n;

/** SDK methods left out, and why; every other method of EasyEnclave must be exercised below. */
const NOT_JSON_CALLS: Record<string, string> = {
  constructor: 'not a call',
  network: 'a property',
  keyAccount: 'a property',
  verifyApp: 'verifies quotes (tested with real evidence in sdk/)',
  connect: 'opens an app client (tested end to end in sdk/)',
  verifyControlPlane: 'verifies quotes (tested with real evidence in sdk/)',
  submitPrivateJob: 'seals to a placement key first (tested end to end in jobs/)',
  runPrivateJob: 'submits and polls (tested end to end in jobs/)',
  waitJob: 'polls until a final state (tested end to end in jobs/)',
  jobLogs: 'a byte stream, not JSON',
  launcherTarget: 'internal',
  verifiedLauncher: 'internal',
  waitPrivateJob: "polls, seals a retried job's env again (tested end to end in jobs/)",
  deploy: 'seals to a placement key, then polls until it serves (tested end to end in jobs/)',
  updateDeployment: 'polls until the new image serves (tested end to end in jobs/)',
  stopDeployment: 'polls until stopped (tested end to end in jobs/)',
  auth: 'internal',
  verifier: 'internal',
  accountFor: 'internal',
};

/** Patterns the sampler can satisfy: hex of a fixed length (digits are hex in either case). */
const HEX_PATTERN = /^\^\[0-9a-f(?:A-F)?\]\{(\d+)\}\$$/;

class Sampler {
  /** Money fields met while sampling, as documented types (for the bigint check and the doc check). */
  readonly money: { name: string; types: string[] }[] = [];
  constructor(private readonly doc: Json) {}

  private deref(s: Json): Json {
    let cur = s;
    for (let i = 0; cur.$ref !== undefined; i++) {
      assert.ok(i < 16, 'a $ref chain too long');
      const name = String(cur.$ref).replace('#/components/schemas/', '');
      cur = this.doc.components.schemas[name];
      assert.ok(cur, `unresolved ${s.$ref}`);
    }
    return cur;
  }

  sample(schema: Json, v: Variant, name = '', depth = 0): unknown {
    assert.ok(depth < 32, 'schema nests too deep');
    const s = this.deref(schema);
    const branches: Json[] | undefined = s.anyOf ?? s.oneOf;
    if (branches) return this.sample(v === 'full' ? branches[0]! : branches.at(-1)!, v, name, depth + 1);
    if (s.allOf) return Object.assign({}, ...s.allOf.map((b: Json) => this.sample(b, v, name, depth + 1)));
    if (s.const !== undefined) return s.const;
    if (s.enum) return v === 'full' ? s.enum[0] : s.enum.at(-1);
    const types: string[] = s.type === undefined ? [] : [s.type].flat();
    if (name.endsWith('_micro_usd')) this.money.push({ name, types });
    const type = types.length === 0 ? 'string' : v === 'full' ? types[0]! : types.at(-1)!;
    switch (type) {
      case 'null':
        return null;
      case 'boolean':
        return true;
      case 'integer':
        if (name.endsWith('_micro_usd')) return s.maximum === undefined ? BIG_MICRO_USD : BigInt(s.maximum);
        return s.minimum !== undefined && s.minimum > 1 ? s.minimum : Math.min(1, s.maximum ?? 1);
      case 'number':
        return s.minimum !== undefined && s.minimum > 1.5 ? s.minimum : 1.5;
      case 'string':
        if (name.endsWith('_micro_usd')) return String(BIG_MICRO_USD);
        if (s.format === 'date-time') return '2026-01-01T00:00:00.000Z';
        if (s.pattern !== undefined) {
          const hex = HEX_PATTERN.exec(s.pattern);
          if (hex === null) throw new Error(`${name}: teach the sampler the pattern ${s.pattern}`);
          return '0'.repeat(Number(hex[1]));
        }
        return 'x'.repeat(Math.max(1, s.minLength ?? 1));
      case 'array': {
        const n = Math.max(s.minItems ?? 0, 1);
        return Array.from({ length: n }, () => this.sample(s.items ?? {}, v, name, depth + 1));
      }
      case 'object': {
        const out: Json = {};
        const required = new Set<string>(s.required ?? []);
        for (const [k, p] of Object.entries<Json>(s.properties ?? {}))
          if (v === 'full' || required.has(k)) out[k] = this.sample(p, v, k, depth + 1);
        if (s.properties === undefined && typeof s.additionalProperties === 'object')
          out.key = this.sample(s.additionalProperties, v, 'key', depth + 1);
        return out;
      }
      default:
        throw new Error(`no sample for type ${type}`);
    }
  }
}

/** JSON text with bigints as exact integers. */
const jsonText = (v: unknown) =>
  JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `__big__${x}` : x)).replace(/"__big__(-?\d+)"/g, '$1');

/** Every `*_micro_usd` value in the SDK's result that is not a bigint (nulls are allowed where documented). */
function moneyNotBigint(v: unknown, at = ''): string[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => moneyNotBigint(x, `${at}[${i}]`));
  if (v === null || typeof v !== 'object') return [];
  const out: string[] = [];
  for (const [k, x] of Object.entries(v)) {
    if (k.endsWith('_micro_usd') && x !== null && typeof x !== 'bigint') out.push(`${at}.${k}: ${typeof x}`);
    out.push(...moneyNotBigint(x, `${at}.${k}`));
  }
  return out;
}

async function firstOf(items: AsyncIterable<unknown>): Promise<unknown> {
  for await (const item of items) return item;
  throw new Error('an empty page from a one-element sample');
}

/** The document's operation for a concrete method and path. */
function operationFor(doc: Json, method: string, pathname: string): { template: string; op: Json } {
  for (const [template, item] of Object.entries<Json>(doc.paths)) {
    const re = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (re.test(pathname) && item[method.toLowerCase()]) return { template, op: item[method.toLowerCase()] };
  }
  throw new Error(`the SDK called ${method} ${pathname}, which the document does not have`);
}

describe('the SDK against the OpenAPI document', () => {
  let doc: Json;
  before(async () => {
    const cp = await startCp();
    doc = (await (await fetch(`${cp.api_url}/openapi.json`)).json()) as Json;
  });
  after(closeAll);

  /** A client whose every call is answered with a sample of the documented success response. */
  function clientAnswering(doc: Json, variant: Variant, sampler: Sampler, reached: string[]): EasyEnclave {
    const fake: typeof fetch = async (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const method = (init?.method ?? 'GET').toUpperCase();
      const { template, op } = operationFor(doc, method, url.pathname);
      assert.ok(url.search.length < 2 || op.parameters?.some((p: Json) => p.in === 'query'), `${template}: query`);
      const [status, response] = Object.entries<Json>(op.responses).find(
        ([s, r]) => /^2\d\d$/.test(s) && r.content?.['application/json'],
      )!;
      reached.push(`${method} ${template} ${status}`);
      const body = jsonText(sampler.sample(response.content['application/json'].schema, variant));
      return new Response(body, { status: Number(status), headers: { 'content-type': 'application/json' } });
    };
    return new EasyEnclave({
      url: 'http://control.test',
      fetch: fake,
      apiKey: 'ee_user_test',
      adminToken: 'admin',
      launcherToken: 'launcher',
      max_retries: 0,
    } as ConstructorParameters<typeof EasyEnclave>[0]);
  }

  /** Every JSON call of the SDK, with arguments it accepts. */
  const calls: Record<string, (ee: EasyEnclave) => Promise<unknown> | AsyncIterable<unknown>> = {
    resolve: (ee) => ee.resolve('demo'),
    apps: (ee) => ee.apps(),
    appEvidence: (ee) => ee.appEvidence('demo'),
    controlPlaneEvidence: (ee) => ee.controlPlaneEvidence(),
    jobPlacement: (ee) => ee.jobPlacement(1, 256),
    job: (ee) => ee.job('job_1'),
    cancelJob: (ee) => ee.cancelJob('job_1'),
    deployment: (ee) => ee.deployment('dep_1'),
    createReservation: (ee) => ee.createReservation({ app: 'demo', quota: '$1', lifetime_s: 600 }),
    reservation: (ee) => ee.reservation('res_1'),
    cancelReservation: (ee) => ee.cancelReservation('res_1'),
    setUnitPrices: (ee) =>
      ee.setUnitPrices('node_1', { tokens_in: 1n, tokens_out: 1n, requests: 1n, bytes: 1n } as never),
    createAccount: (ee) => ee.createAccount({ kind: 'user', name: 'alice' }),
    purchaseCredits: (ee) => ee.purchaseCredits({ account: 'user:alice', amount: '$1', payment_ref: 'p1' }),
    transferCredits: (ee) => ee.transferCredits({ to: 'user:bob', amount: '$1' }),
    accounts: (ee) => ee.accounts({ limit: 1, kind: 'user' }),
    rotateApiKey: (ee) => ee.rotateApiKey('user:alice', { grace_ms: 0 }),
    balance: (ee) => ee.balance('user:alice'),
    transfers: (ee) => ee.transfers({ account: 'user:alice', limit: 1 }),
    registerNode: (ee) => ee.registerNode({ region: 'eu', tier: 'standard', vcpus: 4, price_per_vcpu_hour: '$0.10' }),
    node: (ee) => ee.node('node_1'),
    nodes: (ee) => ee.nodes(),
    leases: (ee) => ee.leases({ limit: 1 }),
    payouts: (ee) => ee.payouts({ limit: 1 }),
    abuseReports: (ee) => ee.abuseReports({ limit: 1 }),
    stake: (ee) => ee.stake('node_1', '$1'),
    unstake: (ee) => ee.unstake('node_1', '$1'),
    createLease: (ee) => ee.createLease({ app: 'demo', vcpus: 1 }),
    lease: (ee) => ee.lease('lease_1'),
    cancelLease: (ee) => ee.cancelLease('lease_1'),
    settlement: (ee) => ee.settlement('2026-01-01T00'),
    finalizeSettlement: (ee) => ee.finalizeSettlement('2026-01-01T00'),
    reportAbuse: (ee) => ee.reportAbuse({ node: 'node_1', reason: 'spam' }),
    abuseReport: (ee) => ee.abuseReport('abuse_1'),
    authorizeAbuseReport: (ee) => ee.authorizeAbuseReport('abuse_1'),
    createPayout: (ee) => ee.createPayout({ provider: 'provider:p', amount: '$1' }),
    payout: (ee) => ee.payout('payout_1'),
    confirmPayout: (ee) => ee.confirmPayout('payout_1'),
    cancelPayout: (ee) => ee.cancelPayout('payout_1'),
  };

  it('every method of the SDK is either a call checked here or left out with a reason', () => {
    const methods = Object.getOwnPropertyNames(EasyEnclave.prototype);
    const unlisted = methods.filter((m) => !(m in calls) && !(m in NOT_JSON_CALLS));
    assert.deepEqual(unlisted, [], 'add the new SDK call to this test');
    const stale = Object.keys(calls).filter((m) => !methods.includes(m));
    assert.deepEqual(stale, []);
  });

  for (const variant of ['full', 'required'] as const) {
    it(`each call accepts the documented response (${variant === 'full' ? 'every property' : 'required properties only'}); money is bigint`, async () => {
      const failures: string[] = [];
      const reached: string[] = [];
      for (const [name, call] of Object.entries(calls)) {
        const sampler = new Sampler(doc);
        const ee = clientAnswering(doc, variant, sampler, reached);
        try {
          const made = call(ee);
          // Paged lists are async iterators: their first item is the first page's first element.
          const result = Symbol.asyncIterator in made ? await firstOf(made) : await made;
          const notBig = moneyNotBigint(result);
          if (notBig.length > 0) failures.push(`${name}: money not bigint: ${notBig.join(', ')}`);
        } catch (err) {
          failures.push(`${name}: ${(err as Error).name}: ${(err as Error).message.slice(0, 600)}`);
        }
      }
      assert.deepEqual(failures, []);
      assert.ok(reached.length >= Object.keys(calls).length, reached.join('\n'));
    });
  }

  it('fails when a documented field is renamed, or money drifts to a fractional number', async () => {
    const renamed = structuredClone(doc);
    const balance = renamed.components.schemas.Balance;
    balance.properties.available = balance.properties.available_micro_usd;
    delete balance.properties.available_micro_usd;
    balance.required = balance.required.map((k: string) => (k === 'available_micro_usd' ? 'available' : k));
    await assert.rejects(
      calls.balance!(clientAnswering(renamed, 'required', new Sampler(renamed), [])) as Promise<unknown>,
      /available_micro_usd/,
    );

    const fractional = structuredClone(doc);
    fractional.components.schemas.Balance.properties.locked_micro_usd = { type: 'number' };
    await assert.rejects(
      calls.balance!(clientAnswering(fractional, 'full', new Sampler(fractional), [])) as Promise<unknown>,
      /locked_micro_usd/,
    );
  });

  it('money in documented responses is an integer or an integer string, never a JSON number with a fraction', () => {
    const sampler = new Sampler(doc);
    for (const item of Object.values<Json>(doc.paths))
      for (const op of Object.values<Json>(item))
        for (const [status, r] of Object.entries<Json>(op.responses ?? {}))
          if (/^2/.test(status) && r.content?.['application/json'])
            sampler.sample(r.content['application/json'].schema, 'full');
    assert.ok(sampler.money.length > 20, `only ${sampler.money.length} money fields`);
    const wrong = sampler.money.filter((m) => m.types.length === 0 || m.types.some((t) => t === 'number'));
    assert.deepEqual(wrong, []);
  });
});
