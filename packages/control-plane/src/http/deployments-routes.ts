// The deployments API (user key): create (a lease on the chosen node, its first period locked, and the
// deployment its launcher runs), show, update (rolling restart onto a new image), stop. The env is sealed by
// the client to the launcher's attested key (GET /v1/jobs/placement names it); the control plane stores and
// forwards only that ciphertext.
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { DeploymentRow, DeploymentsService } from '../deployments/service.js';
import type { JobsService } from '../jobs/service.js';
import type { LauncherRegistry } from '../launchers/registry.js';
import { LAUNCHER_APP } from '@easyenclave/protocol/launcher';
import type { LedgerStore } from '../ledger-store/ledger-store.js';
import type { Market } from '../market/market.js';
import { getLease } from '../market/store/reads.js';
import { authHooks, mayActFor, principalOf } from './auth-hooks.js';
import { DeploymentBody, DeploymentPatch, DeploymentView } from './deployments-schemas.js';
import { apiFailure } from './error-catalogue.js';
import { errorResponse, type IdempotencyKeys } from './idempotency.js';
import { leaseView } from './market-leases.js';
import { IdParams } from './market-schemas.js';
import { BEARER, errorResponses, IdempotencyHeaders } from './schemas.js';
import { withRequestId } from '../correlation.js';

export interface DeploymentsRoutesOptions {
  deployments: DeploymentsService;
  jobs: JobsService;
  registry: LauncherRegistry;
  market: Market;
  ledger: LedgerStore;
  idempotency: IdempotencyKeys;
  admin_token: string | undefined;
}

const tags = ['deployments'];
const iso = (ms: number) => new Date(ms).toISOString();

export async function deploymentsRoutes(base: FastifyInstance, opts: DeploymentsRoutesOptions): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { deployments, idempotency, market } = opts;
  const auth = authHooks({ db: opts.ledger.db, now: opts.ledger.now, admin_token: opts.admin_token });

  const view = async (d: DeploymentRow) => {
    const lease = await getLease(market.db, d.lease_id);
    return {
      deployment_id: d.id,
      user: d.user_id,
      app: d.app,
      node_id: d.node_id,
      image: d.image,
      image_id: d.image_id,
      image_digest: d.image_digest,
      port: d.port,
      vcpus: d.vcpus,
      memory_mib: d.memory_mib,
      state: d.state,
      reason: d.reason,
      generation: d.generation,
      created_at: iso(d.created_ms),
      updated_at: iso(d.updated_ms),
      lease: lease ? await leaseView(market, lease) : null,
      launcher: launcherOf(d.node_id),
    };
  };

  const launcherOf = (node_id: string) => {
    const v = opts.registry.view(node_id);
    return v === null ? null : { app: LAUNCHER_APP, agent_id: v.agent_id, hpke_public_key: v.hpke_public_key };
  };

  const userOf = (req: FastifyRequest): string => {
    const p = principalOf(req);
    if (p.kind !== 'identity' || !p.id.startsWith('user:'))
      throw apiFailure('not_a_user', 'deployments are paid from user accounts: use a user API key');
    return p.id;
  };

  const own = async (req: FastifyRequest, id: string): Promise<DeploymentRow> => {
    const d = await deployments.get(id);
    if (!d || !mayActFor(principalOf(req), d.user_id)) throw apiFailure('unknown_deployment');
    return d;
  };

  app.post(
    '/v1/deployments',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: "Deploy an app: a lease on the launcher's node (first period locked); the launcher runs it",
        security: BEARER,
        headers: IdempotencyHeaders,
        body: DeploymentBody,
        response: { 201: DeploymentView, ...errorResponses(400, 401, 402, 403, 409) },
      },
    },
    async (req, reply) => {
      const user = userOf(req);
      const b = req.body;
      if ((b.sealed_env === undefined) !== (b.env_key === undefined))
        throw apiFailure('invalid_request', 'sealed_env and env_key go together', { param: 'env_key' });
      if (b.sealed_env !== undefined && b.deployment_id === undefined)
        throw apiFailure('invalid_request', 'a sealed env is sealed for a deployment_id: send it', {
          param: 'deployment_id',
        });
      // The same deployment created again finds its lease in the ledger operation: its node need not have room
      // (placement counts the deployment itself).
      const again = b.deployment_id !== undefined && (await deployments.get(b.deployment_id)) !== undefined;
      const placed = again ? null : await opts.jobs.placement(b.vcpus, b.memory_mib);
      if (placed && !placed.ok) throw apiFailure(placed.code, placed.message);
      // With a sealed env, only the node whose launcher holds the key it is sealed to can open it.
      const candidates = (placed?.candidates ?? []).filter(
        (c) => b.env_key === undefined || c.hpke_public_key === b.env_key,
      );
      if (candidates.length === 0 && !again) throw apiFailure('sealed_key_gone');
      return idempotency.handle(req, reply, user, async (run) => {
        const id =
          b.deployment_id ?? run.derivedId('dep_', () => `dep_${randomBytes(10).toString('hex')}`).slice(0, 24);
        // The lease's id follows from the deployment's: a second create of the same deployment (another key, or
        // none) finds its lease in the ledger operation instead of opening a second one.
        const lease_id = `lease_${createHash('sha256').update(`deployment:${id}`).digest('hex').slice(0, 16)}`;
        return withRequestId(req.id, () =>
          deployments.create(
            {
              id,
              lease_id,
              user_id: user,
              app: b.app,
              image: b.image,
              command: b.command ?? null,
              port: b.port,
              vcpus: b.vcpus,
              memory_mib: b.memory_mib,
              periods: b.periods ?? null,
              sealed_env: b.sealed_env ?? null,
              env_key: b.env_key ?? null,
            },
            candidates,
            (r, ctx) => {
              const out = r.ok
                ? {
                    status: 201,
                    body: {
                      deployment_id: id,
                      user,
                      app: b.app,
                      node_id: r.lease.node_id,
                      image: b.image,
                      image_id: null,
                      image_digest: null,
                      port: b.port,
                      vcpus: b.vcpus,
                      memory_mib: b.memory_mib,
                      state: 'starting',
                      reason: 'lease created; starting on the node',
                      generation: 1,
                      created_at: iso(ctx.now_ms),
                      updated_at: iso(ctx.now_ms),
                      lease: null,
                      launcher: launcherOf(r.lease.node_id),
                    },
                  }
                : errorResponse(r);
              run.record(ctx.writes, ctx.now_ms, out);
              return out;
            },
          ),
        );
      });
    },
  );

  app.get(
    '/v1/deployments/:id',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: 'A deployment: node, image id and digest, state, and its lease',
        security: BEARER,
        params: IdParams,
        response: { 200: DeploymentView, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => view(await own(req, req.params.id)),
  );

  app.patch(
    '/v1/deployments/:id',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary:
          'Update the image and/or the sealed env: rolling restart (the old container serves until the new one is routable)',
        security: BEARER,
        params: IdParams,
        body: DeploymentPatch,
        response: { 200: DeploymentView, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (req) => {
      const d = await own(req, req.params.id);
      if (d.state !== 'running' && d.state !== 'updating')
        throw apiFailure('deployment_ended', `the deployment is ${d.state}`);
      const b = req.body;
      if (b.image === undefined && b.sealed_env === undefined)
        throw apiFailure('invalid_request', 'give a new image, a new sealed env, or both', { param: 'image' });
      if ((b.sealed_env === undefined) !== (b.env_key === undefined))
        throw apiFailure('invalid_request', 'sealed_env and env_key go together', { param: 'env_key' });
      // The env must open on this deployment's node: sealed to the key its launcher attests now.
      if (b.env_key !== undefined && b.env_key !== launcherOf(d.node_id)?.hpke_public_key)
        throw apiFailure('invalid_env_key', "the env is not sealed to the deployment's launcher");
      return view(
        await withRequestId(req.id, () =>
          deployments.update(d.id, {
            image: b.image ?? d.image,
            sealed_env: b.sealed_env ?? d.sealed_env,
            env_key: b.env_key ?? d.env_key,
          }),
        ),
      );
    },
  );

  app.delete(
    '/v1/deployments/:id',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: 'Stop a deployment: its lease ends (the locked period settles), the container and agent stop',
        security: BEARER,
        params: IdParams,
        response: { 200: DeploymentView, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      const { id } = await own(req, req.params.id);
      return view(await withRequestId(req.id, () => deployments.stopDeployment(id, 'stopped on request')));
    },
  );
}
