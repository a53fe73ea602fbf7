// Market nodes over HTTP: register (provider key), detail (admin or owner), stake, unstake,
// fraud ruling (admin); the list is in market-lists.ts. Reads come from market/store/reads.ts; money moves only through market/ops.ts.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { networkPolicy } from '@easyenclave/attestation';
import { MAX_AMOUNT_MICRO } from '../ledger/amount.js';
import type { ApplyContext } from '../ledger-store/batch.js';
import { getIdentity } from '../ledger-store/identities.js';
import { newNodeToken, type Market } from '../market/market.js';
import { stakeOp, unstakeOp, type NodeRow, type StakeResult } from '../market/ops.js';
import { getNode } from '../market/store/queries.js';
import {
  activeNodeCount,
  nodeAgents,
  nodeByPpid,
  nodeSlashes,
  recentAttestations,
  recentHealthEvents,
} from '../market/store/reads.js';
import { insertNode } from '../market/store/writes.js';
import { mayActFor, principalOf } from './auth-hooks.js';
import { apiFailure } from './error-catalogue.js';
import { errorResponse, type StoredResponse } from './idempotency.js';
import { iso, marketAuth, money, rowsOp, tags, type MarketRoutesOptions } from './market-common.js';
import {
  FraudBody,
  FraudView,
  NodeDetailView,
  NodeParams,
  RegisteredNodeView,
  RegisterNodeBody,
  StakeBody,
  StakeView,
  UnstakeBody,
} from './market-schemas.js';
import { BEARER, errorResponses, IdempotencyHeaders } from './schemas.js';
import { withRequestId } from '../correlation.js';

/** Bounds the work and rows one provider key can create (routing and stake checks scan a provider's nodes). */
export const MAX_NODES_PER_PROVIDER = 256;

export function nodeSummary(n: NodeRow) {
  return {
    node_id: n.id,
    provider: n.provider,
    name: n.name,
    region: n.region,
    tier: n.tier,
    network: n.network,
    vcpus: n.vcpus,
    capacity_months: n.capacity_months,
    machine_months: n.vcpus * n.capacity_months,
    ...money('price_per_vcpu_hour', n.price_micro),
    binding: n.ppid !== null ? ('ppid' as const) : ('node_token' as const),
    ppid: n.ppid,
    status: n.status,
    banned_reason: n.banned_reason,
    banned_at: iso(n.banned_ms),
    created_at: iso(n.created_ms)!,
  };
}

async function nodeDetail(market: Market, n: NodeRow) {
  const s = await market.nodeState(n);
  const agents = await nodeAgents(market.db, n.id);
  const ids = agents.map((a) => a.agent_id);
  const [attestations, health, slashes] = await Promise.all([
    recentAttestations(market.db, ids),
    recentHealthEvents(market.db, ids),
    nodeSlashes(market.db, n.id),
  ]);
  return {
    ...nodeSummary(n),
    stake: { ...money('held', s.stake_held), ...money('required', s.stake_required), per: 'provider' as const },
    eligible: s.eligible,
    ineligible_reasons: s.reasons,
    trust: s.trust,
    effective_price_per_vcpu_hour_micro_usd: Math.round(s.effective_price),
    live: s.live,
    agents: agents.map((a) => ({
      agent_id: a.agent_id,
      via: a.via,
      bound_at: iso(a.bound_ms),
      app: a.app_name ?? null,
      connected: a.connected === 1,
      health: a.health_status ?? null,
      attested: a.attest_ok === 1,
      last_attest: iso(a.last_attest_ms),
    })),
    attestations: attestations.map((a) => ({
      agent_id: a.agent_id,
      at: iso(a.at_ms)!,
      reason: a.reason,
      ok: a.ok === 1,
      missed: a.missed === 1,
      failure: a.failure,
    })),
    health_events: health.map((h) => ({ agent_id: h.agent_id, at: iso(h.at_ms)!, kind: h.kind, detail: h.detail })),
    slashes: slashes.map((x) => ({
      id: x.id,
      kind: x.kind,
      ...money('amount', x.amount),
      reason: x.reason,
      at: iso(x.at_ms)!,
    })),
  };
}

export async function marketNodeRoutes(base: FastifyInstance, opts: MarketRoutesOptions): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { market, idempotency } = opts;
  const auth = marketAuth(opts);

  /** The node named in the path, if the caller is the admin or the node's provider (404 otherwise). */
  const ownedNode = async (req: FastifyRequest, node_id: string): Promise<NodeRow> => {
    const node = await getNode(market.db, node_id);
    if (!node || !mayActFor(principalOf(req), node.provider))
      throw apiFailure('unknown_node', 'no such node (or not yours)');
    return node;
  };

  app.post(
    '/v1/nodes/register',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: 'Register a node with a posted price; its node token is returned once',
        security: BEARER,
        headers: IdempotencyHeaders,
        body: RegisterNodeBody,
        response: { 201: RegisteredNodeView, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const body = req.body;
      const provider = p.kind === 'admin' ? body.provider : p.id;
      if (provider === undefined)
        throw apiFailure('invalid_request', 'provider is required when the admin token registers a node', {
          param: 'provider',
        });
      if (p.kind === 'identity' && body.provider !== undefined && body.provider !== p.id)
        throw apiFailure('forbidden', 'an API key can only register nodes for itself');
      if (!provider.startsWith('provider:') || !(await getIdentity(market.deps.ledger.db, provider)))
        throw apiFailure('not_a_provider', 'nodes are registered by provider accounts');
      const price = body.micro!;
      const net = networkPolicy(body.network);
      if (!net) throw apiFailure('unknown_network', `unknown network "${body.network}"`, { param: 'network' });
      // Minutes-long periods are for trying the market out: money on a sealed network follows real hours.
      if (net.sealed && market.deps.config.sandbox_settlement_period_ms !== undefined)
        throw apiFailure('sandbox_clock', undefined, { param: 'network' });
      if (net.sealed && body.ppid === undefined)
        throw apiFailure(
          'ppid_required',
          `network "${body.network}" is sealed: register the node's PPID; agents are bound by the PPID of their verified quotes`,
          { param: 'ppid' },
        );
      if (!net.sealed && body.ppid !== undefined)
        throw apiFailure(
          'invalid_request',
          'a PPID binds agents on sealed networks only; sandbox nodes get a node token',
          {
            param: 'ppid',
          },
        );
      // Every stake requirement and period lock of the node must be a representable amount.
      const worstHours = BigInt(Math.max(720, market.timing.period_ms / 3_600_000));
      if (price * BigInt(body.vcpus) * worstHours > MAX_AMOUNT_MICRO) {
        throw apiFailure(
          'price_too_high',
          `price × vCPUs × ${worstHours} h (the largest stake or lock) must not exceed ${MAX_AMOUNT_MICRO} micro-USD`,
          { param: 'price_per_vcpu_hour' },
        );
      }
      const tok = newNodeToken();
      return idempotency.handle(req, reply, p.id, async (run) => {
        // State checks run here, after a stored response would have been replayed: a retried registration gets
        // its first answer, never "ppid_taken" by its own node.
        if (body.ppid !== undefined && (await nodeByPpid(market.db, body.ppid)))
          return errorResponse({ code: 'ppid_taken' });
        if ((await activeNodeCount(market.db, provider)) >= MAX_NODES_PER_PROVIDER)
          return errorResponse({
            code: 'too_many_nodes',
            message: `a provider may have at most ${MAX_NODES_PER_PROVIDER} active nodes`,
          });
        let token: string | null = null;
        const response = await market.deps.ledger.submit(
          rowsOp(run, (ctx) => {
            const row: NodeRow = {
              id: tok.node_id,
              provider,
              name: body.name ?? tok.node_id,
              region: body.region,
              tier: body.tier,
              network: body.network,
              vcpus: body.vcpus,
              capacity_months: body.capacity_months,
              price_micro: Number(price),
              ppid: body.ppid ?? null,
              token_hash: tok.hash,
              status: 'active',
              banned_reason: null,
              banned_ms: null,
              created_ms: ctx.now_ms,
            };
            // Sealed nodes get a token too (optional there: their agents are bound by PPID); an agent presenting it
            // claims to run on the node's machine, and a verified PPID contradicting that is attestation fraud.
            token = tok.token;
            const stored = {
              ...nodeSummary(row),
              node_token: null as string | null,
              node_token_note: net.sealed
                ? 'sealed network: agents are bound by the PPID of their verified quotes; the token (shown once) is optional, and presented from another machine it is attestation fraud'
                : "shown once, in the first response; give it to the node's agents as EE_NODE_TOKEN",
            };
            return { response: { status: 201, body: stored }, write: (tx) => insertNode(tx, row) };
          }),
          req.id,
        );
        void market.refreshRanking();
        return token === null
          ? response
          : { status: response.status, body: { ...(response.body as object), node_token: token } };
      });
    },
  );

  app.get(
    '/v1/nodes/:node',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: "A node's detail: stake, eligibility and reasons, trust, agents, recent evidence, slashes",
        security: BEARER,
        params: NodeParams,
        response: { 200: NodeDetailView, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => nodeDetail(market, await ownedNode(req, req.params.node)),
  );

  type StakeAnswer = StakeResult & { amount?: bigint };
  const runStake = async (
    req: FastifyRequest,
    reply: FastifyReply,
    node: NodeRow,
    amount: bigint | undefined,
    unstake: boolean,
  ) =>
    idempotency.handle(req, reply, principalOf(req).id, async (run) => {
      const id = run.derivedId(
        unstake ? 'unstake:' : 'stake:',
        () => `${unstake ? 'unstake' : 'stake'}:${randomBytes(20).toString('hex')}`,
      );
      const respond = (res: StakeAnswer, ctx: ApplyContext): StoredResponse => {
        const response = res.ok
          ? {
              status: 200,
              body: {
                node_id: node.id,
                provider: node.provider,
                transfer_id: id,
                ...money('amount', res.amount ?? amount ?? 0n),
                stake: money('held', res.held),
              },
            }
          : errorResponse(res);
        run.record(ctx.writes, ctx.now_ms, response);
        return response;
      };
      const op = unstake
        ? unstakeOp(node.id, node.provider, amount, id, market.deps.config.unstake_cooldown_ms, respond)
        : stakeOp(node.id, node.provider, amount!, id, respond);
      const response = await market.deps.ledger.submit(op, req.id);
      await market.refreshRanking();
      if (response.status === 200) {
        const s = await market.nodeState(node);
        Object.assign((response.body as { stake: object }).stake, money('required', s.stake_required));
        Object.assign(response.body as object, { eligible: s.eligible, ineligible_reasons: s.reasons });
      }
      return response;
    });

  const stakeSchema = (summary: string, body: typeof StakeBody | typeof UnstakeBody) => ({
    tags,
    summary,
    security: BEARER,
    headers: IdempotencyHeaders,
    params: NodeParams,
    body,
    response: { 200: StakeView, ...errorResponses(400, 401, 402, 404, 409) },
  });
  app.post(
    '/v1/nodes/:node/stake',
    {
      onRequest: auth.caller,
      schema: stakeSchema("Move credits from the provider's earnings to its stake", StakeBody),
    },
    async (req, reply) => runStake(req, reply, await ownedNode(req, req.params.node), req.body.micro!, false),
  );
  app.post(
    '/v1/nodes/:node/unstake',
    {
      onRequest: auth.caller,
      schema: stakeSchema('Move stake back to earnings (no open period, after the cooldown)', UnstakeBody),
    },
    async (req, reply) => runStake(req, reply, await ownedNode(req, req.params.node), req.body.micro, true),
  );

  app.post(
    '/v1/nodes/:node/fraud',
    {
      onRequest: auth.admin,
      schema: {
        tags,
        summary: 'Rule attestation fraud: whole stake slashed, open locks voided, node banned (admin)',
        security: BEARER,
        headers: IdempotencyHeaders,
        params: NodeParams,
        body: FraudBody,
        response: { 200: FraudView, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      const node_id = req.params.node;
      return idempotency.handle(req, reply, principalOf(req).id, async (run) => {
        const r = await withRequestId(req.id, () => market.fraud(node_id, `admin fraud ruling: ${req.body.reason}`));
        if (r.outcome === 'unknown_node') return errorResponse({ code: 'unknown_node' });
        // The node is banned: its open reservations refund what is not claimed, now (zero tolerance).
        if (r.outcome === 'banned') await withRequestId(req.id, () => opts.reservations?.checkNode(node_id));
        if (r.outcome === 'already_banned')
          return errorResponse({ code: 'node_banned', message: 'the node is already banned' });
        const response = {
          status: 200,
          body: {
            node_id,
            status: 'banned',
            ...money('slashed', r.slashed),
            voided: r.voided.map((v) => ({
              lease_id: v.lease_id,
              period_index: v.period,
              ...money('amount', v.amount),
            })),
          },
        };
        // Stored right after the ruling committed (it is idempotent by its ids: were this record lost, a retry
        // would answer node_banned and change nothing).
        return market.deps.ledger.submit(
          rowsOp(run, () => ({ response })),
          req.id,
        );
      });
    },
  );
}
