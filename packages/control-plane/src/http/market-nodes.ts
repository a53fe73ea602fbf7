// Market nodes over HTTP: register (provider key), detail (admin or owner), stake, unstake, fraud ruling (admin).
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { networkPolicy } from '@easyenclave/attestation';
import { IDENTITY_ID_PATTERN } from '../ledger/chart.js';
import type { ApplyContext } from '../ledger-store/batch.js';
import { getIdentity } from '../ledger-store/identities.js';
import { newNodeToken, type Market } from '../market/market.js';
import { stakeOp, unstakeOp, type NodeRow } from '../market/ops.js';
import { TIERS, type Tier } from '../market/policy.js';
import { getNode } from '../market/store/queries.js';
import { MAX_AMOUNT_MICRO } from '../ledger/amount.js';
import { amountOf, BadRequest } from './ledger-views.js';
import {
  err,
  guard,
  iso,
  money,
  parse,
  principalDeps,
  PRINTABLE,
  rowsOp,
  type MarketRoutesOptions,
} from './market-common.js';
import { mayActFor, principalOf, requireAdminPrincipal, type Principal } from './principal.js';
import { apiError } from './routes.js';

const RegisterBody = z.strictObject({
  provider: z.string().regex(IDENTITY_ID_PATTERN).optional(),
  name: z.string().min(1).max(128).regex(PRINTABLE).optional(),
  region: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_.-]+$/),
  tier: z.enum(TIERS),
  vcpus: z.number().int().min(1).max(4096),
  capacity_months: z.number().int().min(1).max(120).default(1),
  price_per_vcpu_hour: z.string().max(40).optional(),
  price_per_vcpu_hour_micro_usd: z.number().optional(),
  network: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,31}$/)
    .default('sandbox-1'),
  ppid: z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .optional(),
});
/** Bounds the work and rows one provider key can create (routing and stake checks scan a provider's nodes). */
export const MAX_NODES_PER_PROVIDER = 256;
const AmountBody = z.strictObject({ amount: z.string().max(40).optional(), amount_micro_usd: z.number().optional() });
const FraudBody = z.strictObject({ reason: z.string().min(1).max(500).regex(PRINTABLE) });

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
    binding: n.ppid !== null ? 'ppid' : 'node_token',
    ppid: n.ppid,
    status: n.status,
    banned_reason: n.banned_reason,
    banned_at: iso(n.banned_ms),
    created_at: iso(n.created_ms),
  };
}

async function nodeDetail(market: Market, n: NodeRow) {
  const s = await market.nodeState(n);
  const db = market.db;
  const agents = await db
    .selectFrom('market_node_agents')
    .leftJoin('agents', 'agents.agent_id', 'market_node_agents.agent_id')
    .select([
      'market_node_agents.agent_id',
      'market_node_agents.via',
      'market_node_agents.bound_ms',
      'agents.app_name',
      'agents.connected',
      'agents.health_status',
      'agents.attest_ok',
      'agents.last_attest_ms',
    ])
    .where('market_node_agents.node_id', '=', n.id)
    .orderBy('market_node_agents.agent_id')
    .execute();
  const ids = agents.map((a: { agent_id: string }) => a.agent_id);
  const attestations =
    ids.length === 0
      ? []
      : await db
          .selectFrom('attestations')
          .selectAll()
          .where('agent_id', 'in', ids)
          .orderBy('at_ms', 'desc')
          .orderBy('id', 'desc')
          .limit(20)
          .execute();
  const health =
    ids.length === 0
      ? []
      : await db
          .selectFrom('health_events')
          .selectAll()
          .where('agent_id', 'in', ids)
          .orderBy('at_ms', 'desc')
          .orderBy('id', 'desc')
          .limit(20)
          .execute();
  const slashes = await db
    .selectFrom('market_slashes')
    .selectAll()
    .where('node_id', '=', n.id)
    .orderBy('at_ms')
    .execute();
  return {
    ...nodeSummary(n),
    stake: { ...money('held', s.stake_held), ...money('required', s.stake_required), per: 'provider' },
    eligible: s.eligible,
    ineligible_reasons: s.reasons,
    trust: s.trust,
    effective_price_per_vcpu_hour_micro_usd: Math.round(s.effective_price),
    live: s.live,
    agents: agents.map((a: any) => ({
      agent_id: a.agent_id,
      via: a.via,
      bound_at: iso(a.bound_ms),
      app: a.app_name ?? null,
      connected: a.connected === 1,
      health: a.health_status ?? null,
      attested: a.attest_ok === 1,
      last_attest: iso(a.last_attest_ms),
    })),
    attestations: attestations.map((a: any) => ({
      agent_id: a.agent_id,
      at: iso(a.at_ms),
      reason: a.reason,
      ok: a.ok === 1,
      missed: a.missed === 1,
      failure: a.failure,
    })),
    health_events: health.map((h: any) => ({ agent_id: h.agent_id, at: iso(h.at_ms), kind: h.kind, detail: h.detail })),
    slashes: slashes.map((x: any) => ({
      id: x.id,
      kind: x.kind,
      ...money('amount', x.amount),
      reason: x.reason,
      at: iso(x.at_ms),
    })),
  };
}

export async function marketNodeRoutes(app: FastifyInstance, opts: MarketRoutesOptions): Promise<void> {
  const { market, idempotency } = opts;
  const deps = principalDeps(opts);

  /** The node named in the path, if the caller is the admin or the node's provider; otherwise an error was sent. */
  const ownedNode = async (
    req: FastifyRequest,
    reply: FastifyReply,
  ): Promise<{ p: Principal; node: NodeRow } | null> => {
    const p = await principalOf(req, reply, deps);
    if (!p) return null;
    const node = await getNode(market.db, (req.params as { node: string }).node);
    if (!node || !mayActFor(p, node.provider)) {
      void apiError(reply, 404, 'unknown_node', 'no such node (or not yours)');
      return null;
    }
    return { p, node };
  };

  app.post('/v1/nodes/register', async (req, reply) =>
    guard(reply, async () => {
      const p = await principalOf(req, reply, deps);
      if (!p) return reply;
      const body = parse(RegisterBody, req.body);
      const provider = p.kind === 'admin' ? body.provider : p.id;
      if (provider === undefined)
        throw new BadRequest('invalid_request', 'provider is required when the admin token registers a node');
      if (p.kind === 'identity' && body.provider !== undefined && body.provider !== p.id)
        return apiError(reply, 403, 'forbidden', 'an API key can only register nodes for itself');
      if (!provider.startsWith('provider:') || !(await getIdentity(market.deps.ledger.db, provider)))
        return apiError(reply, 403, 'not_a_provider', 'nodes are registered by provider accounts');
      const price = amountOf({
        amount: body.price_per_vcpu_hour,
        amount_micro_usd: body.price_per_vcpu_hour_micro_usd,
      });
      const net = networkPolicy(body.network);
      if (!net) throw new BadRequest('unknown_network', `unknown network "${body.network}"`);
      if (net.sealed && body.ppid === undefined)
        throw new BadRequest(
          'ppid_required',
          `network "${body.network}" is sealed: register the node's PPID; agents are bound by the PPID of their verified quotes`,
        );
      if (!net.sealed && body.ppid !== undefined)
        throw new BadRequest(
          'invalid_request',
          'a PPID binds agents on sealed networks only; sandbox nodes get a node token',
        );
      // Every stake requirement and period lock of the node must be a representable amount.
      const worstHours = BigInt(Math.max(720, market.timing.period_ms / 3_600_000));
      if (price * BigInt(body.vcpus) * worstHours > MAX_AMOUNT_MICRO) {
        throw new BadRequest(
          'price_too_high',
          `price × vCPUs × ${worstHours} h (the largest stake or lock) must not exceed ${MAX_AMOUNT_MICRO} micro-USD`,
        );
      }
      const tok = newNodeToken();
      return idempotency.handle(req, reply, p.id, async (run) => {
        // State checks run here, after a stored response would have been replayed: a retried registration gets
        // its first answer, never "ppid_taken" by its own node.
        if (
          body.ppid !== undefined &&
          (await market.db.selectFrom('market_nodes').select('id').where('ppid', '=', body.ppid).executeTakeFirst())
        ) {
          return err(409, 'ppid_taken', 'another node registered this PPID');
        }
        const count = await market.db
          .selectFrom('market_nodes')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('provider', '=', provider)
          .where('status', '=', 'active')
          .executeTakeFirstOrThrow();
        if (Number(count.n) >= MAX_NODES_PER_PROVIDER) {
          return err(409, 'too_many_nodes', `a provider may have at most ${MAX_NODES_PER_PROVIDER} active nodes`);
        }
        let token: string | null = null;
        const response = await market.deps.ledger.submit(
          rowsOp(run, (ctx) => {
            const row: NodeRow = {
              id: tok.node_id,
              provider,
              name: body.name ?? tok.node_id,
              region: body.region,
              tier: body.tier as Tier,
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
            const body2 = {
              ...nodeSummary(row),
              node_token: null as string | null,
              node_token_note: net.sealed
                ? 'sealed network: agents are bound by the PPID of their verified quotes; the token (shown once) is optional, and presented from another machine it is attestation fraud'
                : "shown once, in the first response; give it to the node's agents as EE_NODE_TOKEN",
            };
            return {
              response: { status: 201, body: body2 },
              write: async (tx) => {
                await tx.insertInto('market_nodes').values(row).execute();
              },
            };
          }),
        );
        void market.refreshRanking();
        return token === null
          ? response
          : { status: response.status, body: { ...(response.body as object), node_token: token } };
      });
    }),
  );

  app.get('/v1/nodes', async (req, reply) =>
    guard(reply, async () => {
      const p = await requireAdminPrincipal(req, reply, deps);
      if (!p) return reply;
      const rows = (await market.db
        .selectFrom('market_nodes')
        .selectAll()
        .orderBy('id')
        .limit(1000)
        .execute()) as NodeRow[];
      const out = [];
      for (const n of rows) {
        const s = await market.nodeState(n);
        out.push({
          ...nodeSummary(n),
          eligible: s.eligible,
          ineligible_reasons: s.reasons,
          trust: s.trust,
          effective_price_per_vcpu_hour_micro_usd: Math.round(s.effective_price),
        });
      }
      return { nodes: out };
    }),
  );

  app.get('/v1/nodes/:node', async (req, reply) =>
    guard(reply, async () => {
      const r = await ownedNode(req, reply);
      if (!r) return reply;
      return nodeDetail(market, r.node);
    }),
  );

  const stakeRoute = (unstake: boolean) => async (req: FastifyRequest, reply: FastifyReply) =>
    guard(reply, async () => {
      const r = await ownedNode(req, reply);
      if (!r) return reply;
      const body = parse(AmountBody, req.body ?? {});
      const amount =
        unstake && body.amount === undefined && body.amount_micro_usd === undefined ? undefined : amountOf(body);
      const { node } = r;
      return idempotency.handle(req, reply, r.p.id, async (run) => {
        const id = run.derivedId(
          unstake ? 'unstake:' : 'stake:',
          () => `${unstake ? 'unstake' : 'stake'}:${randomBytes(20).toString('hex')}`,
        );
        const respond = (
          res:
            { ok: true; held: bigint; amount?: bigint } | { ok: false; status: number; code: string; message: string },
          ctx: ApplyContext,
        ) => {
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
            : err(res.status, res.code, res.message);
          run.record(ctx.writes, ctx.now_ms, response);
          return response;
        };
        const op = unstake
          ? unstakeOp(node.id, node.provider, amount, id, market.deps.config.unstake_cooldown_ms, respond)
          : stakeOp(node.id, node.provider, amount!, id, respond);
        const response = await market.deps.ledger.submit(op);
        await market.refreshRanking();
        if (response.status === 200) {
          const s = await market.nodeState(node);
          Object.assign((response.body as { stake: object }).stake, money('required', s.stake_required));
          Object.assign(response.body as object, { eligible: s.eligible, ineligible_reasons: s.reasons });
        }
        return response;
      });
    });
  app.post('/v1/nodes/:node/stake', stakeRoute(false));
  app.post('/v1/nodes/:node/unstake', stakeRoute(true));

  app.post('/v1/nodes/:node/fraud', async (req, reply) =>
    guard(reply, async () => {
      const p = await requireAdminPrincipal(req, reply, deps);
      if (!p) return reply;
      const body = parse(FraudBody, req.body);
      const node_id = (req.params as { node: string }).node;
      return idempotency.handle(req, reply, p.id, async (run) => {
        const r = await market.fraud(node_id, `admin fraud ruling: ${body.reason}`);
        if (r.outcome === 'unknown_node') return err(404, 'unknown_node', 'no such node');
        if (r.outcome === 'already_banned') return err(409, 'node_banned', 'the node is already banned');
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
        return market.deps.ledger.submit(rowsOp(run, () => ({ response })));
      });
    }),
  );
}
