// The jobs API (user key): placement (which launcher to seal the env to), create, show, logs, cancel. A job is
// placed on the cheapest eligible node whose launcher has room; the control plane stores and forwards only
// ciphertext: the env sealed to the launcher's attested key, the result and logs sealed to the client's key.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { LAUNCHER_APP } from '@easyenclave/protocol/launcher';
import { SEALED_MEDIA_TYPE } from '@easyenclave/protocol/seal/index';
import { formatUsd } from '../ledger/amount.js';
import type { JobRow } from '../jobs/ops.js';
import type { JobsService } from '../jobs/service.js';
import { isTerminal, type JobStep } from '../jobs/state.js';
import type { JobAttempt } from '../jobs/retry.js';
import { openLauncherStream } from '../launchers/client.js';
import type { LauncherRegistry } from '../launchers/registry.js';
import type { LedgerStore } from '../ledger-store/ledger-store.js';
import { authHooks, mayActFor, principalOf } from './auth-hooks.js';
import { apiFailure } from './error-catalogue.js';
import { errorResponse, type IdempotencyKeys } from './idempotency.js';
import { IdParams } from './market-schemas.js';
import { BEARER, errorResponses, IdempotencyHeaders } from './schemas.js';
import { JobBody, JobView, PlacementQuery, PlacementView, ResealBody } from './jobs-schemas.js';
import { withRequestId } from '../correlation.js';

export interface JobsRoutesOptions {
  jobs: JobsService;
  registry: LauncherRegistry;
  ledger: LedgerStore;
  idempotency: IdempotencyKeys;
  admin_token: string | undefined;
}

const tags = ['jobs'];
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
/** A log stream idle this long (no output) is closed; the client reconnects if it still wants it. */
export const LOG_STREAM_TIMEOUT_MS = 24 * 3600 * 1000;

/** A job as the API shows it; `agent_id` names the launcher a retried job's env waits to be sealed to. */
export function jobView(j: JobRow, agent_id: string | null = null) {
  return {
    job_id: j.id,
    user: j.user_id,
    node_id: j.node_id,
    image: j.image,
    command: j.command === null ? null : (JSON.parse(j.command) as string[]),
    vcpus: j.vcpus,
    memory_mib: j.memory_mib,
    max_runtime_s: j.max_runtime_ms / 1000,
    network: j.network === 1,
    state: j.state,
    reason: j.reason,
    history: (JSON.parse(j.history) as JobStep[]).map((s) => ({ state: s.state, at: iso(s.at_ms)!, reason: s.reason })),
    cancel_requested: j.cancel_requested === 1,
    image_id: j.image_id,
    image_digest: j.image_digest,
    exit_code: j.exit_code,
    started_at: iso(j.started_ms),
    finished_at: iso(j.finished_ms),
    billed_vcpu_ms: j.billed_vcpu_ms,
    price_per_vcpu_hour_micro_usd: Number(j.price_micro),
    price_per_vcpu_hour_usd: formatUsd(BigInt(j.price_micro)),
    locked_micro_usd: Number(j.lock_micro),
    locked_usd: formatUsd(BigInt(j.lock_micro)),
    settled_micro_usd: j.settled_micro === null ? null : Number(j.settled_micro),
    refunded_micro_usd: j.refunded_micro === null ? null : Number(j.refunded_micro),
    result_sealed: j.result_sealed,
    usage:
      j.usage_record === null
        ? null
        : (JSON.parse(j.usage_record) as { record: Record<string, unknown>; signature: string }),
    created_at: iso(j.created_ms)!,
    output_file: j.output_file,
    retry_on_node_loss: j.retry_on_node_loss === 1,
    attempt: j.attempt,
    attempts: (JSON.parse(j.attempts ?? '[]') as JobAttempt[]).map((a) => ({
      attempt: a.attempt,
      node_id: a.node_id,
      locked_micro_usd: Number(a.lock_micro),
      settled_micro_usd: Number(a.settled_micro),
      refunded_micro_usd: Number(a.refunded_micro),
      reason: a.reason,
      ended_at: iso(a.ended_ms)!,
    })),
    env_required:
      j.env_pending === 1 && j.env_key !== null && j.state === 'queued'
        ? { launcher: { app: LAUNCHER_APP, agent_id }, hpke_public_key: j.env_key }
        : null,
  };
}

export async function jobsRoutes(base: FastifyInstance, opts: JobsRoutesOptions): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { jobs, idempotency } = opts;
  const auth = authHooks({ db: opts.ledger.db, now: opts.ledger.now, admin_token: opts.admin_token });

  const userOf = (req: FastifyRequest): string => {
    const p = principalOf(req);
    if (p.kind !== 'identity' || !p.id.startsWith('user:'))
      throw apiFailure('not_a_user', 'jobs are paid from user accounts: use a user API key');
    return p.id;
  };

  const view = (j: JobRow) =>
    jobView(j, j.env_pending === 1 ? (opts.registry.view(j.node_id)?.agent_id ?? null) : null);

  const ownJob = async (req: FastifyRequest, id: string): Promise<JobRow> => {
    const job = await jobs.get(id);
    if (!job || !mayActFor(principalOf(req), job.user_id)) throw apiFailure('unknown_job');
    return job;
  };

  app.get(
    '/v1/jobs/placement',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: 'The node and launcher a job of this size would go to now (seal its env to that launcher)',
        security: BEARER,
        querystring: PlacementQuery,
        response: { 200: PlacementView, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (req) => {
      userOf(req);
      const r = await jobs.placement(req.query.vcpus, req.query.memory_mib);
      if (!r.ok) throw apiFailure(r.code, r.message);
      const p = r.placements[0]!;
      return {
        node_id: p.node_id,
        launcher: { app: LAUNCHER_APP, agent_id: p.agent_id },
        hpke_public_key: p.hpke_public_key,
        receipt_public_key: p.receipt_public_key,
        price_per_vcpu_hour_micro_usd: Number(p.price_micro),
        price_per_vcpu_hour_usd: formatUsd(BigInt(p.price_micro)),
      };
    },
  );

  app.post(
    '/v1/jobs',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: 'Run a job: placed on the cheapest eligible node with room, vCPUs × price × max runtime locked',
        security: BEARER,
        headers: IdempotencyHeaders,
        body: JobBody,
        response: { 201: JobView, ...errorResponses(400, 401, 402, 403, 409) },
      },
    },
    async (req, reply) => {
      const user = userOf(req);
      const b = req.body;
      if ((b.sealed_env === undefined) !== (b.env_key === undefined))
        throw apiFailure('invalid_request', 'sealed_env and env_key go together', { param: 'env_key' });
      if (b.sealed_env !== undefined && b.job_id === undefined)
        throw apiFailure('invalid_request', 'a sealed env is sealed for a job id: give it as job_id', {
          param: 'job_id',
        });
      return idempotency.handle(req, reply, user, async (run) => {
        const job_id = b.job_id ?? run.derivedId('job_', () => `job_${randomBytes(10).toString('hex')}`).slice(0, 24);
        const placed = await jobs.placement(b.vcpus, b.memory_mib);
        let candidates = placed.ok ? placed.candidates : [];
        if (b.env_key !== undefined) {
          candidates = candidates.filter((c) => c.hpke_public_key === b.env_key);
          if (placed.ok && candidates.length === 0 && !opts.registry.holdsKey(b.env_key))
            return errorResponse({ code: 'invalid_env_key' });
        }
        if (!placed.ok && placed.code === 'job_too_large') return errorResponse(placed);
        return withRequestId(req.id, () =>
          jobs.create(
            {
              id: job_id,
              user_id: user,
              image: b.image,
              command: b.command ?? null,
              vcpus: b.vcpus,
              memory_mib: b.memory_mib,
              max_runtime_ms: b.max_runtime_s * 1000,
              network: b.network,
              sealed_env: b.sealed_env ?? null,
              env_key: b.env_key ?? null,
              result_key: b.result_key,
              retry_on_node_loss: b.retry_on_node_loss,
              output_file: b.output_file ?? null,
            },
            candidates,
            (r, ctx) => {
              const out = r.ok ? { status: 201, body: jobView(r.job) } : errorResponse(r);
              run.record(ctx.writes, ctx.now_ms, out);
              return out;
            },
          ),
        );
      });
    },
  );

  const jobSchema = (summary: string) => ({
    tags,
    summary,
    security: BEARER,
    params: IdParams,
    response: { 200: JobView, ...errorResponses(400, 401, 404) },
  });

  app.get(
    '/v1/jobs/:id',
    { onRequest: auth.caller, schema: jobSchema('A job: its state and history, money, and its sealed result') },
    async (req) => view(await ownJob(req, req.params.id)),
  );

  app.put(
    '/v1/jobs/:id/env',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: "A retried job's env, sealed again to the launcher of its new node (env_required); then it runs",
        security: BEARER,
        params: IdParams,
        body: ResealBody,
        response: { 200: JobView, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (req) => {
      await ownJob(req, req.params.id);
      const r = await jobs.reseal(req.params.id, req.body.sealed_env, req.body.env_key);
      if (!r.ok) throw apiFailure(r.code, r.message);
      return view(r.job);
    },
  );

  app.delete(
    '/v1/jobs/:id',
    {
      onRequest: auth.caller,
      schema: jobSchema('Cancel a job: refunded in full before it starts; stopped and billed what it ran after'),
    },
    async (req) => {
      await ownJob(req, req.params.id);
      return view(await withRequestId(req.id, () => jobs.cancel(req.params.id)));
    },
  );

  app.get(
    '/v1/jobs/:id/logs',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: "The job's stdout and stderr from its start, following it, sealed to the client's key",
        security: BEARER,
        params: IdParams,
        response: { ...errorResponses(400, 401, 404, 409, 503) },
      },
    },
    async (req, reply) => {
      const job = await ownJob(req, req.params.id);
      if (isTerminal(job.state)) throw apiFailure('logs_unavailable');
      const link = opts.registry.link(job.node_id);
      if (link === null) throw apiFailure('launcher_unavailable', undefined, { retry_after_s: 1 });
      const stream = openLauncherStream(link, 'GET', `/v1/launcher/jobs/${job.id}/logs`, null, LOG_STREAM_TIMEOUT_MS);
      const res = reply.raw;
      reply.hijack();
      // The launcher's sealed bytes are relayed as they come; the control plane cannot read them.
      stream.onHeaders = (head) => {
        if (head.status !== 200) {
          res.writeHead(409, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              error: { code: 'logs_unavailable', message: 'the launcher has no logs for this job', type: 'conflict' },
            }),
          );
          stream.reset();
          return;
        }
        res.writeHead(200, { 'content-type': SEALED_MEDIA_TYPE, 'cache-control': 'no-store' });
      };
      stream.onData = (chunk) => {
        if (res.writableEnded) return stream.consumed(chunk.length);
        // The last chunk may carry END_STREAM itself: then no separate end event follows.
        if (stream.remote_ended) res.end(chunk, () => stream.consumed(chunk.length));
        else res.write(chunk, () => stream.consumed(chunk.length));
      };
      stream.onEnd = () => res.end();
      stream.onReset = () => res.destroy();
      res.on('close', () => stream.reset());
    },
  );
}
