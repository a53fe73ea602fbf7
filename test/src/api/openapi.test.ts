// The API's contract: GET /openapi.json is a valid OpenAPI 3.1 document generated from the route schemas,
// every route fastify serves is in it, every operation in it is a route that exists (fastify's or one of the
// raw routes), and errors are documented with the one error shape.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { RAW_ROUTES } from '@easyenclave/control-plane/http/openapi';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startCp } from '../helpers/network.js';

/** fastify's `/v1/nodes/:node` in the document's syntax: `/v1/nodes/{node}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, '{$1}');
const key = (method: string, url: string) => `${method.toUpperCase()} ${url}`;

describe('OpenAPI document', () => {
  let cp: ControlPlane;
  let doc: any;

  before(async () => {
    cp = await startCp();
    const res = await fetch(`${cp.api_url}/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    doc = await res.json();
  });
  after(closeAll);

  it('is public and validates as OpenAPI 3.1', async () => {
    assert.equal(doc.openapi, '3.1.0');
    const result = await new Validator().validate(doc);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2)?.slice(0, 4000));
  });

  it('documents every registered route, and every documented route exists', () => {
    const served = new Set(cp.api_routes.map((r) => key(r.method, openApiPath(r.url))));
    for (const r of RAW_ROUTES) served.add(key(r.method, r.url));
    const documented = new Set<string>();
    for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
      for (const method of Object.keys(item)) {
        if (['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].includes(method))
          documented.add(key(method, path));
      }
    }
    assert.ok(served.size > 30, `only ${served.size} routes seen`);
    const undocumented = [...served].filter((r) => !documented.has(r));
    const phantom = [...documented].filter((r) => !served.has(r));
    assert.deepEqual(undocumented, [], 'routes served but not documented');
    assert.deepEqual(phantom, [], 'routes documented but not served');
  });

  it('declares request schemas and the error shape with its type and param', () => {
    const transfer = doc.paths['/v1/credits/transfer'].post;
    const body = transfer.requestBody.content['application/json'].schema;
    assert.deepEqual(Object.keys(body.properties).sort(), ['amount', 'amount_micro_usd', 'from', 'memo', 'to']);
    assert.equal(body.properties.amount['x-error-code'], 'invalid_amount');
    assert.ok(transfer.parameters.some((p: any) => p.in === 'header' && p.name === 'idempotency-key'));
    const err = doc.components.schemas.Error;
    assert.deepEqual(Object.keys(err.properties.error.properties).sort(), ['code', 'message', 'param', 'type']);
    assert.ok(err.properties.error.properties.type.enum.includes('invalid_request'));
    assert.ok(transfer.responses['402'], 'insufficient_funds is documented');
    const history = doc.paths['/v1/accounts/{account}/transfers'].get;
    assert.deepEqual(history.parameters.map((p: any) => `${p.in}:${p.name}`).sort(), [
      'path:account',
      'query:cursor',
      'query:limit',
    ]);
    assert.ok(doc.paths['/v1/proxy/{app}/{path}'].post.description.includes('Raw route'));
    const deploy = doc.paths['/v1/deployments'].post;
    const deployBody = deploy.requestBody.content['application/json'].schema;
    for (const f of ['app', 'image', 'port', 'sealed_env', 'env_key', 'vcpus', 'memory_mib', 'periods'])
      assert.ok(deployBody.properties[f], `POST /v1/deployments declares ${f}`);
    assert.ok(deploy.parameters.some((p: any) => p.in === 'header' && p.name === 'idempotency-key'));
    assert.ok(doc.paths['/v1/deployments/{id}'].patch.requestBody.content['application/json'].schema.properties.image);
    assert.ok(doc.paths['/v1/deployments/{id}'].delete);
  });
});
