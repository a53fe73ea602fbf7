// The API's contract: an OpenAPI 3.1 document generated from the routes' zod schemas (@fastify/swagger with
// fastify-type-provider-zod's transforms), served at GET /openapi.json. The two raw routes that bypass fastify
// (the proxy and the agents' tunnel) are described here by hand: documented, not validated.
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_CATALOGUE } from './error-catalogue.js';

export const API_VERSION = '0.1.0';

/** Methods the proxy forwards (any method reaches the app; these are the ones documented). */
const PROXY_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'] as const;

/** Routes served by raw handlers in server.ts, in the document's path syntax. */
export const RAW_ROUTES: readonly { method: string; url: string }[] = [
  ...PROXY_METHODS.map((m) => ({ method: m.toUpperCase(), url: '/v1/proxy/{app}/{path}' })),
  { method: 'GET', url: '/v1/tunnel' },
];

const errorRef = { $ref: '#/components/schemas/Error' };

function rawPaths(): Record<string, Record<string, unknown>> {
  const proxyOp = (method: string) => ({
    tags: ['proxy'],
    operationId: `proxy_${method}`,
    summary: "Forward a request (streamed body, or a WebSocket upgrade) to one of the app's agents",
    description:
      'Raw route (not validated by the API): the agent’s backend sees `/{path}` with the query string. Errors ' +
      'are the JSON error body: 404 unknown_app, 403 not_attested / registration_expired, 503 no_agent / ' +
      'unhealthy / agent_draining / agent_overloaded (with Retry-After), 502 backend_unreachable / backend_error, ' +
      '504 backend_timeout / agent_timeout, 413, 431 (docs/protocol.md).',
    parameters: [
      { name: 'app', in: 'path', required: true, schema: { type: 'string' } },
      {
        name: 'path',
        in: 'path',
        required: true,
        description: 'the rest of the path, slashes included',
        schema: { type: 'string' },
      },
    ],
    responses: {
      default: { description: "the app's own response" },
      '4XX': { description: 'refused by the control plane', content: { 'application/json': { schema: errorRef } } },
      '5XX': { description: 'no agent could answer', content: { 'application/json': { schema: errorRef } } },
    },
  });
  const proxy: Record<string, unknown> = {};
  for (const m of PROXY_METHODS) proxy[m] = proxyOp(m);
  return {
    '/v1/proxy/{app}/{path}': proxy,
    '/v1/tunnel': {
      get: {
        tags: ['agents'],
        operationId: 'tunnel',
        summary: "The agents' WebSocket (dialled out by each agent; docs/protocol.md)",
        description: 'Raw route: an HTTP/1.1 upgrade to WebSocket; the tunnel protocol runs over it.',
        responses: {
          '101': { description: 'switching to the tunnel protocol' },
          '503': { description: 'too many handshakes', content: { 'application/json': { schema: errorRef } } },
        },
      },
    },
  };
}

/** Registers the generator; routes registered after it are collected (call before the route plugins). */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    exposeHeadRoutes: true,
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'easyenclave control plane',
        version: API_VERSION,
        description:
          'Errors: `{"error":{"code","message","type","param?"}}`; every response carries `Request-Id`. ' +
          `Error codes: ${Object.keys(ERROR_CATALOGUE).join(', ')}.`,
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'an API key (ee_user_… / ee_provider_…), the admin token, or the service token a route names',
          },
        },
      },
    },
    transform: jsonSchemaTransform,
    transformObject: (doc) => {
      const out = jsonSchemaTransformObject(doc);
      return { ...out, paths: { ...out.paths, ...rawPaths() } } as typeof out;
    },
  });
}

export async function openApiRoutes(base: FastifyInstance): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  app.get(
    '/openapi.json',
    {
      schema: {
        tags: ['operations'],
        summary: 'This document (OpenAPI 3.1)',
        response: { 200: z.record(z.string(), z.unknown()) },
      },
    },
    async () => ({ ...base.swagger() }),
  );
}
