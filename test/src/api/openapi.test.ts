// The API's contract: GET /openapi.json is a valid OpenAPI 3.1 document generated from the route schemas,
// every route fastify serves is in it, every operation in it is a route that exists (fastify's or one of the
// raw routes), and errors are documented with the one error shape.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { openApiRoutes, RAW_ROUTES, registerOpenApi } from '@easyenclave/control-plane/http/openapi';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startCp } from '../helpers/network.js';
import { routeMismatch } from './contract.js';

/** The first line of the answer to a raw HTTP/1.1 request (the connection is closed after it). */
function statusLine(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(head));
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        s.destroy();
        resolve(got.split('\r\n')[0]!);
      }
    });
    s.on('end', () => resolve(got.split('\r\n')[0]!));
    s.on('error', reject);
  });
}

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
    const m = routeMismatch(cp.api_routes, RAW_ROUTES, doc);
    assert.ok(m.served > 30, `only ${m.served} routes seen`);
    assert.deepEqual(m.undocumented, [], 'routes served but not documented');
    assert.deepEqual(m.phantom, [], 'routes documented but not served');
  });

  it('the raw routes it documents are answered by their raw handlers, not by "no route"', async () => {
    const port = Number(new URL(cp.api_url).port);
    for (const r of RAW_ROUTES) {
      if (r.url.startsWith('/v1/proxy/')) {
        const res = await fetch(`${cp.api_url}/v1/proxy/nosuch/x`, { method: r.method });
        assert.equal(res.status, 404, r.method);
        if (r.method !== 'HEAD') assert.equal(((await res.json()) as any).error.code, 'unknown_app', r.method);
      } else {
        // The tunnel is an upgrade only: a handshake with a malformed key reaches the WebSocket server (400),
        // where a path with no upgrade handler is a 404.
        const line = await statusLine(
          port,
          `${r.method} ${r.url} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n',
        );
        assert.match(line, /^HTTP\/1\.1 400 /, `${r.method} ${r.url}`);
        const nothing = await statusLine(
          port,
          'GET /v1/not-a-tunnel HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n',
        );
        assert.match(nothing, /^HTTP\/1\.1 404 /);
      }
    }
  });

  it('fails when a route is left out of the document, or a documented one is not served', async () => {
    // A server built like the control plane's: routes collected by onRoute, the document by @fastify/swagger.
    const app = Fastify();
    app.setValidatorCompiler(validatorCompiler);
    app.setSerializerCompiler(serializerCompiler);
    const routes: { method: string; url: string }[] = [];
    app.addHook('onRoute', (r) => {
      for (const method of [r.method].flat()) routes.push({ method, url: r.url });
    });
    await registerOpenApi(app);
    await app.register(openApiRoutes);
    const typed = app.withTypeProvider<ZodTypeProvider>();
    typed.post('/v1/things', { schema: { body: z.object({ name: z.string() }) } }, async () => ({}));
    typed.post('/v1/secret', { schema: { hide: true, body: z.object({ name: z.string() }) } }, async () => ({}));
    await app.ready();
    const small = app.swagger() as any;
    const m = routeMismatch(routes, RAW_ROUTES, small);
    assert.deepEqual(m.undocumented, ['POST /v1/secret']);
    assert.deepEqual(m.phantom, []);
    // The control plane's document minus one operation, against its real routes.
    const trimmed = structuredClone(doc);
    delete trimmed.paths['/v1/credits/transfer'].post;
    assert.deepEqual(routeMismatch(cp.api_routes, RAW_ROUTES, trimmed).undocumented, ['POST /v1/credits/transfer']);
    const extra = structuredClone(doc);
    extra.paths['/v1/nowhere'] = { get: { responses: { '200': { description: 'x' } } } };
    assert.deepEqual(routeMismatch(cp.api_routes, RAW_ROUTES, extra).phantom, ['GET /v1/nowhere']);
    await app.close();
  });

  it('an invalid document fails validation', async () => {
    const broken = structuredClone(doc);
    broken.paths['/v1/credits/transfer'].post.responses = 'none';
    assert.equal((await new Validator().validate(broken)).valid, false);
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
